//! The provider conformance kit against SQLite (a temp file per test) and Postgres (a schema per
//! test in the database named by `MCP_OAUTH_TEST_PG_URL`). When `MCP_OAUTH_REQUIRE_SERVICES=1` (set by
//! `scripts/test.sh`) an unreachable Postgres FAILS the tests; otherwise they are skipped with a note.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mcp_oauth_provider::Storage;

use crate::{PostgresStore, SqliteStore};

pub async fn sqlite_storage() -> Storage {
    sqlite_storage_batched(crate::group_commit::DEFAULT_MAX_BATCH).await
}

/// A migrated SQLite store committing at most `max_batch` token writes together (1 = group
/// commit off).
pub async fn sqlite_storage_batched(max_batch: usize) -> Storage {
    let dir = std::env::temp_dir().join(format!(
        "mcp-oauth-sql-test-{}",
        mcp_oauth_provider::testkit::unique("db")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("test.db").display());
    let store = SqliteStore::connect(&url, crate::settings::SqliteSynchronous::Normal, 8)
        .await
        .unwrap()
        .with_group_commit(max_batch);
    store.migrate().await.unwrap();
    store.storage()
}

/// The Postgres URL tests use.
pub fn pg_url() -> String {
    std::env::var("MCP_OAUTH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A migrated store in a fresh schema, or `None` (skip) when Postgres is unreachable and not required.
pub async fn pg_store() -> Option<PostgresStore> {
    let required = std::env::var("MCP_OAUTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let url = pg_url();
    let admin = match PostgresStore::connect_lazy(&url, 1, None) {
        Ok(s) => s,
        Err(e) => panic!("bad MCP_OAUTH_TEST_PG_URL: {e}"),
    };
    let schema = format!(
        "t_{}",
        mcp_oauth_provider::testkit::unique("s").replace('-', "_")
    );
    if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
    {
        if required {
            panic!(
                "Postgres is required (MCP_OAUTH_REQUIRE_SERVICES=1) but unreachable at {url}: {e}"
            );
        }
        eprintln!(
            "Postgres unreachable at {url} ({e}); skipping (set MCP_OAUTH_REQUIRE_SERVICES=1 to fail instead)"
        );
        return None;
    }
    admin.pool().close().await;
    let store = PostgresStore::connect_lazy(&url, 8, Some(&schema)).unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

mod sqlite {
    mcp_oauth_provider::storage_conformance_tests!(super::sqlite_storage());
}

/// The same kit with group commit off (one transaction per write, the path Postgres-like stores take).
mod sqlite_no_group_commit {
    mcp_oauth_provider::storage_conformance_tests!(super::sqlite_storage_batched(1));
}

mod postgres {
    mcp_oauth_provider::storage_conformance_tests!(optional: async { super::pg_store().await.map(|s| s.storage()) });
}

/// Purging works in batches; a backlog larger than one batch is removed completely.
async fn purge_clears_a_backlog_larger_than_a_batch(storage: Storage) {
    use mcp_oauth_provider::testkit::{now, sample_access, unique};
    let family = unique("fam");
    for _ in 0..1_234 {
        storage
            .tokens
            .insert_tokens(sample_access(&family, now() - 10), None)
            .await
            .unwrap();
    }
    let live = sample_access(&family, now() + 600);
    storage
        .tokens
        .insert_tokens(live.clone(), None)
        .await
        .unwrap();
    let counts = storage.tokens.purge_expired(now()).await.unwrap();
    assert!(counts.access_tokens >= 1_234, "{counts:?}");
    assert_eq!(
        storage
            .tokens
            .purge_expired(now())
            .await
            .unwrap()
            .access_tokens,
        0,
        "nothing left"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&live.jti)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn sqlite_purges_in_batches() {
    purge_clears_a_backlog_larger_than_a_batch(sqlite_storage().await).await;
}

#[tokio::test]
async fn postgres_purges_in_batches() {
    if let Some(store) = pg_store().await {
        purge_clears_a_backlog_larger_than_a_batch(store.storage()).await;
    }
}
