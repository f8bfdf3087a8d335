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
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_explicit: bool,
    /// The client's `state`, echoed back verbatim.
    pub state: Option<String>,
    pub code_challenge: String,
    pub scopes: Vec<String>,
    pub resource: String,
    /// Set once the user has logged in.
    pub user: Option<AuthenticatedUser>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

/// A user's remembered approval of a client for a set of scopes at one resource (RFC 8707): consent
/// given for one resource is never reused for another, and it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub subject: String,
    pub client_id: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub granted_at: UnixTime,
    pub expires_at: UnixTime,
}

/// Where login transactions and consents live.
///
/// Contract:
/// - `take_transaction` MUST be atomic: of concurrent calls for one id exactly one gets `Some`.
/// - `set_transaction_user` returns `Ok(false)` when the transaction is gone.
/// - `remember_consent` replaces any earlier consent of that subject for that client and resource.
/// - `get_consent` MUST NOT return a consent whose `expires_at` ≤ `now`.
/// - `forget_consents` removes every consent of the subject and returns how many.
/// - `purge_expired` removes only transactions and consents with `expires_at` ≤ `now`.
#[async_trait]
pub trait InteractionStore: Send + Sync {
    async fn insert_transaction(&self, tx: LoginTransaction) -> ProviderResult<()>;
    async fn get_transaction(
        &self,
        id_hash: &SecretHash,
    ) -> ProviderResult<Option<LoginTransaction>>;
    async fn set_transaction_user(
        &self,
        id_hash: &SecretHash,
        user: AuthenticatedUser,
    ) -> ProviderResult<bool>;
    async fn take_transaction(
        &self,
        id_hash: &SecretHash,
    ) -> ProviderResult<Option<LoginTransaction>>;
    async fn remember_consent(&self, consent: ConsentRecord) -> ProviderResult<()>;
    async fn get_consent(
        &self,
        subject: &str,
        client_id: &str,
        resource: &str,
        now: UnixTime,
    ) -> ProviderResult<Option<ConsentRecord>>;
    async fn forget_consents(&self, subject: &str) -> ProviderResult<u64>;
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64>;
}
