//! The provider conformance kit against SQLite (a temp file per test) and Postgres (a schema per
//! test in the database named by `MCP_OAUTH_TEST_PG_URL`). When `MCP_OAUTH_REQUIRE_SERVICES=1` (set by
//! `scripts/test.sh`) an unreachable Postgres FAILS the tests; otherwise they are skipped with a note.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mcp_oauth_provider::Storage;

use crate::{PostgresStore, SqliteStore};

pub async fn sqlite_storage() -> Storage {
    let dir = std::env::temp_dir().join(format!(
        "mcp-oauth-sql-test-{}",
        mcp_oauth_provider::testkit::unique("db")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("test.db").display());
    let store = SqliteStore::connect(&url, false, 8).await.unwrap();
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

mod postgres {
    mcp_oauth_provider::storage_conformance_tests!(optional: async { super::pg_store().await.map(|s| s.storage()) });
}
