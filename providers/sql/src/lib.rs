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
//! - [`shared_state`]: the `sql_shared_state!` macro: `SharedStateStore` (single-use claims, the
//!   client metadata document cache).
//! - [`migrations`]: embedded migrations (`migrations/{sqlite,postgres}`), status and the runner.
//! - `sqlite`: `SqliteStore`, `SqliteFactory` (migrates on `serve`).
//! - [`group_commit`]: SQLite token writes that arrive together share one commit (one fsync).
//! - `postgres`: `PostgresStore`, `PostgresFactory` (migrates only on `mcp-oauth migrate`).
//! - [`settings`]: the `[storage]` keys these backends read.
//! - [`errors`]: sqlx errors → `ProviderError` (outages are `Unavailable`).
//! - [`json`]: JSON-text columns.

pub mod errors;
#[cfg(feature = "sqlite")]
pub mod group_commit;
pub mod json;
pub mod migrations;
pub mod settings;
pub mod shared_state;
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

#[cfg(all(test, feature = "sqlite", feature = "postgres"))]
mod conformance_tests;
