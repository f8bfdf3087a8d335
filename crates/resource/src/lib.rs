//! # mcp-oauth-resource: the resource-server toolkit
//!
//! Turns any axum router or tower service — an rmcp MCP server included — into an OAuth 2.1
//! protected resource that MCP clients can discover and call:
//!
//! - RFC 6750 §2.1/§3: bearer tokens from the `Authorization` header only, on every request (MCP:
//!   never authenticated by session id), and challenges that say what to do next (401 with
//!   `resource_metadata` and `scope`, `error="invalid_token"` only when a token was sent; 400
//!   `invalid_request`; 403 `insufficient_scope` for step-up).
//! - RFC 9728: protected resource metadata at the path-inserted and root well-known URIs, named by
//!   the 401 challenge (§5.1).
//! - RFC 8707 §2: only tokens whose audience is this resource are accepted.
//! - RFC 9068 §4: JWT access-token validation with the issuer's JWKS; or RFC 7662 introspection.
//! - MCP transports: `Origin` validation and a `Host` allow-list against DNS rebinding.
//!
//! It works with any OAuth 2.1 authorization server that publishes RFC 8414 metadata, and depends on
//! no part of the `mcp-oauth` server (which re-exports it as `mcp_oauth::resource`, adding the
//! co-hosted verifier for resources served by the authorization server itself).
//!
//! The verifiers make outbound https requests with rustls and no crypto provider of their own:
//! install one at start-up, e.g. `rustls::crypto::ring::default_provider().install_default()`.
//!
//! # Features
//!
//! - `rmcp`: `From<IdentityError>` and `From<InsufficientScope>` for `rmcp::ErrorData`, so an rmcp
//!   tool can `?` [`identity`] and [`require_scopes`] and the client still gets the step-up
//!   challenge. `examples/protect_axum.rs` shows a whole rmcp server behind the layer.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::post};
//! use mcp_oauth_resource::{BearerAuthLayer, JwksVerifier, ProtectedResource, metadata_router};
//!
//! let resource = ProtectedResource::new("https://mcp.example.com/mcp", "https://auth.example.com")?
//!     .with_scopes(["mcp:tools", "mcp:admin"])?;
//! let verifier = JwksVerifier::discover("https://auth.example.com").await?;
//! let app: Router = Router::new()
//!     .route("/mcp", post(|| async { "hello, verified caller" }))
//!     .layer(BearerAuthLayer::new(resource.clone(), verifier))
//!     .merge(metadata_router(&resource)); // merged after the layer: discovery needs no token
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`protected`]: [`ProtectedResource`], the declaration (URI, issuer, scopes, tool scopes).
//! - [`layer`]: [`BearerAuthLayer`], the tower layer running every check.
//! - [`challenge`]: the `WWW-Authenticate` challenges and JSON error bodies.
//! - [`verifier`]: the [`TokenVerifier`] trait, [`Identity`], and the JWKS and introspection
//!   verifiers.
//! - [`scope`]: step-up decisions and the helper a handler calls to demand a scope.
//! - [`metadata`]: the RFC 9728 document and its router.
//! - [`origin`]: `Origin` validation and the `Host` allow-list.
//! - [`session_binding`]: MCP sessions bound to the user and client that created them.
//! - [`uri`]: the declared [`Resource`](uri::Resource), canonical resource URIs, scope tokens and
//!   loopback hosts (the authorization server uses the same rules).

pub mod challenge;
pub mod layer;
pub mod metadata;
pub mod origin;
pub mod protected;
pub mod scope;
pub mod session_binding;
pub mod uri;
pub mod verifier;

pub use challenge::Rejection;
pub use layer::{BearerAuth, BearerAuthLayer};
pub use metadata::metadata_router;
pub use origin::OriginPolicy;
pub use protected::ProtectedResource;
pub use scope::{IdentityError, InsufficientScope, identity, require_scopes};
pub use verifier::{Identity, IntrospectionVerifier, JwksVerifier, TokenVerifier, VerifyError};
