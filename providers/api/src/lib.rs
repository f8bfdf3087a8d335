//! # mcp-oauth-provider
//!
//! The provider API of `mcp-oauth`: the traits a storage backend, a user directory or a custom plugin
//! implements, the records they exchange, one error type, and (feature `testkit`) the conformance kit
//! every backend must pass.
//!
//! The server core owns every protocol rule (PKCE, redirect matching, single-use codes, refresh
//! rotation, audience binding); providers only store, authenticate and apply policy.
//!
//! **Writing a plugin? Start with the [`guide`]**: an authenticator and a policy from scratch (a
//! complete, tested example), what a storage backend must guarantee, the conformance kits, and the
//! binary that registers them.
//!
//! # Layout
//!
//! - [`guide`]: how to write, test and ship a plugin.
//! - [`error`]: `ProviderError` (Conflict / Unsupported / Unavailable / Backend) and `ProviderResult`.
//! - [`client`]: `Client`, `TokenEndpointAuthMethod`, `ClientStore`.
//! - [`token`]: codes, access-token records, refresh tokens, `TokenStore` (atomic take / rotate).
//! - [`key`]: `SigningKeyRecord`, `KeyStore`.
//! - [`user`]: `AuthenticatedUser`, `UserAuthenticator`, local accounts (`UserStore`).
//! - [`upstream`]: `UpstreamAuthenticator`, sign-in through an upstream identity provider (OIDC,
//!   OAuth 2) that answers the same `AuthenticatedUser`.
//! - [`interaction`]: login transactions and remembered consent, `InteractionStore`.
//! - [`throttle`]: sign-in throttle counters shared by every server on one store, `SignInThrottleStore`.
//! - [`shared_state`]: single-use claims and the client metadata document cache shared by every
//!   server on one store, `SharedStateStore` (and the in-process `LocalSharedState`).
//! - [`policy`]: `Policy` (scopes, lifetimes, registrations; safe defaults), `DefaultPolicy`.
//! - [`provider`]: `OAuthServerProvider` (parts + policy), `Storage`, `StandardProvider`.
//! - [`factory`]: `ProviderFactory`, `UserAuthenticatorFactory`, `PolicyFactory`: registration by
//!   name, each built from its own config table.
//! - [`duration`]: durations in configuration (`"15m"` or seconds), for the core and plugins.
//! - [`files`]: owner-only data directories and files for backends that keep files.
//! - [`hashing`]: `HashingPool`, the bounded pool every authenticator checks passwords on.
//! - `testkit` (feature): the conformance kits and their macros, `storage_conformance_tests!` and
//!   `authenticator_conformance_tests!`.

pub mod client;
pub mod duration;
pub mod error;
pub mod factory;
pub mod files;
pub mod guide;
pub mod hashing;
pub mod interaction;
pub mod key;
pub mod policy;
pub mod provider;
pub mod shared_state;
pub mod throttle;
pub mod token;
pub mod upstream;
pub mod user;

#[cfg(feature = "testkit")]
pub mod testkit;

use serde::{Deserialize, Serialize};

pub use client::{Client, ClientOrigin, ClientStore, GrantType, TokenEndpointAuthMethod};
pub use error::{BoxError, ProviderError, ProviderResult};
pub use factory::{
    FactoryContext, MigrationInfo, MigrationPolicy, NoSettings, PolicyFactory, ProviderFactory,
    SchemaStatus, StoreLocality, UserAuthenticatorFactory,
};
pub use hashing::HashingPool;
pub use interaction::{ConsentRecord, InteractionStore, LoginTransaction};
pub use key::{KeyStore, SigningKeyRecord};
pub use policy::{DefaultPolicy, Policy, RegistrationRefusal};
pub use provider::{
    OAuthServerProvider, PoolGauge, PoolUse, StandardProvider, Storage, TokenLifetimes,
};
pub use shared_state::{CachedDocument, LocalSharedState, SharedStateStore};
pub use throttle::{
    SignInAttempt, SignInThrottleStore, ThrottleCounter, ThrottleDecision, ThrottlePolicy,
    UsernameCounters,
};
pub use token::{
    AccessTokenRecord, AuthorizationCode, CodeRedemption, GrantFilter, GrantSummary, PurgeCounts,
    RefreshTokenRecord, RefreshTokenState, RevokeTarget, RotateRefreshToken, Rotation, TokenStore,
};
pub use upstream::{
    UpstreamAuthenticator, UpstreamFactory, UpstreamLogin, UpstreamOutcome, UpstreamResponse,
};
pub use user::{
    AuthOutcome, AuthenticatedUser, SubjectStatus, UserAuthenticator, UserRecord, UserStore,
};

/// Seconds since the Unix epoch.
pub type UnixTime = i64;

/// The current time as [`UnixTime`]: the one clock the server, backends and tests read.
pub fn unix_now() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Lowercase hex SHA-256 of a high-entropy secret (code, refresh token, client secret, transaction
/// id). The core computes it; stores only compare and index it. Secrets themselves are never stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(pub String);

impl SecretHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
