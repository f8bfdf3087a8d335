//! The protocol core: one module per endpoint, plus the rules they share.
//!
//! Endpoints: [`metadata`] (RFC 8414 / OIDC discovery), [`register`] (RFC 7591), [`authorize`]
//! (OAuth 2.1 §4.1.1), [`login`] (sign-in + consent), [`token`] (OAuth 2.1 §3.2), [`revoke`]
//! (RFC 7009), [`introspect`] (RFC 7662), [`jwks`] (RFC 7517).
//!
//! Shared rules:
//! - clients: [`client_auth`] (RFC 6749 §2.3, RFC 7523 for document clients), [`metadata_fields`]
//!   (typed client metadata fields, RFC 7591 §2), [`redirect_uri`]
//!   (RFC 8252 §7.3), [`cimd`] (client ID metadata documents: URL client ids, fetched safely),
//!   [`client_usage`] (when each client was last used, recorded at most once a minute);
//! - grants: [`pkce`] (RFC 7636), [`resources`] (RFC 8707 + scopes), [`policy`] (what a policy
//!   plugin may decide, narrowed by the core), [`grants`] (ending grants by user, client or id);
//! - tokens and keys: [`tokens`] (RFC 9068 JWTs), [`keys`], [`key_encryption`] (signing keys sealed
//!   at rest), [`jwks`], [`secrets`];
//! - the browser: [`pages`] (HTML), [`browser_binding`] (login CSRF), [`login_throttle`] (password
//!   guessing), [`upstream`] (sign-in through an upstream identity provider: start, callback, the
//!   sealed pending sign-in);
//! - requests: [`params`] (RFC 6749 §3.1 parameter rules), [`client_address`] (the client's IP,
//!   `X-Forwarded-For` from trusted proxies only), [`rate_limit`] (per-address request rates and
//!   open logins).

pub mod authorize;
pub mod browser_binding;
pub mod cimd;
pub mod client_address;
pub mod client_auth;
pub mod client_usage;
pub mod grants;
pub mod introspect;
pub mod jwks;
pub mod key_encryption;
pub mod keys;
pub mod login;
pub mod login_throttle;
pub mod metadata;
pub mod metadata_fields;
pub mod pages;
pub mod params;
pub mod pkce;
pub mod policy;
pub mod rate_limit;
pub mod redirect_uri;
pub mod register;
pub mod resources;
pub mod revoke;
pub mod secrets;
pub mod token;
pub mod tokens;
pub mod upstream;
