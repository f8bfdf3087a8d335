//! # mcp-oauth
//!
//! An OAuth 2.1 authorization server made for MCP servers: RFC 8414 metadata, RFC 7591 registration,
//! PKCE (S256 only), RFC 8707 resource-bound RFC 9068 JWT access tokens, refresh-token rotation,
//! RFC 7009 revocation, RFC 7662 introspection, RFC 9207 `iss`. The core talks to a trait object
//! ([`mcp_oauth_provider::OAuthServerProvider`]) whose backends are chosen in config.
//!
//! # Layout
//!
//! - [`config`]: `Settings`, layered defaults → file → `MCP_OAUTH__…` env; unknown keys rejected.
//! - [`registry`]: the plugin seam: storage, users and policy factories by name, each handed its
//!   own config table; clashing kinds are errors.
//! - [`server`]: the server as a library (`Server::build(settings, registry)`, `bind`, `run`): what
//!   the CLI, the tests, the load driver and a plugin's binary start.
//! - [`state`]: `AppState`, what every handler sees.
//! - [`app`]: the axum router (CORS where MCP clients need it), `run`, and the background purge.
//! - [`listener`]: the accept loop: header read timeout, connection limits, graceful shutdown.
//! - [`observability`]: `/healthz`, `/readyz`, `/metrics`, the access log, logging set-up and the
//!   optional admin listener.
//! - [`request_timeouts`]: the body read deadline and the handler timeout.
//! - [`error`]: the error-code table (code → RFC string → HTTP status), `OAuthError`, `AuthorizeError`.
//! - [`oauth`]: the protocol core, one module per endpoint plus PKCE, redirect URIs, resources,
//!   client authentication, JWTs, keys, secrets, parameters, pages.
//! - [`resource`]: the resource-server toolkit, i.e. the `mcp-oauth-resource` crate re-exported
//!   (bearer layer, JWKS / introspection verifiers, RFC 9728 metadata, Origin and Host checks), plus
//!   the co-hosted verifier that reads this server's own state.
//! - [`demo`]: the demo MCP server (rmcp) and how it is mounted.
//! - [`users`]: the `local` authenticator (argon2id on a bounded pool), account seeding.
//! - [`cli`]: the command line, one module per command group.

pub mod app;
pub mod cli;
pub mod config;
pub mod demo;
pub mod error;
pub mod listener;
pub mod oauth;
pub mod observability;
pub mod registry;
pub mod request_timeouts;
pub mod resource;
pub mod server;
pub mod state;
pub mod users;
