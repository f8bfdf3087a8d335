//! The Postgres backend (`[storage] kind = "postgres"`): several `serve` processes on one database
//! act as one server. Per-family advisory locks make family revocation and racing inserts agree;
//! migrations run only from `mcp-oauth migrate`, under an advisory lock, and `serve` refuses a schema
//! that is behind. The pool connects lazily with a short acquire timeout, so a database outage is
//! answered with 503 quickly and the server recovers by itself when the database returns.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_oauth_provider::{
    FactoryContext, MigrationInfo, MigrationPolicy, ProviderError, ProviderFactory, ProviderResult,
    SchemaStatus, Storage,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::settings::PostgresSettings;

/// All stores on one Postgres pool.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// Postgres handles concurrent writers itself: no in-process writer lock.
    pub(crate) writer: Option<Arc<tokio::sync::Mutex<()>>>,
}

mod stores {
    use super::PostgresStore;
    crate::store::sql_store!(
        PostgresStore,
        sqlx::Postgres,
        Some("SELECT pg_advisory_xact_lock(hashtext($1))"),
        Some("SELECT pg_advisory_xact_lock(hashtext($1))")
    );
}

mod throttle {
    use super::PostgresStore;
    crate::throttle::sql_throttle!(
        PostgresStore,
        sqlx::Postgres,
        Some("SELECT pg_advisory_xact_lock(72430022, hashtext($1))")
    );
}

mod shared_state {
    use super::PostgresStore;
    crate::shared_state::sql_shared_state!(PostgresStore, sqlx::Postgres);
}

mod schema {
    use crate::migrations::{POSTGRES, migrator};
    migrator!(
        sqlx::Postgres,
        POSTGRES,
        Some("SELECT pg_advisory_lock(72430021)"),
        Some("SELECT pg_advisory_unlock(72430021)")
    );
}

impl PostgresStore {
    /// A lazily connecting pool for `url`; `search_path` selects a schema (tests use one per test).
    pub fn connect_lazy(
        url: &str,
        max_connections: u32,
        search_path: Option<&str>,
    ) -> ProviderResult<Self> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(|e| ProviderError::backend("invalid Postgres URL", e))?;
        if let Some(schema) = search_path {
            options = options.options([("search_path", schema)]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy_with(options);
        Ok(Self { pool, writer: None })
    }

    /// Postgres commits each write on its own connection; its WAL writer already flushes
    /// concurrent commits together.
    #[cfg(feature = "sqlite")]
    pub(crate) fn group_commit(&self) -> Option<&crate::group_commit::GroupCommit> {
        None
    }

    pub fn storage(&self) -> Storage {
        let store = Arc::new(self.clone());
        Storage::from_one(store.clone())
            .with_users(store.clone())
            .with_shared_state(store.clone())
            .with_pool_gauge(store)
    }

    pub async fn schema_status(&self) -> ProviderResult<SchemaStatus> {
        schema::schema_status(&self.pool).await
    }

    pub async fn migrate(&self) -> ProviderResult<Vec<MigrationInfo>> {
        schema::apply(&self.pool).await
    }

    /// The pool (tests create schemas with it).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Registers `[storage] kind = "postgres"`.
pub struct PostgresFactory;

impl PostgresFactory {
    /// The table, with a `url` that parses (checked offline, naming the key).
    fn settings(ctx: &FactoryContext) -> ProviderResult<(PostgresSettings, PgConnectOptions)> {
        let (s, url) = PostgresSettings::from_ctx(ctx)?;
        // Only the top-level message: sqlx repeats its cause in it.
        let options = PgConnectOptions::from_str(&url).map_err(|e| {
            ctx.invalid(format!(
                "url is not a Postgres URL like postgres://user@host:5432/db ({e}); it is [storage] \
                 url or MCP_OAUTH__STORAGE__URL"
            ))
        })?;
        Ok((s, options))
    }

    fn connect(ctx: &FactoryContext) -> ProviderResult<PostgresStore> {
        Self::settings(ctx)?;
        let (s, url) = PostgresSettings::from_ctx(ctx)?;
        PostgresStore::connect_lazy(
            &url,
            s.max_connections.unwrap_or(10),
            s.search_path.as_deref(),
        )
    }
}

#[async_trait]
impl ProviderFactory for PostgresFactory {
    fn kind(&self) -> &'static str {
        "postgres"
    }
    fn check_settings(&self, ctx: &FactoryContext) -> ProviderResult<()> {
        Self::settings(ctx).map(drop)
    }
    /// `database <db> on <host>:<port>` (never the user or password).
    fn location(&self, ctx: &FactoryContext) -> Option<String> {
        let (s, options) = Self::settings(ctx).ok()?;
        let schema = s
            .search_path
            .as_deref()
            .map(|p| format!(", schema {p}"))
            .unwrap_or_default();
        Some(format!(
            "postgres database {} on {}:{}{schema}",
            options.get_database().unwrap_or("(the user's default)"),
            options.get_host(),
            options.get_port()
        ))
    }
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage> {
        Ok(Self::connect(ctx)?.storage())
    }
    fn migration_policy(&self) -> MigrationPolicy {
        MigrationPolicy::Explicit
    }
    async fn schema_status(&self, ctx: &FactoryContext) -> ProviderResult<SchemaStatus> {
        Self::connect(ctx)?.schema_status().await
    }
    async fn migrate(&self, ctx: &FactoryContext) -> ProviderResult<Vec<MigrationInfo>> {
        Self::connect(ctx)?.migrate().await
    }
    async fn backup(
        &self,
        _ctx: &FactoryContext,
        _dir: &std::path::Path,
    ) -> ProviderResult<Vec<std::path::PathBuf>> {
        Err(ProviderError::Unsupported(
            "back up Postgres with its own tools: `pg_dump --format=custom` (and keep \
             [keys] encryption_key with it: the dump's signing keys open only with it)"
                .into(),
        ))
    }
}

impl mcp_oauth_provider::PoolGauge for PostgresStore {
    fn pool_use(&self) -> mcp_oauth_provider::PoolUse {
        mcp_oauth_provider::PoolUse {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
