//! Authorization codes, access-token records and refresh tokens, and the store that keeps them.
//!
//! Every credential issued from one authorization (one code, or one `client_credentials` grant) shares
//! a *family id*. Revoking the family (on code replay or refresh-token reuse, OAuth 2.1 §4.3.1 and
//! RFC 6749 §4.1.2) reaches every code, access token and refresh token in it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ProviderResult, SecretHash, UnixTime};

/// An issued authorization code (OAuth 2.1 §4.1.2). Stored under the SHA-256 of the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    pub code_hash: SecretHash,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    /// The redirect URI the code was delivered to.
    pub redirect_uri: String,
    /// True when the authorization request carried `redirect_uri` (the token request must then
    /// repeat it exactly, RFC 6749 §4.1.3).
    pub redirect_uri_explicit: bool,
    /// PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    pub scopes: Vec<String>,
    /// RFC 8707 resource the token will be bound to.
    pub resource: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

/// What [`TokenStore::take_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code existed and was unused; it is now marked used and can never be taken again.
    Redeemed(AuthorizationCode),
    /// The code exists but was taken before: a replay. The caller revokes `family_id`.
    Replayed { family_id: String },
    /// No such code (never issued, or purged).
    Unknown,
}

/// The record kept for every access token (the JWT itself is not stored; its `jti` is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    pub jti: String,
    pub family_id: String,
    pub client_id: String,
    /// The user, or the client id for `client_credentials` tokens.
    pub subject: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    pub revoked: bool,
}

/// State of a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefreshTokenState {
    Active,
    /// Exchanged once at `at`; any later use is reuse.
    Rotated {
        at: UnixTime,
    },
    Revoked,
}

/// A refresh token, stored under the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    pub token_hash: SecretHash,
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
    /// The absolute end of the grant this token belongs to (`[tokens] max_grant_lifetime` after the
    /// user approved it). Rotation never moves it; no successor may expire after it.
    pub grant_expires_at: UnixTime,
    pub state: RefreshTokenState,
}

/// A rotation request: exchange `old_hash` for `new_refresh` + `new_access`.
#[derive(Debug, Clone)]
pub struct RotateRefreshToken {
    pub old_hash: SecretHash,
    pub new_refresh: RefreshTokenRecord,
    pub new_access: AccessTokenRecord,
    /// Current time; an old token expired at or before `now` is [`Rotation::Unknown`].
    pub now: UnixTime,
    /// A token already rotated at or after this instant is rotated again instead of being reported
    /// as reuse, and answered with the successor it was rotated to (the grace window for a client
    /// refreshing twice concurrently). Pass `now + 1` to disable the window.
    pub reuse_grace_since: UnixTime,
    /// The token response for `new_refresh` + `new_access`, sealed by the core under the
    /// key-encryption key. Kept with the old token so that a replay inside the grace window gets
    /// this same successor back instead of a second branch of the family.
    pub sealed_successor: Vec<u8>,
}

/// What [`TokenStore::rotate_refresh_token`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The old token was usable: it is now `Rotated` and the new pair is stored. Holds the old record.
    Rotated(RefreshTokenRecord),
    /// The old token was rotated inside the grace window: nothing was stored, and the successor it
    /// was rotated to is returned (still sealed) so the caller answers with the same tokens.
    Replayed {
        old: RefreshTokenRecord,
        sealed_successor: Vec<u8>,
    },
    /// The old token was already rotated before the grace window (or its successor is no longer
    /// kept): nothing was stored. The caller revokes the family. Holds the old record.
    Reused(RefreshTokenRecord),
    /// Unknown, expired or revoked: nothing was stored.
    Unknown,
}

/// Which credential to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    AccessToken { jti: String },
    RefreshToken { token_hash: SecretHash },
}

/// Which grants [`TokenStore::list_grants`] and [`TokenStore::revoke_grants`] select. Empty fields
/// match everything; at least one field must be set for `revoke_grants`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub subject: Option<String>,
    pub client_id: Option<String>,
}

/// One live grant (a family with an unexpired, unrevoked access or refresh token). Holds no token
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSummary {
    pub family_id: String,
    pub client_id: String,
    pub subject: String,
    pub resource: String,
    /// The earliest `issued_at` still stored for the family.
    pub issued_at: UnixTime,
    /// The latest `expires_at` of its live tokens.
    pub expires_at: UnixTime,
    /// True when a refresh token is among its live tokens.
    pub refreshable: bool,
}

/// How many records [`TokenStore::purge_expired`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub codes: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
}

/// Where codes and tokens live.
///
/// Contract:
/// - `take_code` MUST be atomic: of any number of concurrent calls for one code, exactly one gets
///   `Redeemed`; the others get `Replayed`. It MUST NOT check expiry (the core does).
/// - `insert_tokens` MUST store the access record and the optional refresh record together.
/// - `rotate_refresh_token` MUST be atomic: of two concurrent rotations of one active token, exactly
///   one gets `Rotated`; the other gets `Replayed` with the first one's `sealed_successor` inside
///   the grace window, else `Reused`. A family MUST never have two live branches: nothing is stored
///   on `Replayed` or `Reused`.
/// - `clear_successors` MUST drop the sealed successors of tokens rotated before `rotated_before`.
/// - `list_grants` MUST return live families only, never token values.
/// - `revoke_grants` MUST revoke (as `revoke_family` does, remembered until `remember_until`)
///   every family with a code, access token or refresh token matching the filter, and return how
///   many families it revoked.
/// - `revoke` MUST be idempotent and return `Ok(false)` when nothing matched.
/// - `revoke_family` MUST mark every code (as used), access token and refresh token of the family as
///   revoked, and MUST remember the family as revoked until `remember_until`, so that tokens a racing
///   request inserts for it later are stored revoked and never rotate.
/// - `purge_expired` MUST remove only records whose `expires_at` is ≤ `now`.
/// - Lookups MUST return `Ok(None)` for unknown keys.
#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn insert_code(&self, code: AuthorizationCode) -> ProviderResult<()>;
    async fn take_code(&self, code_hash: &SecretHash) -> ProviderResult<CodeRedemption>;
    async fn insert_tokens(
        &self,
        access: AccessTokenRecord,
        refresh: Option<RefreshTokenRecord>,
    ) -> ProviderResult<()>;
    async fn get_access_token(&self, jti: &str) -> ProviderResult<Option<AccessTokenRecord>>;
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
    ) -> ProviderResult<Option<RefreshTokenRecord>>;
    async fn rotate_refresh_token(&self, request: RotateRefreshToken) -> ProviderResult<Rotation>;
    async fn revoke(&self, target: RevokeTarget) -> ProviderResult<bool>;
    async fn revoke_family(&self, family_id: &str, remember_until: UnixTime) -> ProviderResult<()>;
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<PurgeCounts>;
    async fn clear_successors(&self, rotated_before: UnixTime) -> ProviderResult<u64>;
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: UnixTime,
    ) -> ProviderResult<Vec<GrantSummary>>;
    async fn revoke_grants(
        &self,
        filter: &GrantFilter,
        remember_until: UnixTime,
    ) -> ProviderResult<u64>;
}
