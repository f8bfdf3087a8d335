//! Config → provider. Backends and user authenticators are factories registered by name; the
//! built-ins register exactly like a user's plugin does (`registry.register_storage(MyFactory)` in a
//! custom `main`). There is no dynamic loading.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use mcp_oauth_provider::{
    FactoryContext, OAuthServerProvider, ProviderFactory, StandardProvider, Storage,
    UserAuthenticatorFactory,
};

use crate::config::Settings;
use crate::users::local::LocalAuthenticatorFactory;
use crate::users::password::PasswordPool;

/// The factories known to this binary.
pub struct Registry {
    storage: BTreeMap<&'static str, Arc<dyn ProviderFactory>>,
    users: BTreeMap<&'static str, Arc<dyn UserAuthenticatorFactory>>,
}

/// A built provider and the storage parts behind it (admin commands need the parts).
pub struct Built {
    pub provider: Arc<dyn OAuthServerProvider>,
    pub storage: Storage,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self {
            storage: BTreeMap::new(),
            users: BTreeMap::new(),
        }
    }

    /// The built-in backends: storage `memory`; users `local` and `ldap`.
    pub fn with_builtins(settings: &Settings) -> Self {
        let mut r = Self::empty();
        r.register_storage(mcp_oauth_provider_memory::MemoryFactory);
        r.register_users(LocalAuthenticatorFactory {
            pool: PasswordPool::new(settings.login.password_hash_concurrency),
        });
        r.register_users(mcp_oauth_provider_ldap::LdapAuthenticatorFactory);
        r
    }

    pub fn register_storage(&mut self, factory: impl ProviderFactory + 'static) {
        self.storage.insert(factory.kind(), Arc::new(factory));
    }

    pub fn register_users(&mut self, factory: impl UserAuthenticatorFactory + 'static) {
        self.users.insert(factory.kind(), Arc::new(factory));
    }

    /// Kinds available for `[storage]`.
    pub fn storage_kinds(&self) -> Vec<&'static str> {
        self.storage.keys().copied().collect()
    }

    /// Opens the configured storage.
    pub async fn open_storage(&self, settings: &Settings) -> anyhow::Result<Storage> {
        let kind = settings.storage.kind.as_str();
        let factory = self.storage.get(kind).with_context(|| {
            format!(
                "storage.kind {kind:?} is not registered (available: {})",
                self.storage_kinds().join(", ")
            )
        })?;
        let ctx = FactoryContext {
            settings: settings.storage_table(),
            data_dir: data_dir(),
        };
        factory
            .open(&ctx)
            .await
            .with_context(|| format!("opening the {kind} storage backend"))
    }

    /// Opens storage and builds the user authenticator on top of it.
    pub async fn build(&self, settings: &Settings) -> anyhow::Result<Built> {
        let storage = self.open_storage(settings).await?;
        let kind = settings.users.kind.as_str();
        let factory = self.users.get(kind).with_context(|| {
            let known: Vec<_> = self.users.keys().copied().collect();
            format!(
                "users.kind {kind:?} is not registered (available: {})",
                known.join(", ")
            )
        })?;
        let ctx = FactoryContext {
            settings: settings.users_table(),
            data_dir: data_dir(),
        };
        let authenticator = factory
            .build(&ctx, &storage)
            .await
            .with_context(|| format!("building the {kind} user authenticator"))?;
        let provider: Arc<dyn OAuthServerProvider> =
            Arc::new(StandardProvider::new(storage.clone(), authenticator));
        Ok(Built { provider, storage })
    }
}

/// Where backends keep files. Durable backends take it from their own settings.
fn data_dir() -> PathBuf {
    PathBuf::from(".")
}
