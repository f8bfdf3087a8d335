//! Browser interaction state: login transactions (an `/authorize` request waiting for login and
//! consent) and remembered consent.
//!
//! A login transaction has its own random id, never the client's `state` (MCP security best
//! practices, "Confused Deputy"), and a short expiry.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{AuthenticatedUser, ProviderResult, SecretHash, UnixTime};

/// A validated authorization request waiting for the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginTransaction {
    /// SHA-256 of the transaction id (the id travels in the login URL and forms).
    pub id_hash: SecretHash,
    /// SHA-256 of the browser-binding cookie set when the transaction began: a form post from
    /// another browser (login CSRF) cannot complete it.
    pub browser_binding_hash: SecretHash,
    /// Anti-CSRF token embedded in the forms.
    pub csrf_token: String,
    /// The client that made the authorization request.
    pub client_id: String,
    /// The validated redirect URI the code will be delivered to.
    pub redirect_uri: String,
    /// True when the request carried `redirect_uri` (copied into the code, see
    /// [`AuthorizationCode`](crate::AuthorizationCode)).
    pub redirect_uri_explicit: bool,
    /// The client's `state`, echoed back verbatim.
    pub state: Option<String>,
    /// PKCE S256 challenge (RFC 7636 §4.2).
    pub code_challenge: String,
    /// The scopes requested (after the core narrowed them).
    pub scopes: Vec<String>,
    /// The RFC 8707 resource requested.
    pub resource: String,
    /// Set once the user has logged in.
    pub user: Option<AuthenticatedUser>,
    /// When the `/authorize` request arrived, in seconds since the epoch.
    pub created_at: UnixTime,
    /// When the transaction stops being usable, in seconds since the epoch (the core checks it).
    pub expires_at: UnixTime,
}

/// A user's remembered approval of a client for a set of scopes at one resource (RFC 8707): consent
/// given for one resource is never reused for another, and it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The user who consented.
    pub subject: String,
    /// The client they approved.
    pub client_id: String,
    /// The RFC 8707 resource the approval is for.
    pub resource: String,
    /// The scopes approved; a later request for more asks again.
    pub scopes: Vec<String>,
    /// When the user consented, in seconds since the epoch.
    pub granted_at: UnixTime,
    /// When the remembered consent lapses, in seconds since the epoch.
    pub expires_at: UnixTime,
}

/// Where login transactions and remembered consents live.
///
/// The core calls it from `/authorize`, the login and consent pages, and when it ends a user's
/// grants (forgetting their consents); the server's upkeep purges what expired. The store only
/// stores: expiry of transactions, the CSRF and browser-binding checks are the core's. Every
/// method's contract is on the method.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    /// Stores a new login transaction.
    ///
    /// The core never inserts one `id_hash` twice (ids are 256-bit random); what a store does then
    /// is unspecified.
    async fn insert_transaction(&self, tx: LoginTransaction) -> ProviderResult<()>;

    /// Returns the transaction stored under `id_hash`, as last stored.
    ///
    /// MUST return `Ok(None)` for an unknown, taken or purged id. It need not check expiry: it MAY
    /// return an expired transaction not yet purged, and the core ignores one whose `expires_at` has
    /// passed.
    async fn get_transaction(
        &self,
        id_hash: &SecretHash,
    ) -> ProviderResult<Option<LoginTransaction>>;

    /// Records the user who logged in on this transaction (replacing any earlier one).
    ///
    /// Returns `Ok(true)` when the transaction is stored, `Ok(false)` when it is gone (unknown,
    /// taken or purged), never an error for that. MUST change nothing but `user`. It need not check
    /// expiry (the core checked the transaction just before).
    async fn set_transaction_user(
        &self,
        id_hash: &SecretHash,
        user: AuthenticatedUser,
    ) -> ProviderResult<bool>;

    /// Removes the transaction and returns it, once (the consent step ends it).
    ///
    /// MUST be atomic (one delete that returns the row, never read-then-delete): of any number of
    /// concurrent calls for one id, from any server on the store, exactly one gets `Some`; the
    /// others, and every later call, get `Ok(None)`. It need not check expiry: the core ignores a
    /// transaction whose `expires_at` has passed.
    async fn take_transaction(
        &self,
        id_hash: &SecretHash,
    ) -> ProviderResult<Option<LoginTransaction>>;

    /// Remembers a user's consent, replacing any earlier consent of that subject for that client
    /// and resource (scopes, `granted_at` and `expires_at` all come from `consent`; nothing is
    /// merged). The replacement MUST be one atomic step (an upsert), so concurrent calls leave
    /// exactly one record, one of theirs.
    async fn remember_consent(&self, consent: ConsentRecord) -> ProviderResult<()>;

    /// Returns the remembered consent of `subject` for `client_id` at `resource`.
    ///
    /// MUST return `Ok(None)` when there is none, and MUST NOT return a consent whose `expires_at`
    /// ≤ `now` (even before it is purged). Consent for one resource MUST NOT be returned for
    /// another (RFC 8707); all three keys match exactly.
    async fn get_consent(
        &self,
        subject: &str,
        client_id: &str,
        resource: &str,
        now: UnixTime,
    ) -> ProviderResult<Option<ConsentRecord>>;

    /// Removes every remembered consent of `subject` (every client, every resource, expired or
    /// not) and returns how many it removed; `Ok(0)` for a subject with none.
    async fn forget_consents(&self, subject: &str) -> ProviderResult<u64>;

    /// Removes expired transactions and consents and returns how many it removed (both together).
    ///
    /// MUST remove only transactions and consents whose `expires_at` ≤ `now`. A store MAY delete in
    /// batches so a large backlog does not hold the store for long.
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64>;
}
