//! The `[storage]` keys the SQL backends read (the core validates key names; see
//! `config/default.toml`).

use mcp_oauth_provider::{FactoryContext, ProviderError, ProviderResult};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
pub struct SqlSettings {
    /// `sqlite://path` or `postgres://user:pass@host/db`. SQLite defaults to `<data_dir>/mcp-oauth.db`.
    pub url: Option<String>,
    pub max_connections: Option<u32>,
    /// SQLite `synchronous`: "full" (default) or "normal".
    pub sqlite_synchronous: Option<String>,
    /// Postgres schema to use (`search_path`).
    pub search_path: Option<String>,
}

impl SqlSettings {
    pub fn from_ctx(ctx: &FactoryContext) -> ProviderResult<Self> {
        serde_json::from_value(ctx.settings.clone())
            .map_err(|e| ProviderError::Unsupported(format!("invalid [storage] settings: {e}")))
    }

    pub fn sqlite_synchronous_full(&self) -> ProviderResult<bool> {
        match self.sqlite_synchronous.as_deref().unwrap_or("full") {
            "full" => Ok(true),
            "normal" => Ok(false),
            other => Err(ProviderError::Unsupported(format!(
                "storage.sqlite_synchronous {other:?} must be \"full\" or \"normal\""
            ))),
        }
    }
}
