//! Schema migrations, embedded in the binary: `migrations/sqlite/NNNN_name.sql` and
//! `migrations/postgres/NNNN_name.sql`, the same numbers and names in both (a unit test fails if the
//! folders drift). Applied migrations are recorded with a checksum in `mcp_oauth_migrations`; an
//! applied migration is never edited — a change is a new file.

use mcp_oauth_provider::{MigrationInfo, SchemaStatus};

/// One embedded migration.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

impl Migration {
    pub fn info(&self) -> MigrationInfo {
        MigrationInfo {
            version: self.version,
            name: self.name.to_string(),
        }
    }

    /// FNV-1a 64 of the SQL text: detects an applied migration whose file was edited afterwards.
    pub fn checksum(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.sql.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

macro_rules! embed {
    ($dialect:literal: $($version:literal $file:literal $name:literal),* $(,)?) => {
        &[$(Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../../migrations/", $dialect, "/", $file, "_", $name, ".sql")),
        }),*]
    };
}

/// SQLite migrations, oldest first.
pub const SQLITE: &[Migration] = embed!(
    "sqlite": 1 "0001" "initial", 2 "0002" "secure_defaults", 3 "0003" "sign_in_throttle",
    4 "0004" "client_last_used", 5 "0005" "shared_state"
);
/// Postgres migrations, oldest first.
pub const POSTGRES: &[Migration] = embed!(
    "postgres": 1 "0001" "initial", 2 "0002" "secure_defaults", 3 "0003" "sign_in_throttle",
    4 "0004" "client_last_used", 5 "0005" "shared_state"
);

/// Creates the bookkeeping table.
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS mcp_oauth_migrations (\
    version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at BIGINT NOT NULL)";

/// Compares what the database recorded with what the binary embeds.
pub fn status(known: &[Migration], applied: &[(i64, String, String)]) -> SchemaStatus {
    let mut out = SchemaStatus::default();
    for (version, name, checksum) in applied {
        match known.iter().find(|m| m.version == *version) {
            Some(m) if m.checksum() == *checksum => out.applied.push(m.info()),
            _ => out.unknown.push(MigrationInfo {
                version: *version,
                name: name.clone(),
            }),
        }
    }
    for m in known {
        if !applied.iter().any(|(v, _, _)| *v == m.version) {
            out.pending.push(m.info());
        }
    }
    out
}

/// Generates `schema_status(pool)` and `apply(pool)` for one dialect. `$lock`/`$unlock` serialise
/// concurrent migrators (Postgres advisory lock; SQLite needs none beyond its writer lock).
macro_rules! migrator {
    ($db:ty, $known:expr, $lock:expr, $unlock:expr) => {
        /// Where the schema stands.
        pub async fn schema_status(pool: &sqlx::Pool<$db>) -> mcp_oauth_provider::ProviderResult<mcp_oauth_provider::SchemaStatus> {
            let mut conn = pool.acquire().await.map_err(|e| crate::errors::map_err("connect", e))?;
            let applied = read_applied(&mut conn).await?;
            Ok(crate::migrations::status($known, &applied))
        }

        async fn read_applied(
            conn: &mut <$db as sqlx::Database>::Connection,
        ) -> mcp_oauth_provider::ProviderResult<Vec<(i64, String, String)>> {
            sqlx::raw_sql(crate::migrations::CREATE_TABLE)
                .execute(&mut *conn)
                .await
                .map_err(|e| crate::errors::map_err("create migrations table", e))?;
            sqlx::query_as::<_, (i64, String, String)>("SELECT version, name, checksum FROM mcp_oauth_migrations ORDER BY version")
                .fetch_all(&mut *conn)
                .await
                .map_err(|e| crate::errors::map_err("read migrations", e))
        }

        /// Applies every pending migration, each in its own transaction; returns those applied.
        pub async fn apply(pool: &sqlx::Pool<$db>) -> mcp_oauth_provider::ProviderResult<Vec<mcp_oauth_provider::MigrationInfo>> {
            let mut conn = pool.acquire().await.map_err(|e| crate::errors::map_err("connect", e))?;
            if let Some(lock) = $lock {
                sqlx::raw_sql(lock).execute(&mut *conn).await.map_err(|e| crate::errors::map_err("lock migrations", e))?;
            }
            let result = apply_locked(&mut conn).await;
            if let Some(unlock) = $unlock {
                // Session-level lock: release it even when a migration failed.
                let _ = sqlx::raw_sql(unlock).execute(&mut *conn).await;
            }
            result
        }

        async fn apply_locked(
            conn: &mut <$db as sqlx::Database>::Connection,
        ) -> mcp_oauth_provider::ProviderResult<Vec<mcp_oauth_provider::MigrationInfo>> {
            use sqlx::Connection;
            let applied = read_applied(&mut *conn).await?;
            let status = crate::migrations::status($known, &applied);
            if let Some(bad) = status.unknown.first() {
                return Err(mcp_oauth_provider::ProviderError::backend_msg(format!(
                    "the database has migration {} ({}) that this binary does not know or that was changed; \
                     refusing to migrate (is a newer mcp-oauth using this database?)",
                    bad.version, bad.name
                )));
            }
            let mut done = Vec::new();
            for info in status.pending {
                let Some(m) = $known.iter().find(|m| m.version == info.version) else { continue };
                let mut tx = conn.begin().await.map_err(|e| crate::errors::map_err("begin", e))?;
                sqlx::raw_sql(m.sql)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::errors::map_err("apply migration", e))?;
                sqlx::query("INSERT INTO mcp_oauth_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(m.checksum())
                    .bind(mcp_oauth_provider::unix_now())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| crate::errors::map_err("record migration", e))?;
                tx.commit().await.map_err(|e| crate::errors::map_err("commit migration", e))?;
                tracing::info!(version = m.version, name = m.name, "applied migration");
                done.push(info);
            }
            Ok(done)
        }
    };
}

pub(crate) use migrator;

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dialect: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../migrations")
            .join(dialect);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    }

    fn embedded(list: &[Migration]) -> Vec<String> {
        list.iter()
            .map(|m| format!("{:04}_{}.sql", m.version, m.name))
            .collect()
    }

    #[test]
    fn dialect_folders_do_not_drift() {
        let sqlite = files("sqlite");
        let postgres = files("postgres");
        assert_eq!(
            sqlite, postgres,
            "migrations/sqlite and migrations/postgres must hold the same numbers and names"
        );
        assert_eq!(
            embedded(SQLITE),
            sqlite,
            "every SQLite migration file must be embedded, in order"
        );
        assert_eq!(
            embedded(POSTGRES),
            postgres,
            "every Postgres migration file must be embedded, in order"
        );
        // Versions only have to increase: `status` matches applied and known migrations by
        // version, so a number left free for a migration written in parallel (a gap) is harmless;
        // that migration is applied when a binary that has it runs `migrate`.
        for pair in SQLITE.windows(2) {
            assert!(pair[0].version < pair[1].version, "versions increase");
        }
        assert_eq!(SQLITE.first().map(|m| m.version), Some(1));
    }

    #[test]
    fn a_gap_in_versions_is_filled_later() {
        // A database migrated by a binary with 1 and 3 meets a binary with 1, 2 and 3: 2 is
        // pending (and is applied then); nothing is reported as unknown.
        let m = |version, name| Migration {
            version,
            name,
            sql: "SELECT 1",
        };
        let known = [m(1, "a"), m(2, "b"), m(3, "c")];
        let applied: Vec<(i64, String, String)> = [&known[0], &known[2]]
            .iter()
            .map(|m| (m.version, m.name.to_string(), m.checksum()))
            .collect();
        let s = status(&known, &applied);
        assert_eq!(s.pending, vec![known[1].info()]);
        assert!(s.unknown.is_empty());
        assert_eq!(s.applied.len(), 2);
    }

    #[test]
    fn status_reports_pending_and_changed() {
        let applied = vec![(1, "initial".to_string(), SQLITE[0].checksum())];
        let s = status(SQLITE, &applied);
        assert_eq!(s.applied.len(), 1);
        assert_eq!(s.pending.len(), SQLITE.len() - 1);
        assert!(s.unknown.is_empty());
        let s = status(SQLITE, &[]);
        assert_eq!(s.pending.len(), SQLITE.len());
        let s = status(
            SQLITE,
            &[
                (1, "initial".into(), "edited".into()),
                (99, "future".into(), "x".into()),
            ],
        );
        assert_eq!(s.unknown.len(), 2);
    }
}
