//! The tables the SQL backends read: `[storage.sqlite]` and `[storage.postgres]` (see
//! `config/default.toml`). Each rejects keys it does not know, naming them. `[storage] url` is
//! handed to the selected backend as its `url`.

use mcp_oauth_provider::{FactoryContext, ProviderResult};
use serde::Deserialize;

/// SQLite's `synchronous` pragma, as far as this backend allows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// An acknowledged write survives a power loss (the default).
    #[default]
    Full,
    /// Faster; an acknowledged write survives a crash of the process, not of the machine.
    Normal,
}

/// `[storage.sqlite]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSettings {
    /// `sqlite://path`; empty = `<data_dir>/mcp-oauth.db`.
    #[serde(default)]
    pub url: Option<String>,
    /// Connection pool size (default 8).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// `"full"` (default) or `"normal"`. `sqlite_synchronous`, its name in `[storage]` before each
    /// backend had its own table, is still read.
    #[serde(default, alias = "sqlite_synchronous")]
    pub synchronous: SqliteSynchronous,
    /// Most token writes committed in one transaction (default 128; 1 = one transaction per write,
    /// at most 10000). See `group_commit`.
    #[serde(default)]
    pub group_commit_max_batch: Option<usize>,
}

/// `[storage.postgres]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSettings {
    /// `postgres://user:password@host:5432/db` (required; may carry a password: never printed).
    #[serde(default)]
    pub url: Option<String>,
    /// Connection pool size (default 10).
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// The schema to use (`search_path`); empty = the server's default.
    #[serde(default)]
    pub search_path: Option<String>,
}

impl SqliteSettings {
    pub fn from_ctx(ctx: &FactoryContext) -> ProviderResult<Self> {
        let s: Self = ctx.parse_settings()?;
        if let Some(n) = s.group_commit_max_batch
            && !(1..=10_000).contains(&n)
        {
            return Err(ctx.invalid(format!(
                "group_commit_max_batch must be between 1 and 10000 (got {n})"
            )));
        }
        Ok(s)
    }
}

impl PostgresSettings {
    /// The table, with `url` required.
    pub fn from_ctx(ctx: &FactoryContext) -> ProviderResult<(Self, String)> {
        let s: Self = ctx.parse_settings()?;
        let url = s.url.clone().filter(|u| !u.is_empty()).ok_or_else(|| {
            ctx.invalid(
                "url is required (set [storage] url, or better MCP_OAUTH__STORAGE__URL=\
                 postgres://user@host/db)",
            )
        })?;
        Ok((s, url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(section: &str, table: serde_json::Value) -> FactoryContext {
        FactoryContext::new(section, table, ".".into())
    }

    #[test]
    fn each_backend_names_an_unknown_key() {
        let err = SqliteSettings::from_ctx(&ctx(
            "storage.sqlite",
            serde_json::json!({"search_path": "x"}),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[storage.sqlite]") && err.contains("search_path"),
            "{err}"
        );
        let err = PostgresSettings::from_ctx(&ctx(
            "storage.postgres",
            serde_json::json!({"url": "postgres://x/y", "sqlite_synchronous": "full"}),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("[storage.postgres]") && err.contains("sqlite_synchronous"),
            "{err}"
        );
    }

    #[test]
    fn values_are_checked() {
        let s = SqliteSettings::from_ctx(&ctx(
            "storage.sqlite",
            serde_json::json!({"sqlite_synchronous": "normal"}),
        ))
        .unwrap();
        assert_eq!(
            s.synchronous,
            SqliteSynchronous::Normal,
            "the old name still works"
        );
        let s = SqliteSettings::from_ctx(&ctx("storage.sqlite", serde_json::Value::Null)).unwrap();
        assert_eq!(s.synchronous, SqliteSynchronous::Full);
        let err = SqliteSettings::from_ctx(&ctx(
            "storage.sqlite",
            serde_json::json!({"synchronous": "off"}),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("off") && err.contains("full"), "{err}");
        let s = SqliteSettings::from_ctx(&ctx(
            "storage.sqlite",
            serde_json::json!({"group_commit_max_batch": 1}),
        ))
        .unwrap();
        assert_eq!(
            s.group_commit_max_batch,
            Some(1),
            "1 turns group commit off"
        );
        for bad in [0, 10_001] {
            let err = SqliteSettings::from_ctx(&ctx(
                "storage.sqlite",
                serde_json::json!({"group_commit_max_batch": bad}),
            ))
            .unwrap_err()
            .to_string();
            assert!(
                err.contains("group_commit_max_batch") && err.contains(&bad.to_string()),
                "{err}"
            );
        }
        let err = PostgresSettings::from_ctx(&ctx("storage.postgres", serde_json::json!({})))
            .unwrap_err()
            .to_string();
        assert!(err.contains("url is required"), "{err}");
    }
}
