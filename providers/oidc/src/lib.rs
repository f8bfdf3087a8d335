//! # mcp-oauth-provider-oidc
//!
//! Sign-in through an upstream OpenID Connect provider (a company's Keycloak, Okta or Entra,
//! Google): `[users] kind = "oidc"` with `[users.oidc]`. It is an
//! [`UpstreamAuthenticator`](mcp_oauth_provider::UpstreamAuthenticator): the server core keeps the
//! login transaction, `state`, CSRF, the browser binding and consent; this crate discovers the
//! provider (OpenID Connect Discovery 1.0), builds the authorization request (code flow with PKCE
//! S256 and `nonce`, OIDC Core §3.1.2), redeems the code, validates the ID token (§3.1.3.7) and
//! maps its claims to the same `AuthenticatedUser` the password authenticators answer.
//!
//! The same provider can sit beside a password authenticator as `[upstreams.<name>] kind = "oidc"`,
//! and [`oauth2`] adds plain OAuth 2 providers with a userinfo API (`kind = "oauth2"`) and GitHub
//! (`kind = "github"`, with org/team allow-lists). Each upstream answers, with the user, the facts
//! its allow-list and scope map read, and judges them again at every refresh against its current
//! settings (`check_subject`).
//!
//! Register `<issuer>/login/callback/<name>` (default name `oidc` for `[users.oidc]`, the table's
//! key for `[upstreams.<name>]`) as the redirect URI at the provider. Every key is explained in
//! `config/examples/oidc.toml` and `config/examples/github.toml`.
//!
//! # Layout
//!
//! - [`settings`]: `[users.oidc]`, its checks, the client secret from env or a file.
//! - [`discovery`]: the provider's metadata and JWKS, fetched bounded and cached.
//! - [`http`]: bounded response bodies, Basic-auth encoding, plain upstream error codes.
//! - [`id_token`]: ID-token validation (signature, `iss`, `aud`, `exp`, `nonce`, `azp`).
//! - [`claims`]: claims → subject, e-mail, groups → scopes; the allow-list.
//! - [`judging`]: the facts kept of a user judged again at refresh (shared by every upstream kind).
//! - [`authenticator`]: `OidcUpstream` (the flow) and `OidcAuthenticator` (the users kind).
//! - [`oauth2`]: plain OAuth 2 upstreams with a userinfo API (`kind = "oauth2"`, `"github"`).
//! - [`factory`]: `OidcAuthenticatorFactory` (`[users] kind = "oidc"`) and `OidcUpstreamFactory`
//!   (`[upstreams.<name>] kind = "oidc"`), both registered as `oidc`.

pub mod authenticator;
pub mod claims;
pub mod discovery;
pub mod factory;
pub mod http;
pub mod id_token;
pub mod judging;
pub mod oauth2;
pub mod settings;

pub use authenticator::{OidcAuthenticator, OidcUpstream};
pub use factory::{OidcAuthenticatorFactory, OidcUpstreamFactory};
pub use oauth2::{GitHubUpstreamFactory, OAuth2Upstream, OAuth2UpstreamFactory};
