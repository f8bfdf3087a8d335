//! Factories: how a backend or plugin is registered by name and built from its config table.
//!
//! `[storage] kind = "…"` picks a [`ProviderFactory`]; `[users] kind = "…"` picks a
//! [`UserAuthenticatorFactory`]. Built-in backends register exactly like a user's plugin does.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{ProviderResult, Storage, UserAuthenticator};

/// What a factory is given.
#[derive(Debug, Clone)]
pub struct FactoryContext {
    /// The backend's own config table (`[storage]` or `[users]`), as JSON.
    pub settings: serde_json::Value,
    /// Directory for files the backend keeps (embedded databases, generated secrets).
    pub data_dir: PathBuf,
}

impl FactoryContext {
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

/// Builds the storage parts of a backend.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// The `kind` this factory answers to in `[storage]`.
    fn kind(&self) -> &'static str;
    /// Opens the backend (connecting, but not migrating).
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage>;
    /// How this backend's schema is kept up to date.
    fn migration_policy(&self) -> MigrationPolicy {
        MigrationPolicy::None
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
}

/// Builds a user authenticator. It may use the storage's local accounts.
#[async_trait]
pub trait UserAuthenticatorFactory: Send + Sync {
    /// The `kind` this factory answers to in `[users]`.
    fn kind(&self) -> &'static str;
    async fn build(
        &self,
        ctx: &FactoryContext,
        storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>>;
}
