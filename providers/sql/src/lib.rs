//! # mcp-oauth-provider-sql
//!
//! SQLite (feature `sqlite`) and Postgres (feature `postgres`) storage for mcp-oauth, written against
//! the public provider API only. Every store is implemented once, as SQL valid in both dialects, and
//! instantiated per dialect; atomic operations are atomic in SQL (see [`store`]).
//!
//! # Layout
//!
//! - [`store`]: the `sql_store!` macro: every store trait, written once.
//! - [`throttle`]: the `sql_throttle!` macro: `SignInThrottleStore` (its own file, its own macro).
//! - [`migrations`]: embedded migrations (`migrations/{sqlite,postgres}`), status and the runner.
//! - `sqlite`: `SqliteStore`, `SqliteFactory` (migrates on `serve`).
//! - `postgres`: `PostgresStore`, `PostgresFactory` (migrates only on `mcp-oauth migrate`).
//! - [`settings`]: the `[storage]` keys these backends read.
//! - [`file_mode`]: owner-only database files and data directory.
//! - [`errors`]: sqlx errors → `ProviderError` (outages are `Unavailable`).
//! - [`json`]: JSON-text columns.

pub mod errors;
pub mod file_mode;
pub mod json;
pub mod migrations;
pub mod settings;
pub mod store;
pub mod throttle;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

#[cfg(feature = "postgres")]
pub use postgres::{PostgresFactory, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteFactory, SqliteStore};

use mcp_oauth_provider::{ProviderError, ProviderResult};

/// Creates `dir` (and parents) readable only by the owner; an existing `dir` is made owner-only
/// (see [`file_mode`]).
pub fn create_private_dir(dir: &std::path::Path) -> ProviderResult<()> {
    if dir.exists() {
        return file_mode::secure_existing_dir(dir);
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        ProviderError::backend(format!("creating data directory {}", dir.display()), e)
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            ProviderError::backend(format!("restricting data directory {}", dir.display()), e)
        })?;
    }
    Ok(())
}

#[cfg(all(test, feature = "sqlite", feature = "postgres"))]
mod conformance_tests;
