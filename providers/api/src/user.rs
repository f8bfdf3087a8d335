//! Users: who may log in, and the local account store behind the `local` authenticator.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ProviderResult, UnixTime};

/// A user who proved who they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedUser {
    /// Stable subject identifier, becomes the token's `sub`.
    pub subject: String,
    /// The name the user typed (normalised by the authenticator).
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Group names (e.g. LDAP group DNs), informational.
    pub groups: Vec<String>,
    /// Scopes this user may grant; `None` = no restriction beyond the client's and resource's.
    pub allowed_scopes: Option<Vec<String>>,
}

/// Result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    Authenticated(AuthenticatedUser),
    /// Unknown user or wrong password: callers MUST NOT learn which.
    Rejected,
}

/// Checks a username and password.
///
/// Contract:
/// - MUST answer `Rejected` the same way (and in comparable time) whether the user is unknown or the
///   password is wrong.
/// - MUST answer `Rejected` for an empty password without contacting any backend.
/// - MUST return [`ProviderError::Unavailable`](crate::ProviderError::Unavailable) when the user
///   directory cannot be reached, never `Rejected`.
/// - MUST NOT log the password.
#[async_trait]
pub trait UserAuthenticator: Send + Sync {
    async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome>;
}

/// A local account. The password is stored only as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub username: String,
    pub subject: String,
    pub password_hash: String,
    pub created_at: UnixTime,
}

/// Where local accounts live.
///
/// Contract: usernames are unique (`insert_user` → `Conflict` on a duplicate); lookups of unknown
/// names return `Ok(None)`; `set_password_hash` and `delete_user` return `Ok(false)` for unknown names.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, username: &str) -> ProviderResult<Option<UserRecord>>;
    async fn insert_user(&self, user: UserRecord) -> ProviderResult<()>;
    async fn list_users(&self) -> ProviderResult<Vec<UserRecord>>;
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> ProviderResult<bool>;
    async fn delete_user(&self, username: &str) -> ProviderResult<bool>;
}
