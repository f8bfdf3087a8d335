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

/// Builds the storage parts of a backend.
#[async_trait]
pub trait ProviderFactory: Send + Sync {
    /// The `kind` this factory answers to in `[storage]`.
    fn kind(&self) -> &'static str;
    /// Opens the backend (connecting, but not migrating).
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage>;
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
