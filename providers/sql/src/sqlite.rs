//! The SQLite backend (`[storage] kind = "sqlite"`): the embedded default. WAL journal, a busy
//! timeout so concurrent writers queue instead of failing, `synchronous = FULL` by default so an
//! acknowledged write survives a crash of the process or the machine. The server migrates the
//! schema by itself on start (only this process uses the file).

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_oauth_provider::{
    FactoryContext, MigrationInfo, MigrationPolicy, ProviderError, ProviderFactory, ProviderResult,
    SchemaStatus, Storage, StoreLocality,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::group_commit::{DEFAULT_MAX_BATCH, GroupCommit};
use crate::settings::{SqliteSettings, SqliteSynchronous};

/// All stores on one SQLite pool.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// SQLite allows one writer at a time; writers of this process queue here instead of spinning in
    /// SQLite's busy handler (whose sleeps grow to 100 ms and dominate tail latency).
    pub(crate) writer: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Token writes committed together (see [`crate::group_commit`]); `None` = one transaction each.
    pub(crate) group: Option<GroupCommit>,
}

pub(crate) mod stores {
    use super::SqliteStore;
    crate::store::sql_store!(SqliteStore, sqlx::Sqlite, None, None);
}

mod throttle {
    use super::SqliteStore;
    crate::throttle::sql_throttle!(SqliteStore, sqlx::Sqlite, None);
}

mod shared_state {
    use super::SqliteStore;
    crate::shared_state::sql_shared_state!(SqliteStore, sqlx::Sqlite);
}

mod schema {
    use crate::migrations::{SQLITE, migrator};
    migrator!(sqlx::Sqlite, SQLITE, None::<&str>, None::<&str>);
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url`.
    pub async fn connect(
        url: &str,
        synchronous: SqliteSynchronous,
        max_connections: u32,
    ) -> ProviderResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| ProviderError::backend(format!("invalid SQLite URL {url:?}"), e))?;
        // Owner-only database, WAL and shared-memory files (see `mcp_oauth_provider::files`).
        let on_disk = !(url.contains(":memory:") || url.contains("mode=memory"));
        if on_disk && !options.get_filename().as_os_str().is_empty() {
            mcp_oauth_provider::files::secure_database_file(options.get_filename())?;
        }
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match synchronous {
                SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
                SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
            })
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(|e| crate::errors::map_err("open SQLite database", e))?;
        let writer = Arc::new(tokio::sync::Mutex::new(()));
        Ok(Self {
            group: Some(GroupCommit::start(
                pool.clone(),
                Arc::clone(&writer),
                DEFAULT_MAX_BATCH,
            )),
            pool,
            writer: Some(writer),
        })
    }

    /// Commits at most `max_batch` token writes together (`[storage.sqlite]
    /// group_commit_max_batch`); 1 turns group commit off (one transaction per write).
    pub fn with_group_commit(mut self, max_batch: usize) -> Self {
        self.group = match (&self.writer, max_batch) {
            (Some(writer), 2..) => Some(GroupCommit::start(
                self.pool.clone(),
                Arc::clone(writer),
                max_batch,
            )),
            _ => None,
        };
        self
    }

    /// The group-commit queue, when on.
    pub(crate) fn group_commit(&self) -> Option<&GroupCommit> {
        self.group.as_ref()
    }

    /// The parts, as the server core wants them.
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

    /// A consistent copy of the live database at `path` (`VACUUM INTO`: one read transaction, so
    /// writers keep going), created owner-only. `path` must not exist.
    pub async fn backup_to(&self, path: &std::path::Path) -> ProviderResult<()> {
        if path.exists() {
            return Err(ProviderError::Conflict(format!(
                "{} exists",
                path.display()
            )));
        }
        // VACUUM INTO fills an empty file: create it 0600 first so the copy is never readable by
        // others, even for a moment.
        mcp_oauth_provider::files::secure_database_file(path)?;
        let target = path.to_str().ok_or_else(|| {
            ProviderError::Unsupported(format!("{} is not a UTF-8 path", path.display()))
        })?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(|e| crate::errors::map_err("back up the SQLite database", e))?;
        Ok(())
    }

    /// `PRAGMA integrity_check`: "ok" when the file is sound.
    pub async fn integrity_check(&self) -> ProviderResult<String> {
        sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| crate::errors::map_err("integrity check", e))
    }
}

/// Registers `[storage] kind = "sqlite"`.
pub struct SqliteFactory;

impl SqliteFactory {
    /// The database file: `url`'s, else `<data_dir>/mcp-oauth.db`.
    fn path(ctx: &FactoryContext) -> ProviderResult<PathBuf> {
        let s = SqliteSettings::from_ctx(ctx)?;
        Ok(match s.url.filter(|u| !u.is_empty()) {
            Some(url) => SqliteConnectOptions::from_str(&url)
                .map_err(|e| {
                    ctx.invalid(format!(
                        "url is not a SQLite URL like sqlite:///path/to/file.db ({e})"
                    ))
                })?
                .get_filename()
                .to_path_buf(),
            None => ctx.data_dir.join("mcp-oauth.db"),
        })
    }

    async fn connect(ctx: &FactoryContext) -> ProviderResult<SqliteStore> {
        let s = SqliteSettings::from_ctx(ctx)?;
        let url = match s.url.clone().filter(|u| !u.is_empty()) {
            Some(url) => url,
            None => {
                let path: PathBuf = ctx.data_dir.join("mcp-oauth.db");
                mcp_oauth_provider::files::create_private_dir(&ctx.data_dir)?;
                format!("sqlite://{}", path.display())
            }
        };
        Ok(
            SqliteStore::connect(&url, s.synchronous, s.max_connections.unwrap_or(8))
                .await?
                .with_group_commit(s.group_commit_max_batch.unwrap_or(DEFAULT_MAX_BATCH)),
        )
    }
}

#[async_trait]
impl ProviderFactory for SqliteFactory {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    fn check_settings(&self, ctx: &FactoryContext) -> ProviderResult<()> {
        Self::path(ctx).map(drop)
    }
    fn location(&self, ctx: &FactoryContext) -> Option<String> {
        Some(format!(
            "sqlite database {}",
            Self::path(ctx).ok()?.display()
        ))
    }
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage> {
        Ok(Self::connect(ctx).await?.storage())
    }
    /// One machine's files: the generated key file beside the database is enough.
    fn locality(&self) -> StoreLocality {
        StoreLocality::LocalFiles
    }
    fn migration_policy(&self) -> MigrationPolicy {
        MigrationPolicy::OnServe
    }
    /// A database file that does not exist yet is not created: every migration is pending.
    async fn schema_status(&self, ctx: &FactoryContext) -> ProviderResult<SchemaStatus> {
        if !Self::path(ctx)?.exists() {
            return Ok(crate::migrations::status(crate::migrations::SQLITE, &[]));
        }
        Self::connect(ctx).await?.schema_status().await
    }
    async fn migrate(&self, ctx: &FactoryContext) -> ProviderResult<Vec<MigrationInfo>> {
        Self::connect(ctx).await?.migrate().await
    }
    async fn backup(
        &self,
        ctx: &FactoryContext,
        dir: &std::path::Path,
    ) -> ProviderResult<Vec<PathBuf>> {
        let path = dir.join("mcp-oauth.db");
        Self::connect(ctx).await?.backup_to(&path).await?;
        Ok(vec![path])
    }
}

impl mcp_oauth_provider::PoolGauge for SqliteStore {
    fn pool_use(&self) -> mcp_oauth_provider::PoolUse {
        mcp_oauth_provider::PoolUse {
            open: self.pool.size(),
            idle: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            max: self.pool.options().get_max_connections(),
        }
    }
}
