//! # mcp-oauth-client
//!
//! An OAuth 2.1 client for MCP servers (MCP 2025-11-25 *Authorization*, client side): it logs in
//! to any standards-following OAuth-protected MCP server, keeps its tokens encrypted, refreshes
//! them safely when several processes share them, and hands out authorised rmcp sessions. It
//! depends on no server code, so MCP client applications can use it alone.
//!
//! ```no_run
//! # async fn demo() -> Result<(), mcp_oauth_client::Error> {
//! use std::sync::Arc;
//! use mcp_oauth_client::{Authorizer, ClientOptions, FileStore, connect};
//!
//! let store = Arc::new(FileStore::open(&FileStore::default_dir()?)?);
//! let auth = Authorizer::new("https://mcp.example.com/mcp", store, ClientOptions::default())?;
//! let mcp = connect(&auth).await?; // discovery, login, refresh: all inside the request path
//! let tools = mcp.list_all_tools().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`error`]: the one error type; every message says what happened and what to do next.
//! - [`urls`]: URL safety (https, or http to loopback; `--insecure`), canonical server URLs.
//! - [`secret`]: secrets that never print, OS randomness, the clock.
//! - [`discovery`]: `WWW-Authenticate`, RFC 9728 resource metadata, RFC 8414 / OIDC metadata,
//!   2025-03-26 fallbacks, the S256 check.
//! - [`registration`]: pre-registered → client ID metadata document → RFC 7591 dynamic.
//! - [`flow`]: PKCE, the authorization request and its response checks, the token endpoint,
//!   RFC 7009 revocation.
//! - [`callback`]: the loopback callback server and its pages.
//! - [`login`]: browser and headless login modes, and the HTML form reader.
//! - [`store`]: encrypted records, keys, atomic writes, the cross-process lock, the
//!   [`TokenStore`](store::TokenStore) trait.
//! - [`session`]: the authorizer (refresh, login, step-up, logout), the rmcp transport glue,
//!   [`connect`], and the stdio proxy.

pub mod callback;
pub mod discovery;
pub mod error;
pub mod flow;
pub mod login;
pub mod registration;
pub mod secret;
pub mod session;
pub mod store;
pub mod urls;

pub use error::{Error, Result};
pub use login::LoginMode;
pub use secret::Secret;
pub use session::{Authorizer, ClientOptions, LogoutReport, connect};
pub use store::{FileStore, Record, RecordKey, StoreKey, TokenStore};
pub use urls::UrlPolicy;
