//! Config → provider. Backends and user authenticators are factories registered by name; the
//! built-ins register exactly like a user's plugin does (`registry.register_storage(MyFactory)` in a
//! custom `main`). There is no dynamic loading.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use mcp_oauth_provider::{
    FactoryContext, MigrationPolicy, OAuthServerProvider, ProviderFactory, SchemaStatus,
    StandardProvider, Storage, UserAuthenticatorFactory,
};

use crate::config::Settings;
use crate::oauth::key_encryption::KeyEncryptionKey;
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

    /// The built-in backends: storage `sqlite`, `postgres`, `memory`; users `local` and `ldap`.
    pub fn with_builtins(settings: &Settings) -> Self {
        let mut r = Self::empty();
        r.register_storage(mcp_oauth_provider_memory::MemoryFactory);
        r.register_storage(mcp_oauth_provider_sql::SqliteFactory);
        r.register_storage(mcp_oauth_provider_sql::PostgresFactory);
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

    /// The factory of the configured storage kind and its context.
    pub fn storage_factory(
        &self,
        settings: &Settings,
    ) -> anyhow::Result<(Arc<dyn ProviderFactory>, FactoryContext)> {
        let kind = settings.storage.kind.as_str();
        let factory = self.storage.get(kind).cloned().with_context(|| {
            format!(
                "storage.kind {kind:?} is not registered (available: {})",
                self.storage_kinds().join(", ")
            )
        })?;
        let ctx = FactoryContext {
            settings: settings.storage_table(),
            data_dir: settings.data_dir(),
        };
        Ok((factory, ctx))
    }

    /// Where the configured store's schema stands.
    pub async fn schema_status(&self, settings: &Settings) -> anyhow::Result<SchemaStatus> {
        let (factory, ctx) = self.storage_factory(settings)?;
        factory
            .schema_status(&ctx)
            .await
            .context("reading the schema status")
    }

    /// Brings the schema up to date as `serve` may: migrates stores that allow it, and refuses a
    /// shared store whose schema is behind (naming the command to run) or ahead.
    pub async fn ensure_schema_for_serve(&self, settings: &Settings) -> anyhow::Result<()> {
        let (factory, ctx) = self.storage_factory(settings)?;
        let kind = factory.kind();
        match factory.migration_policy() {
            MigrationPolicy::None => Ok(()),
            MigrationPolicy::OnServe => {
                factory
                    .migrate(&ctx)
                    .await
                    .with_context(|| format!("migrating the {kind} database"))?;
                Ok(())
            }
            MigrationPolicy::Explicit => {
                let status = factory
                    .schema_status(&ctx)
                    .await
                    .with_context(|| format!("reading the {kind} schema"))?;
                if let Some(bad) = status.unknown.first() {
                    bail!(
                        "the {kind} database has migration {} ({}) that this mcp-oauth does not know \
                         or that was changed; upgrade mcp-oauth instead of running an older version",
                        bad.version,
                        bad.name
                    );
                }
                if !status.pending.is_empty() {
                    let names: Vec<String> = status
                        .pending
                        .iter()
                        .map(|m| format!("{:04}_{}", m.version, m.name))
                        .collect();
                    bail!(
                        "the {kind} database schema is behind ({} pending migration(s): {}); run \
                         `mcp-oauth migrate` with the same configuration before `mcp-oauth serve`",
                        names.len(),
                        names.join(", ")
                    );
                }
                Ok(())
            }
        }
    }

    /// Opens the configured storage.
    pub async fn open_storage(&self, settings: &Settings) -> anyhow::Result<Storage> {
        let (factory, ctx) = self.storage_factory(settings)?;
        let kind = factory.kind();
        factory
            .open(&ctx)
            .await
            .with_context(|| format!("opening the {kind} storage backend"))
    }

    /// Checks `[users]` for `config check`: builds the configured user authenticator on a throwaway
    /// in-memory storage, so its factory validates its own table (the built-in ones connect to
    /// nothing while building).
    pub async fn check_users(&self, settings: &Settings) -> anyhow::Result<()> {
        let scratch = mcp_oauth_provider_memory::MemoryStore::new().storage();
        self.build_users(settings, &scratch).await.map(drop)
    }

    /// Opens storage and builds the user authenticator on top of it.
    pub async fn build(&self, settings: &Settings) -> anyhow::Result<Built> {
        let storage = self.open_storage(settings).await?;
        let authenticator = self.build_users(settings, &storage).await?;
        let provider: Arc<dyn OAuthServerProvider> =
            Arc::new(StandardProvider::new(storage.clone(), authenticator));
        Ok(Built { provider, storage })
    }

    async fn build_users(
        &self,
        settings: &Settings,
        storage: &Storage,
    ) -> anyhow::Result<Arc<dyn mcp_oauth_provider::UserAuthenticator>> {
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
            data_dir: settings.data_dir(),
        };
        factory
            .build(&ctx, storage)
            .await
            .with_context(|| format!("building the {kind} user authenticator"))
    }
}

/// The key-encryption key for signing keys (see `oauth::key_encryption`): configured, else a file in
/// the data directory for SQLite, else random for the in-memory store; required otherwise.
pub fn key_encryption_key(settings: &Settings) -> anyhow::Result<KeyEncryptionKey> {
    if let Some(text) = settings
        .keys
        .encryption_key
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        return KeyEncryptionKey::parse(text);
    }
    match settings.storage.kind.as_str() {
        "memory" => Ok(KeyEncryptionKey::random()),
        "sqlite" => KeyEncryptionKey::load_or_create_file(&settings.data_dir()),
        other => bail!(
            "keys.encryption_key is required with storage kind {other:?}: every server on the database must \
             share it. Generate one with `openssl rand -base64 32` and set MCP_OAUTH__KEYS__ENCRYPTION_KEY"
        ),
    }
}
