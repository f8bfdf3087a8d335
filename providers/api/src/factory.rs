//! Factories: how a backend or plugin is registered by name and built from its own config table.
//!
//! `[storage] kind = "…"` picks a [`ProviderFactory`], `[users] kind = "…"` a
//! [`UserAuthenticatorFactory`], `[policy] kind = "…"` a [`PolicyFactory`]. Each is handed only its
//! own table (`[storage.<kind>]`, `[users.<kind>]`, `[policy.<kind>]`) and rejects keys it does not
//! know ([`FactoryContext::parse_settings`] does both). Built-in backends register exactly like a
//! user's plugin does, and the core never compares kind names: a factory declares what it needs
//! ([`ProviderFactory::locality`], [`ProviderFactory::migration_policy`],
//! [`UserAuthenticatorFactory::uses_local_accounts`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;

use crate::{HashingPool, Policy, ProviderError, ProviderResult, Storage, UserAuthenticator};

/// What a factory is given.
#[derive(Debug, Clone)]
pub struct FactoryContext {
    /// Where the table lives in the configuration, e.g. `storage.sqlite` or `users.htpasswd`: name it
    /// in every error about a setting.
    pub section: String,
    /// The backend's own table, as a JSON object (empty when the configuration has none).
    pub settings: serde_json::Value,
    /// Directory for files the backend keeps (embedded databases, generated secrets).
    pub data_dir: PathBuf,
    /// The server's bounded pool for password hashing (see [`HashingPool`]).
    pub hashing: HashingPool,
}

impl FactoryContext {
    /// A context for `section` with `settings` (tests and tools; the server builds its own).
    pub fn new(section: impl Into<String>, settings: serde_json::Value, data_dir: PathBuf) -> Self {
        Self {
            section: section.into(),
            settings,
            data_dir,
            hashing: HashingPool::default(),
        }
    }

    /// The table deserialised into `T`. Declare `T` with `#[serde(deny_unknown_fields)]`: a key
    /// `T` does not know is then an error naming the key and the section, e.g.
    /// `[users.htpasswd]: unknown field `fille`, expected `file``.
    pub fn parse_settings<T: DeserializeOwned>(&self) -> ProviderResult<T> {
        let table = match &self.settings {
            serde_json::Value::Null => serde_json::Value::Object(Default::default()),
            other => other.clone(),
        };
        // The path names the key of a value of the wrong type too ("file: invalid type: …"),
        // which serde_json alone does not.
        serde_path_to_error::deserialize(table).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                self.invalid(inner)
            } else {
                self.invalid(format_args!("{path}: {inner}"))
            }
        })
    }

    /// An [`ProviderError::InvalidSettings`] naming this section.
    pub fn invalid(&self, message: impl std::fmt::Display) -> ProviderError {
        ProviderError::InvalidSettings(format!("[{}]: {message}", self.section))
    }

    /// A string setting, if present.
    pub fn str_setting(&self, key: &str) -> Option<&str> {
        self.settings.get(key).and_then(|v| v.as_str())
    }
}

/// One schema migration, as a backend reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationInfo {
    pub version: i64,
    pub name: String,
}

/// Where a backend's schema stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Migrations applied, oldest first.
    pub applied: Vec<MigrationInfo>,
    /// Migrations this binary knows and the store lacks, oldest first.
    pub pending: Vec<MigrationInfo>,
    /// Versions applied in the store that this binary does not know (a newer binary migrated it),
    /// or whose recorded checksum differs from this binary's migration.
    pub unknown: Vec<MigrationInfo>,
}

/// When the server may bring the schema up to date by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    /// Nothing to migrate (in-memory stores).
    None,
    /// `serve` migrates on start (an embedded database only this process uses).
    OnServe,
    /// Only `mcp-oauth migrate` migrates; `serve` refuses a schema that is behind (shared databases,
    /// where several servers and an operator must agree on the moment).
    Explicit,
}

/// Who can reach a store's data, which decides where the key sealing the signing keys may come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreLocality {
    /// The data lives in this process and dies with it: a random key per start is fine.
    InProcess,
    /// Files in the data directory on one machine: a key file generated beside them is fine.
    LocalFiles,
    /// Several processes or machines share the data: every server must be configured with the same
    /// key (`[keys] encryption_key`), or they could not open each other's signing keys.
    Shared,
}

/// Builds the storage parts of a backend.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// The `kind` this factory answers to in `[storage]`; its table is `[storage.<kind>]`.
    fn kind(&self) -> &'static str;
    /// Opens the backend (connecting, but not migrating). Settings errors are
    /// [`ProviderError::InvalidSettings`] naming the key ([`FactoryContext::parse_settings`]).
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage>;
    /// Who shares this store's data. The default, `Shared`, is the safe one: it demands a
    /// configured key-encryption key.
    fn locality(&self) -> StoreLocality {
        StoreLocality::Shared
    }
    /// How this backend's schema is kept up to date.
    fn migration_policy(&self) -> MigrationPolicy {
        MigrationPolicy::None
    }
    /// Checks the table without connecting anywhere (`config check`, and `serve` before it opens
    /// anything): typically `ctx.parse_settings::<MySettings>().map(drop)`, or
    /// `parse_settings::<NoSettings>()` for a backend without settings.
    fn check_settings(&self, ctx: &FactoryContext) -> ProviderResult<()>;
    /// Where the data lives, for the operator: a file path, or host, port and database. MUST NOT
    /// contain a password or any other secret (it is printed at start and by `config check`, and
    /// names the place in connection errors). `None`: the core names the kind only.
    fn location(&self, ctx: &FactoryContext) -> Option<String> {
        let _ = ctx;
        None
    }
    /// Where the schema stands. Backends without a schema report nothing pending.
    async fn schema_status(&self, ctx: &FactoryContext) -> ProviderResult<SchemaStatus> {
        let _ = ctx;
        Ok(SchemaStatus::default())
    }
    /// Applies pending migrations; returns the ones applied. MUST be safe to run from several
    /// processes at once (one applies, the others wait and find nothing pending).
    async fn migrate(&self, ctx: &FactoryContext) -> ProviderResult<Vec<MigrationInfo>> {
        let _ = ctx;
        Ok(Vec::new())
    }
    /// Writes a consistent copy of the store into the empty directory `dir` while servers keep
    /// running (`mcp-oauth backup`), and returns the files written. The default is
    /// [`ProviderError::Unsupported`] with the reason: a store without files has nothing to copy, and
    /// a database server has its own tools (say which in the message).
    async fn backup(&self, ctx: &FactoryContext, dir: &Path) -> ProviderResult<Vec<PathBuf>> {
        let _ = (ctx, dir);
        Err(ProviderError::Unsupported(format!(
            "the {} storage backend has no backup of its own",
            self.kind()
        )))
    }
}

/// Builds a user authenticator. It may use the storage's local accounts.
#[async_trait]
pub trait UserAuthenticatorFactory: Send + Sync {
    /// The `kind` this factory answers to in `[users]`; its table is `[users.<kind>]`.
    fn kind(&self) -> &'static str;
    /// Whether the authenticator signs users in against the storage's local accounts
    /// ([`Storage::users`]). Only then does the core seed `[[users.accounts]]`, create the first
    /// `admin` and offer the `users` commands.
    fn uses_local_accounts(&self) -> bool {
        false
    }
    /// Builds the authenticator. It MUST NOT contact a directory while building (a directory that
    /// is down at start must not stop the server); it checks its settings and returns
    /// [`ProviderError::InvalidSettings`] naming the key when one is wrong.
    async fn build(
        &self,
        ctx: &FactoryContext,
        storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>>;
}

/// Builds a [`Policy`]: `[policy] kind = "<kind>"`, settings in `[policy.<kind>]`.
#[async_trait]
pub trait PolicyFactory: Send + Sync {
    /// The `kind` this factory answers to in `[policy]`.
    fn kind(&self) -> &'static str;
    /// Builds the policy from its table.
    async fn build(&self, ctx: &FactoryContext) -> ProviderResult<Arc<dyn Policy>>;
}

/// The settings of a backend that has none: any key is an error naming it.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSettings {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        #[allow(dead_code)]
        file: String,
    }

    #[test]
    fn a_typo_names_the_section_and_the_key() {
        let ctx = FactoryContext::new(
            "users.htpasswd",
            serde_json::json!({ "fille": "/etc/htpasswd" }),
            PathBuf::from("."),
        );
        let err = ctx.parse_settings::<Demo>().unwrap_err().to_string();
        assert!(err.contains("[users.htpasswd]"), "{err}");
        assert!(err.contains("fille"), "{err}");
        let none = FactoryContext::new("storage.memory", serde_json::Value::Null, ".".into());
        none.parse_settings::<NoSettings>().unwrap();
        let wrong_type =
            FactoryContext::new("users.htpasswd", serde_json::json!({"file": 3}), ".".into());
        let err = wrong_type.parse_settings::<Demo>().unwrap_err().to_string();
        assert!(
            err.contains("[users.htpasswd]: file: invalid type"),
            "{err}"
        );
        let extra = FactoryContext::new("storage.memory", serde_json::json!({"x": 1}), ".".into());
        let err = extra
            .parse_settings::<NoSettings>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("[storage.memory]") && err.contains("`x`"),
            "{err}"
        );
    }
}
