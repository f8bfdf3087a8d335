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
    /// SHA-256 of the code, never the code itself; the store's key.
    pub code_hash: SecretHash,
    /// The family every token issued for this code will share (see the module docs).
    pub family_id: String,
    /// The client the code was issued to.
    pub client_id: String,
    /// The user who approved the request (the future tokens' `sub`).
    pub subject: String,
    /// The redirect URI the code was delivered to.
    pub redirect_uri: String,
    /// True when the authorization request carried `redirect_uri` (the token request must then
    /// repeat it exactly, RFC 6749 §4.1.3).
    pub redirect_uri_explicit: bool,
    /// PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    /// The scopes the user granted.
    pub scopes: Vec<String>,
    /// RFC 8707 resource the token will be bound to.
    pub resource: String,
    /// When the code was issued, in seconds since the epoch.
    pub issued_at: UnixTime,
    /// When the code stops being redeemable, in seconds since the epoch (the core checks it).
    pub expires_at: UnixTime,
}

/// What [`TokenStore::take_code`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code existed and was unused; it is now marked used and can never be taken again.
    Redeemed(AuthorizationCode),
    /// The code exists but was taken before (or its family was revoked): a replay. The caller
    /// revokes `family_id`.
    Replayed {
        /// The family of the replayed code.
        family_id: String,
    },
    /// No such code (never issued, or purged).
    Unknown,
}

/// The record kept for every access token (the JWT itself is not stored; its `jti` is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    /// The JWT's `jti` claim; the store's key.
    pub jti: String,
    /// The family (grant) the token belongs to.
    pub family_id: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The user, or the client id for `client_credentials` tokens.
    pub subject: String,
    /// The scopes in the token's `scope` claim.
    pub scopes: Vec<String>,
    /// The token's audience (`aud`), an RFC 8707 resource.
    pub resource: String,
    /// When the token was issued (`iat`), in seconds since the epoch.
    pub issued_at: UnixTime,
    /// When the token expires (`exp`), in seconds since the epoch.
    pub expires_at: UnixTime,
    /// True once the token (or its family) was revoked; introspection then answers inactive.
    pub revoked: bool,
}

/// State of a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RefreshTokenState {
    /// Usable: the next rotation exchanges it.
    Active,
    /// Exchanged once at `at`; any later use is reuse.
    Rotated {
        /// When it was rotated, in seconds since the epoch.
        at: UnixTime,
    },
    /// Revoked (alone, or with its family); never usable again.
    Revoked,
}

/// A refresh token, stored under the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the refresh token, never the token itself; the store's key.
    pub token_hash: SecretHash,
    /// The family (grant) the token belongs to.
    pub family_id: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// The user the grant belongs to.
    pub subject: String,
    /// The scopes a rotation may issue (never more).
    pub scopes: Vec<String>,
    /// The RFC 8707 resource the grant is bound to.
    pub resource: String,
    /// When the token was issued, in seconds since the epoch.
    pub issued_at: UnixTime,
    /// When this token stops being usable, in seconds since the epoch.
    pub expires_at: UnixTime,
    /// The absolute end of the grant this token belongs to (`[tokens] max_grant_lifetime` after the
    /// user approved it). Rotation never moves it; no successor may expire after it.
    pub grant_expires_at: UnixTime,
    /// Active, rotated or revoked.
    pub state: RefreshTokenState,
}

/// A rotation request: exchange `old_hash` for `new_refresh` + `new_access`.
#[derive(Debug, Clone)]
pub struct RotateRefreshToken {
    /// SHA-256 of the refresh token the client presented.
    pub old_hash: SecretHash,
    /// The successor refresh token to store (same family; `Active`).
    pub new_refresh: RefreshTokenRecord,
    /// The access token issued with it (same family).
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
        /// The old token's record (state `Rotated`).
        old: RefreshTokenRecord,
        /// The `sealed_successor` of the rotation that won, byte for byte.
        sealed_successor: Vec<u8>,
    },
    /// The old token was already rotated before the grace window (or its successor is no longer
    /// kept): nothing was stored. The caller revokes the family. Holds the old record.
    Reused(RefreshTokenRecord),
    /// Unknown, expired or revoked (alone or with its family): nothing was stored.
    Unknown,
}

/// Which credential to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeTarget {
    /// The access token with this `jti`.
    AccessToken {
        /// The token's `jti`.
        jti: String,
    },
    /// The refresh token with this hash.
    RefreshToken {
        /// SHA-256 of the refresh token.
        token_hash: SecretHash,
    },
}

/// Which grants [`TokenStore::list_grants`] and [`TokenStore::revoke_grants`] select. Empty fields
/// match everything; at least one field must be set for `revoke_grants`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    /// Only grants of this user (`None` = any user).
    pub subject: Option<String>,
    /// Only grants issued to this client (`None` = any client).
    pub client_id: Option<String>,
}

/// One live grant (a family with an unexpired, unrevoked access or refresh token). Holds no token
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantSummary {
    /// The family id; `mcp-oauth grants revoke` takes it.
    pub family_id: String,
    /// The client the grant was issued to.
    pub client_id: String,
    /// The user (or, for `client_credentials`, the client id).
    pub subject: String,
    /// The RFC 8707 resource the grant is bound to.
    pub resource: String,
    /// The earliest `issued_at` among the family's live tokens.
    pub issued_at: UnixTime,
    /// The latest `expires_at` of its live tokens.
    pub expires_at: UnixTime,
    /// True when a refresh token is among its live tokens.
    pub refreshable: bool,
}

/// How many records [`TokenStore::purge_expired`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    /// Authorization codes removed.
    pub codes: u64,
    /// Access-token records removed.
    pub access_tokens: u64,
    /// Refresh tokens removed.
    pub refresh_tokens: u64,
}

/// Where codes and tokens live.
///
/// The core calls it to issue, redeem, rotate, introspect and revoke credentials; the CLI
/// (`mcp-oauth grants`) lists and revokes grants; the server's upkeep purges expired records. The
/// store keeps records and makes the races safe; every protocol decision (expiry of codes, PKCE,
/// scopes, lifetimes, what to revoke after a replay) is the core's. Every method's contract is on the
/// method.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new authorization code, unused.
    ///
    /// If `code.family_id` is remembered as revoked ([`revoke_family`](Self::revoke_family)), the
    /// code MUST be stored as already used, so taking it answers `Replayed`. The core never inserts
    /// one `code_hash` twice (codes are 256-bit random); what a store does then is unspecified.
    async fn insert_code(&self, code: AuthorizationCode) -> ProviderResult<()>;

    /// Marks the code used and returns it, once.
    ///
    /// MUST be atomic (one conditional write, never read-then-write): of any number of concurrent
    /// calls for one code, from this process or from other servers on the same store, exactly one
    /// gets [`CodeRedemption::Redeemed`]; every other call, then and later, gets
    /// [`CodeRedemption::Replayed`] with the code's family, never `Unknown` while the code is stored.
    /// A code of a revoked family is `Replayed`. Returns `Unknown` only when no such code is stored
    /// (never issued, or purged).
    ///
    /// MUST NOT check expiry: an expired code not yet purged is still `Redeemed` once and `Replayed`
    /// after, and the core rejects it by its `expires_at` (so a replay of an expired code is still
    /// recognised).
    async fn take_code(&self, code_hash: &SecretHash) -> ProviderResult<CodeRedemption>;

    /// Stores an access-token record and, when given, its refresh token.
    ///
    /// MUST be atomic: both records are stored, or (on error) neither. If their family is
    /// remembered as revoked, both MUST be stored revoked (`revoked = true`, state `Revoked`), as one
    /// step with that check, so a token inserted while [`revoke_family`](Self::revoke_family) runs is
    /// revoked either way. The core never inserts one `jti` or token hash twice; what a store does
    /// then is unspecified.
    async fn insert_tokens(
        &self,
        access: AccessTokenRecord,
        refresh: Option<RefreshTokenRecord>,
    ) -> ProviderResult<()>;

    /// Returns the access-token record with this `jti`, revoked or not.
    ///
    /// MUST return `Ok(None)` for an unknown (or purged) `jti`. MUST return a revoked record too
    /// (with `revoked = true`), never `None` for it; it MAY return an expired record not yet purged.
    /// The core reads `expires_at` and `revoked`.
    async fn get_access_token(&self, jti: &str) -> ProviderResult<Option<AccessTokenRecord>>;

    /// Returns the refresh token stored under this hash, in whatever state it is.
    ///
    /// MUST return `Ok(None)` for an unknown (or purged) hash. MUST return rotated and revoked
    /// tokens too, with their state (revoking a rotated token through `/revoke` still ends its
    /// family); it MAY return an expired token not yet purged. The core reads `expires_at` and
    /// `state`.
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
    ) -> ProviderResult<Option<RefreshTokenRecord>>;

    /// Exchanges the refresh token `request.old_hash` for `new_refresh` + `new_access`.
    ///
    /// Decides, in this order, on the old token as stored:
    /// - unknown, `Revoked`, of a family remembered as revoked, or `expires_at` ≤ `request.now`:
    ///   [`Rotation::Unknown`];
    /// - `Active`: mark it `Rotated { at: request.now }`, keep `sealed_successor` with it, store
    ///   the new pair (born revoked if the family is revoked meanwhile, as in
    ///   [`insert_tokens`](Self::insert_tokens)), and answer [`Rotation::Rotated`] with the old
    ///   record;
    /// - `Rotated { at }` with `at` ≥ `request.reuse_grace_since` and its successor still kept:
    ///   [`Rotation::Replayed`] with the sealed successor stored by the rotation that won;
    /// - otherwise `Rotated`: [`Rotation::Reused`] with the old record.
    ///
    /// MUST be atomic: the state check, the mark and the inserts are one step (a conditional
    /// update on the old token, then the inserts, in one transaction). Of any number of concurrent
    /// rotations of one active token, from any server on the store, exactly one gets `Rotated`;
    /// the others get `Replayed` or `Reused`, never `Unknown` (unless the family is revoked
    /// meanwhile). A family MUST never get two live
    /// branches: on `Replayed`, `Reused` and `Unknown` nothing is stored. The store revokes nothing
    /// on `Reused` (the core revokes the family) and does not check `grant_expires_at` or scopes
    /// (the core built `new_refresh` within them).
    async fn rotate_refresh_token(&self, request: RotateRefreshToken) -> ProviderResult<Rotation>;

    /// Revokes one credential: sets an access record's `revoked`, or a refresh token's state to
    /// `Revoked` (whatever state it was in).
    ///
    /// Returns `Ok(true)` when the credential is stored (revoked now or already), `Ok(false)` when
    /// nothing matched, never an error for an unknown one. MUST be idempotent. It revokes that one
    /// record only, never its family (the core calls [`revoke_family`](Self::revoke_family) for
    /// that).
    async fn revoke(&self, target: RevokeTarget) -> ProviderResult<bool>;

    /// Revokes a whole family: every code (marked used), access token and refresh token with this
    /// `family_id`.
    ///
    /// MUST also remember the family as revoked until `remember_until` (keeping the later time if
    /// it is already remembered), so that a code or token a racing request inserts for it afterwards
    /// is stored revoked and never redeems or rotates. The remembering and the revocation MUST be one
    /// atomic step with respect to [`insert_tokens`](Self::insert_tokens) and
    /// [`rotate_refresh_token`](Self::rotate_refresh_token) for that family: every token of the
    /// family ends up revoked, whichever runs first. MUST be idempotent, and MUST succeed for a
    /// family with no records (it is then only remembered).
    async fn revoke_family(&self, family_id: &str, remember_until: UnixTime) -> ProviderResult<()>;

    /// Removes expired records and returns how many of each it removed.
    ///
    /// MUST remove only codes, access records and refresh tokens whose `expires_at` ≤ `now`, and
    /// SHOULD remove all of them (with any successor kept for a removed refresh token). It MAY also
    /// forget revoked families whose `remember_until` ≤ `now` (not counted). A store MAY delete in
    /// batches so a large backlog does not hold the store for long.
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<PurgeCounts>;

    /// Drops the sealed successors kept by [`rotate_refresh_token`](Self::rotate_refresh_token) for
    /// tokens rotated before `rotated_before` (the grace window has ended for them) and returns how
    /// many it dropped.
    ///
    /// MUST drop every such successor (a replay of that token is then `Reused`) and MUST keep the
    /// successors of tokens rotated at or after `rotated_before`. It MAY also drop successors of
    /// tokens revoked since (they can never be `Replayed`). MUST NOT change any token's state.
    async fn clear_successors(&self, rotated_before: UnixTime) -> ProviderResult<u64>;

    /// Lists the live grants matching `filter` at `now`.
    ///
    /// A grant is listed when its family has an access record with `revoked = false` and
    /// `expires_at` > `now`, or an `Active` refresh token with `expires_at` > `now`, matching the
    /// filter, and the family is not remembered as revoked. MUST return one [`GrantSummary`] per
    /// family (its fields as documented there) and never a token value or hash. SHOULD order them by
    /// `issued_at`, then `family_id`. Pending codes are not grants and are not listed.
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: UnixTime,
    ) -> ProviderResult<Vec<GrantSummary>>;

    /// Revokes every family with a code, access record or refresh token matching `filter` (live,
    /// expired or already revoked), each as [`revoke_family`](Self::revoke_family) does with
    /// `remember_until`, and returns how many distinct families matched.
    ///
    /// A family whose only record is a pending code counts (so an unredeemed code of a deleted user
    /// can no longer be redeemed). MUST fail with
    /// [`ProviderError::Unsupported`](crate::ProviderError::Unsupported) when the filter sets
    /// neither `subject` nor `client_id`, and revoke nothing then: an empty filter never revokes
    /// everything. Each family's revocation MUST be atomic as in `revoke_family`; the set of
    /// families need not be: a family whose first record is stored after the call began MAY be
    /// missed (the core calls this only after deleting the client or the user, or changing the
    /// password, so a grant that starts later does not belong to what is being ended).
    async fn revoke_grants(
        &self,
        filter: &GrantFilter,
        remember_until: UnixTime,
    ) -> ProviderResult<u64>;
}
