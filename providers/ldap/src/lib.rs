//! LDAP user authentication for mcp-oauth: `[users] kind = "ldap"`.
//!
//! Users sign in with their directory password; the directory checks it with a simple Bind
//! (RFC 4511 §4.2), found either directly from a DN template or by a service account's search.
//! Attributes become the token's subject and the user's name and email; groups become scopes.
//! Works with any storage backend. See `config/examples/ldap.toml` for every setting.
//!
//! # Layout
//!
//! - [`authenticator`]: [`LdapAuthenticator`], the sign-in check (bind modes, attributes, groups →
//!   scopes, the refusals made before contacting the directory).
//! - [`connection`]: opening connections (ldap, ldaps, StartTLS, CA file), timeouts, the shared
//!   service connection, and what LDAP failures mean (`Rejected` vs `Unavailable`).
//! - [`dn`]: RFC 4514 DN and RFC 4515 filter escaping, username checks, templates, DN comparison.
//! - [`settings`]: `[users.ldap]` parsed and checked; the service account's secret.
//! - [`factory`]: [`LdapAuthenticatorFactory`], registered as kind `ldap`.

pub mod authenticator;
pub mod connection;
pub mod dn;
pub mod factory;
pub mod settings;

pub use authenticator::LdapAuthenticator;
pub use factory::LdapAuthenticatorFactory;
pub use settings::{LdapSettings, SettingsError};
