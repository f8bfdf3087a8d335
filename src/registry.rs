//! Config → provider: the plugin seam (DESIGN §2, §3).
//!
//! Storage backends, user authenticators and policies are factories registered by name. The
//! built-ins register exactly like a user's plugin does (`Registry::builtin().with_storage(Mine)` in
//! a plugin's own `main`, then `cli::main_with`); there is no dynamic loading, and the core never
//! compares kind names: a factory declares what it needs (`locality`, `migration_policy`,
//! `uses_local_accounts`).
//!
//! Each factory is handed only its own table: `[storage.<kind>]`, `[users.<kind>]`,
//! `[policy.<kind>]` (see [`section_table`]). A kind registered twice is an error naming both.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, bail};
use mcp_oauth_provider::{
    DefaultPolicy, FactoryContext, HashingPool, MigrationPolicy, OAuthServerProvider, Policy,
    PolicyFactory, ProviderFactory, ProviderResult, SchemaStatus, StandardProvider, Storage,
    StoreLocality, UpstreamAuthenticator, UpstreamFactory, UserAuthenticator,
    UserAuthenticatorFactory,
};
use serde_json::{Map, Value};

use crate::config::Settings;
use crate::oauth::key_encryption::KeyEncryptionKey;
use crate::users::local::LocalAuthenticatorFactory;
use crate::users::upstreams::WithUpstreams;

/// Keys `[storage]` itself held before each backend had its own table; when set there they are
/// forwarded to the selected backend, which accepts or refuses them like any key of its table.
const LEGACY_STORAGE_KEYS: &[&str] = &["max_connections", "sqlite_synchronous", "search_path"];

/// The table plugins read before they had `[<section>.<kind>]` (`[storage.options]`,
/// `[users.options]`); merged into the selected backend's table.
const LEGACY_OPTIONS_TABLE: &str = "options";

/// One registered factory and the Rust type that registered it (named when two kinds clash).
struct Entry<F: ?Sized> {
    factory: Arc<F>,
    type_name: &'static str,
}

impl<F: ?Sized> Clone for Entry<F> {
    fn clone(&self) -> Self {
        Self {
            factory: self.factory.clone(),
            type_name: self.type_name,
        }
    }
}

/// The factories known to this binary.
#[derive(Default)]
pub struct Registry {
    storage: BTreeMap<&'static str, Entry<dyn ProviderFactory>>,
    users: BTreeMap<&'static str, Entry<dyn UserAuthenticatorFactory>>,
    policy: BTreeMap<&'static str, Entry<dyn PolicyFactory>>,
    upstream: BTreeMap<&'static str, Entry<dyn UpstreamFactory>>,
    /// Kinds registered twice, reported by [`Registry::check`].
    clashes: Vec<String>,
}

/// A built provider and the storage parts behind it (admin commands need the parts).
pub struct Built {
    pub provider: Arc<dyn OAuthServerProvider>,
    pub storage: Storage,
    /// The authenticator signs users in against `storage.users` (seed accounts, first admin).
    pub uses_local_accounts: bool,
    /// The password-hashing pool the authenticator was given (its queue depth is a metric).
    pub hashing: HashingPool,
    /// The user authenticator inside `provider` (its directory's health is checked at start).
    pub authenticator: Arc<dyn UserAuthenticator>,
}

/// The `standard` policy: [`DefaultPolicy`], no settings.
struct StandardPolicyFactory;

#[async_trait::async_trait]
impl PolicyFactory for StandardPolicyFactory {
    fn kind(&self) -> &'static str {
        "standard"
    }
    async fn build(&self, ctx: &FactoryContext) -> ProviderResult<Arc<dyn Policy>> {
        ctx.parse_settings::<mcp_oauth_provider::NoSettings>()?;
        Ok(Arc::new(DefaultPolicy))
    }
}

fn insert<F: ?Sized>(
    map: &mut BTreeMap<&'static str, Entry<F>>,
    clashes: &mut Vec<String>,
    section: &str,
    kind: &'static str,
    entry: Entry<F>,
) {
    if let Some(old) = map.get(kind) {
        clashes.push(format!(
            "{section} kind {kind:?} is registered twice: by {} and by {}",
            old.type_name, entry.type_name
        ));
        return;
    }
    map.insert(kind, entry);
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Self::default()
    }

    /// The built-in factories: storage `sqlite`, `postgres`, `memory`; users `local`, `ldap`, `oidc`;
    /// upstreams `oidc`, `oauth2`, `github`; policy `standard`.
    pub fn builtin() -> Self {
        Self::empty()
            .with_storage(mcp_oauth_provider_memory::MemoryFactory)
            .with_storage(mcp_oauth_provider_sql::SqliteFactory)
            .with_storage(mcp_oauth_provider_sql::PostgresFactory)
            .with_users(LocalAuthenticatorFactory)
            .with_users(mcp_oauth_provider_ldap::LdapAuthenticatorFactory)
            .with_users(mcp_oauth_provider_oidc::OidcAuthenticatorFactory)
            .with_policy(StandardPolicyFactory)
            .with_upstream(mcp_oauth_provider_oidc::OidcUpstreamFactory)
            .with_upstream(mcp_oauth_provider_oidc::OAuth2UpstreamFactory)
            .with_upstream(mcp_oauth_provider_oidc::GitHubUpstreamFactory)
    }

    /// Registers a storage backend as `[storage] kind = factory.kind()`.
    pub fn register_storage<F: ProviderFactory + 'static>(&mut self, factory: F) -> &mut Self {
        let entry = Entry::<dyn ProviderFactory> {
            type_name: std::any::type_name::<F>(),
            factory: Arc::new(factory),
        };
        let kind = entry.factory.kind();
        insert(&mut self.storage, &mut self.clashes, "storage", kind, entry);
        self
    }

    /// Registers a user authenticator as `[users] kind = factory.kind()`.
    pub fn register_users<F: UserAuthenticatorFactory + 'static>(
        &mut self,
        factory: F,
    ) -> &mut Self {
        let entry = Entry::<dyn UserAuthenticatorFactory> {
            type_name: std::any::type_name::<F>(),
            factory: Arc::new(factory),
        };
        let kind = entry.factory.kind();
        insert(&mut self.users, &mut self.clashes, "users", kind, entry);
        self
    }

    /// Registers a policy as `[policy] kind = factory.kind()`.
    pub fn register_policy<F: PolicyFactory + 'static>(&mut self, factory: F) -> &mut Self {
        let entry = Entry::<dyn PolicyFactory> {
            type_name: std::any::type_name::<F>(),
            factory: Arc::new(factory),
        };
        let kind = entry.factory.kind();
        insert(&mut self.policy, &mut self.clashes, "policy", kind, entry);
        self
    }

    /// Registers an upstream kind as `[upstreams.<name>] kind = factory.kind()`.
    pub fn register_upstream<F: UpstreamFactory + 'static>(&mut self, factory: F) -> &mut Self {
        let entry = Entry::<dyn UpstreamFactory> {
            type_name: std::any::type_name::<F>(),
            factory: Arc::new(factory),
        };
        let kind = entry.factory.kind();
        insert(
            &mut self.upstream,
            &mut self.clashes,
            "upstreams",
            kind,
            entry,
        );
        self
    }

    /// [`Registry::register_upstream`], by value (to chain).
    pub fn with_upstream<F: UpstreamFactory + 'static>(mut self, factory: F) -> Self {
        self.register_upstream(factory);
        self
    }

    /// [`Registry::register_storage`], by value (to chain).
    pub fn with_storage<F: ProviderFactory + 'static>(mut self, factory: F) -> Self {
        self.register_storage(factory);
        self
    }

    /// [`Registry::register_users`], by value (to chain).
    pub fn with_users<F: UserAuthenticatorFactory + 'static>(mut self, factory: F) -> Self {
        self.register_users(factory);
        self
    }

    /// [`Registry::register_policy`], by value (to chain).
    pub fn with_policy<F: PolicyFactory + 'static>(mut self, factory: F) -> Self {
        self.register_policy(factory);
        self
    }

    /// Fails when a kind was registered twice (naming both factories). Every command that uses the
    /// registry calls it first.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.clashes.as_slice() {
            [] => Ok(()),
            clashes => bail!("{}", clashes.join("; ")),
        }
    }

    /// Kinds available for `[storage]`.
    pub fn storage_kinds(&self) -> Vec<&'static str> {
        self.storage.keys().copied().collect()
    }

    /// Kinds available for `[users]`.
    pub fn users_kinds(&self) -> Vec<&'static str> {
        self.users.keys().copied().collect()
    }

    /// Kinds available for `[upstreams.<name>]`.
    pub fn upstream_kinds(&self) -> Vec<&'static str> {
        self.upstream.keys().copied().collect()
    }

    /// Kinds available for `[policy]`.
    pub fn policy_kinds(&self) -> Vec<&'static str> {
        self.policy.keys().copied().collect()
    }

    /// The factory of the configured storage kind and its context.
    pub fn storage_factory(
        &self,
        settings: &Settings,
    ) -> anyhow::Result<(Arc<dyn ProviderFactory>, FactoryContext)> {
        self.check()?;
        let st = &settings.storage;
        let entry = pick(&self.storage, "storage", &st.kind)?;
        let mut injected = Map::new();
        if let Some(url) = st.url.as_deref().filter(|u| !u.is_empty()) {
            injected.insert("url".into(), url.into());
        }
        let table = section_table(
            "storage",
            &st.kind,
            &st.tables,
            &self.storage_kinds(),
            LEGACY_STORAGE_KEYS,
            injected,
        )?;
        let ctx = self.context(settings, "storage", &st.kind, table);
        Ok((entry.factory.clone(), ctx))
    }

    /// The context handed to the selected `kind` of `section`, with its own `table`.
    fn context(
        &self,
        settings: &Settings,
        section: &str,
        kind: &str,
        table: Value,
    ) -> FactoryContext {
        FactoryContext {
            section: format!("{section}.{kind}"),
            settings: table,
            data_dir: settings.data_dir(),
            hashing: HashingPool::new(settings.login.password_hash_concurrency),
        }
    }

    /// How the configured store is shared (decides where the key-encryption key may come from).
    pub fn storage_locality(&self, settings: &Settings) -> anyhow::Result<StoreLocality> {
        Ok(pick(&self.storage, "storage", &settings.storage.kind)?
            .factory
            .locality())
    }

    /// How the configured store's schema is kept up to date.
    pub fn migration_policy(&self, settings: &Settings) -> anyhow::Result<MigrationPolicy> {
        Ok(pick(&self.storage, "storage", &settings.storage.kind)?
            .factory
            .migration_policy())
    }

    /// Whether the configured authenticator uses the storage's local accounts.
    pub fn uses_local_accounts(&self, settings: &Settings) -> anyhow::Result<bool> {
        Ok(pick(&self.users, "users", &settings.users.kind)?
            .factory
            .uses_local_accounts())
    }

    /// Checks every configured section without connecting anywhere: the kinds exist, each table
    /// holds only keys its factory knows, the values parse. What `config check` and `serve` run
    /// first.
    pub async fn check_settings(&self, settings: &Settings) -> anyhow::Result<()> {
        let (factory, ctx) = self.storage_factory(settings)?;
        factory
            .check_settings(&ctx)
            .with_context(|| format!("checking [{}]", ctx.section))?;
        let scratch = mcp_oauth_provider_memory::MemoryStore::new().storage();
        self.build_users(settings, &scratch).await?;
        self.build_policy(settings).await?;
        Ok(())
    }

    /// Where the configured store keeps its data, without secrets: the backend's own description
    /// (`sqlite database /path`, `postgres database db on host:5432`), else its kind.
    pub fn storage_location(&self, settings: &Settings) -> anyhow::Result<String> {
        let (factory, ctx) = self.storage_factory(settings)?;
        Ok(factory
            .location(&ctx)
            .unwrap_or_else(|| format!("{} storage", factory.kind())))
    }

    /// Where the configured store's schema stands (connects).
    pub async fn schema_status(&self, settings: &Settings) -> anyhow::Result<SchemaStatus> {
        let (factory, ctx) = self.storage_factory(settings)?;
        let location = self.storage_location(settings)?;
        factory
            .schema_status(&ctx)
            .await
            .with_context(|| format!("reading the schema of the {location} ([storage])"))
    }

    /// Builds the configured user authenticator on `storage` and asks whether its directory
    /// answers ([`UserAuthenticator::check_health`]): `config check` without `--offline`.
    pub async fn check_users_directory(
        &self,
        settings: &Settings,
        storage: &Storage,
    ) -> anyhow::Result<()> {
        let authenticator = self.build_users(settings, storage).await?;
        authenticator.check_health().await.with_context(|| {
            if settings.upstreams.is_empty() {
                format!(
                    "checking the {} user directory ([users.{}])",
                    settings.users.kind, settings.users.kind
                )
            } else {
                format!(
                    "checking the {} user directory ([users.{}]) and the upstreams ([upstreams.*])",
                    settings.users.kind, settings.users.kind
                )
            }
        })
    }

    /// Brings the schema up to date as `serve` may: migrates stores that allow it, and refuses a
    /// shared store whose schema is behind (naming the command to run) or ahead.
    pub async fn ensure_schema_for_serve(&self, settings: &Settings) -> anyhow::Result<()> {
        let (factory, ctx) = self.storage_factory(settings)?;
        let kind = factory.kind();
        let location = self.storage_location(settings)?;
        match factory.migration_policy() {
            MigrationPolicy::None => Ok(()),
            MigrationPolicy::OnServe => {
                factory
                    .migrate(&ctx)
                    .await
                    .with_context(|| format!("migrating the {location} ([storage])"))?;
                Ok(())
            }
            MigrationPolicy::Explicit => {
                let status = factory
                    .schema_status(&ctx)
                    .await
                    .with_context(|| format!("reading the schema of the {location} ([storage])"))?;
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
        let location = self.storage_location(settings)?;
        factory
            .open(&ctx)
            .await
            .with_context(|| format!("opening the {location} ([storage])"))
    }

    /// Opens storage and builds the user authenticator and the policy on top of it.
    pub async fn build(&self, settings: &Settings) -> anyhow::Result<Built> {
        let storage = self.open_storage(settings).await?;
        if storage.shared.is_none() && self.storage_locality(settings)? == StoreLocality::Shared {
            tracing::warn!(
                kind = %settings.storage.kind,
                "this storage keeps no shared state: each server remembers used client assertions \
                 and caches client metadata documents in its own process, so an assertion \
                 replayed to another server on the same storage is not caught"
            );
        }
        let (authenticator, hashing) = self.build_users_with_pool(settings, &storage).await?;
        let policy = self.build_policy(settings).await?;
        let provider: Arc<dyn OAuthServerProvider> = Arc::new(StandardProvider::new(
            storage.clone(),
            authenticator.clone(),
            policy,
        ));
        Ok(Built {
            provider,
            storage,
            uses_local_accounts: self.uses_local_accounts(settings)?,
            hashing,
            authenticator,
        })
    }

    async fn build_users(
        &self,
        settings: &Settings,
        storage: &Storage,
    ) -> anyhow::Result<Arc<dyn UserAuthenticator>> {
        Ok(self.build_users_with_pool(settings, storage).await?.0)
    }

    /// The authenticator and the hashing pool it was handed.
    async fn build_users_with_pool(
        &self,
        settings: &Settings,
        storage: &Storage,
    ) -> anyhow::Result<(Arc<dyn UserAuthenticator>, HashingPool)> {
        self.check()?;
        let users = &settings.users;
        let entry = pick(&self.users, "users", &users.kind)?;
        let table = section_table(
            "users",
            &users.kind,
            &users.tables,
            &self.users_kinds(),
            &[],
            Map::new(),
        )?;
        let ctx = self.context(settings, "users", &users.kind, table);
        let authenticator = entry
            .factory
            .build(&ctx, storage)
            .await
            .with_context(|| format!("building the {} user authenticator", users.kind))?;
        let extra = self.build_upstreams(settings).await?;
        if extra.is_empty() {
            return Ok((authenticator, ctx.hashing));
        }
        let combined: Arc<dyn UserAuthenticator> =
            Arc::new(WithUpstreams::new(authenticator, extra)?);
        Ok((combined, ctx.hashing))
    }

    /// Builds every `[upstreams.<name>]` (contacting none): the name is a plain path segment, the
    /// kind is registered, the factory accepts the table. Each comes with its section's name.
    async fn build_upstreams(
        &self,
        settings: &Settings,
    ) -> anyhow::Result<Vec<(String, Arc<dyn UpstreamAuthenticator>)>> {
        let mut built = Vec::new();
        for (name, table) in &settings.upstreams {
            let section = format!("upstreams.{name}");
            if !mcp_oauth_provider::upstream::is_upstream_name(name) {
                bail!(
                    "[{section}]: the upstream name {name:?} must be 1-64 characters of a-z, 0-9, - \
                     and _ (it is the last segment of the callback URL /login/callback/<name>)"
                );
            }
            let mut table = table.clone();
            let kind = match table.remove("kind") {
                Some(Value::String(k)) => k,
                Some(_) => bail!("{section}.kind must be a string"),
                None => bail!(
                    "{section}.kind is missing: say which kind of upstream it is (available: {})",
                    self.upstream_kinds().join(", ")
                ),
            };
            let entry = pick(&self.upstream, &section, &kind)?;
            let ctx = self.context(settings, "upstreams", name, Value::Object(table));
            let upstream = entry
                .factory
                .build(&ctx, name)
                .await
                .with_context(|| format!("building the {kind} upstream [{section}]"))?;
            if upstream.name() != name {
                bail!(
                    "[{section}]: the {kind} upstream calls itself {:?}; an upstream's name must be \
                     its table's key",
                    upstream.name()
                );
            }
            built.push((format!("[{section}]"), upstream));
        }
        Ok(built)
    }

    async fn build_policy(&self, settings: &Settings) -> anyhow::Result<Arc<dyn Policy>> {
        self.check()?;
        let policy = &settings.policy;
        let entry = pick(&self.policy, "policy", &policy.kind)?;
        let table = section_table(
            "policy",
            &policy.kind,
            &policy.tables,
            &self.policy_kinds(),
            &[],
            Map::new(),
        )?;
        let ctx = self.context(settings, "policy", &policy.kind, table);
        entry
            .factory
            .build(&ctx)
            .await
            .with_context(|| format!("building the {} policy", policy.kind))
    }
}

fn pick<'a, F: ?Sized>(
    map: &'a BTreeMap<&'static str, Entry<F>>,
    section: &str,
    kind: &str,
) -> anyhow::Result<&'a Entry<F>> {
    map.get(kind).with_context(|| {
        let known: Vec<_> = map.keys().copied().collect();
        format!(
            "{section}.kind {kind:?} is not registered (available: {})",
            known.join(", ")
        )
    })
}

/// The table handed to the selected `kind` of `section`: `[section.<kind>]`, plus keys the core
/// reads in `[section]` itself and hands over (`injected`, e.g. `[storage] url`), plus keys that
/// lived in `[section]` before each backend had its own table (`legacy`, `[section.options]`).
///
/// Every other key of `[section]` must be the table of a registered kind (tables of kinds not
/// selected are ignored, so a configuration can keep them while switching); anything else is an
/// error naming the key. A key given twice (e.g. `[storage] url` and `[storage.postgres] url`) is
/// an error too.
pub fn section_table(
    section: &str,
    kind: &str,
    rest: &Map<String, Value>,
    kinds: &[&str],
    legacy: &[&str],
    injected: Map<String, Value>,
) -> anyhow::Result<Value> {
    let mut own = Map::new();
    let mut forwarded = injected;
    for (key, value) in rest {
        if key == kind {
            match value {
                Value::Object(table) => own = table.clone(),
                _ => bail!("{section}.{key} must be a table ([{section}.{key}])"),
            }
        } else if kinds.contains(&key.as_str()) {
            // The table of another registered kind: kept for switching back, not read.
        } else if key == LEGACY_OPTIONS_TABLE {
            let Value::Object(table) = value else {
                bail!("{section}.{key} must be a table");
            };
            for (k, v) in table {
                forward(section, &mut forwarded, k, v.clone())?;
            }
        } else if legacy.contains(&key.as_str()) {
            forward(section, &mut forwarded, key, value.clone())?;
        } else {
            let tables: Vec<String> = kinds.iter().map(|k| format!("[{section}.{k}]")).collect();
            bail!(
                "{section}.{key} is not a setting: [{section}] takes `kind`, the core's keys and \
                 one table per registered {section} kind ({})",
                tables.join(", ")
            );
        }
    }
    for (key, value) in forwarded {
        if own.contains_key(&key) {
            bail!("{section}.{key} and {section}.{kind}.{key} are both set; keep one");
        }
        own.insert(key, value);
    }
    Ok(Value::Object(own))
}

fn forward(
    section: &str,
    into: &mut Map<String, Value>,
    key: &str,
    value: Value,
) -> anyhow::Result<()> {
    if into.insert(key.to_string(), value).is_some() {
        bail!("{section}.{key} is set twice; keep one");
    }
    Ok(())
}

/// Where the key-encryption key for signing keys (see `oauth::key_encryption`) comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `[keys] encryption_key` (checked, never printed).
    Configured,
    /// A random key per start: the store dies with the process anyway.
    Random,
    /// A key file generated beside the store's files, in this directory.
    File(std::path::PathBuf),
}

/// Where the key-encryption key comes from: configured, else what the store's locality allows (a
/// random key for a store that dies with the process, a generated file in the data directory for
/// one machine's files); a shared store requires a configured one. Has no side effects (`config
/// check` calls it).
pub fn key_encryption_key_source(
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<KeySource> {
    if let Some(text) = configured_key(settings) {
        KeyEncryptionKey::parse(text)?;
        return Ok(KeySource::Configured);
    }
    match registry.storage_locality(settings)? {
        StoreLocality::InProcess => Ok(KeySource::Random),
        StoreLocality::LocalFiles => Ok(KeySource::File(settings.data_dir())),
        StoreLocality::Shared => bail!(
            "keys.encryption_key is required with storage kind {:?}: every server on a shared store \
             must use the same one. Generate one with `openssl rand -base64 32` and set \
             MCP_OAUTH__KEYS__ENCRYPTION_KEY",
            settings.storage.kind
        ),
    }
}

fn configured_key(settings: &Settings) -> Option<&str> {
    settings
        .keys
        .encryption_key
        .as_deref()
        .filter(|t| !t.is_empty())
}

/// The key-encryption key from [`key_encryption_key_source`] (creating the key file when needed).
pub fn key_encryption_key(
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<KeyEncryptionKey> {
    match key_encryption_key_source(settings, registry)? {
        KeySource::Configured => KeyEncryptionKey::parse(configured_key(settings).unwrap_or("")),
        KeySource::Random => Ok(KeyEncryptionKey::random()),
        KeySource::File(dir) => KeyEncryptionKey::load_or_create_file(&dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    const KINDS: &[&str] = &["memory", "postgres", "sqlite"];

    #[test]
    fn a_backend_gets_its_own_table_only() {
        let rest = map(json!({
            "sqlite": {"synchronous": "normal"},
            "postgres": {"search_path": "x"},
        }));
        let t = section_table(
            "storage",
            "sqlite",
            &rest,
            KINDS,
            LEGACY_STORAGE_KEYS,
            Map::new(),
        )
        .unwrap();
        assert_eq!(t, json!({"synchronous": "normal"}));
        let injected = map(json!({"url": "postgres://db/x"}));
        let t = section_table(
            "storage",
            "postgres",
            &rest,
            KINDS,
            LEGACY_STORAGE_KEYS,
            injected,
        )
        .unwrap();
        assert_eq!(t, json!({"search_path": "x", "url": "postgres://db/x"}));
        let none = section_table("storage", "memory", &rest, KINDS, &[], Map::new()).unwrap();
        assert_eq!(none, json!({}));
    }

    #[test]
    fn old_flat_keys_and_the_options_table_still_reach_the_backend() {
        let rest = map(json!({"sqlite_synchronous": "normal", "options": {"a": 1}}));
        let t = section_table(
            "storage",
            "sqlite",
            &rest,
            KINDS,
            LEGACY_STORAGE_KEYS,
            Map::new(),
        )
        .unwrap();
        assert_eq!(t, json!({"sqlite_synchronous": "normal", "a": 1}));
    }

    #[test]
    fn unknown_keys_and_duplicates_are_named() {
        let typo = map(json!({"sqllite": {"synchronous": "normal"}}));
        let err = section_table("storage", "sqlite", &typo, KINDS, &[], Map::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("storage.sqllite") && err.contains("[storage.sqlite]"),
            "{err}"
        );
        let twice = map(json!({"postgres": {"url": "postgres://a/b"}}));
        let err = section_table(
            "storage",
            "postgres",
            &twice,
            KINDS,
            &[],
            map(json!({"url": "postgres://c/d"})),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("storage.url") && err.contains("storage.postgres.url"),
            "{err}"
        );
        let scalar = map(json!({"sqlite": "x"}));
        assert!(section_table("storage", "sqlite", &scalar, KINDS, &[], Map::new()).is_err());
    }

    struct Impostor;

    #[async_trait::async_trait]
    impl ProviderFactory for Impostor {
        fn kind(&self) -> &'static str {
            "sqlite"
        }
        fn check_settings(&self, _ctx: &FactoryContext) -> ProviderResult<()> {
            Ok(())
        }
        async fn open(&self, _ctx: &FactoryContext) -> ProviderResult<Storage> {
            Ok(mcp_oauth_provider_memory::MemoryStore::new().storage())
        }
    }

    #[test]
    fn a_clashing_kind_is_an_error_naming_both_factories() {
        let r = Registry::builtin().with_storage(Impostor);
        let err = r.check().unwrap_err().to_string();
        assert!(err.contains("\"sqlite\""), "{err}");
        assert!(
            err.contains("SqliteFactory") && err.contains("Impostor"),
            "{err}"
        );
        Registry::builtin().check().unwrap();
    }

    #[test]
    fn a_clashing_upstream_kind_is_an_error_naming_both_factories() {
        let r = Registry::builtin().with_upstream(mcp_oauth_provider_oidc::OidcUpstreamFactory);
        let err = r.check().unwrap_err().to_string();
        assert!(
            err.contains("upstreams kind \"oidc\" is registered twice"),
            "{err}"
        );
        assert_eq!(
            Registry::builtin().upstream_kinds(),
            vec!["github", "oauth2", "oidc"]
        );
    }
}
