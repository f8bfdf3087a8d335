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

/// What an authenticator knows of a subject it signed in earlier (checked at every refresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectStatus {
    /// The user still exists; `allowed_scopes` as in [`AuthenticatedUser`].
    Active { allowed_scopes: Option<Vec<String>> },
    /// The user no longer exists (or may no longer sign in): their grants end.
    Gone,
    /// This authenticator cannot look a user up without their password (e.g. LDAP direct-bind
    /// mode); grants then end at their absolute lifetime.
    Unknown,
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

    /// Whether `subject` (from an earlier [`AuthOutcome::Authenticated`]) may still use its grants.
    /// Called at every refresh. MUST return `Gone` for a deleted user, MUST return
    /// [`ProviderError::Unavailable`](crate::ProviderError::Unavailable) when the directory cannot
    /// be reached. The default, for authenticators that cannot look users up, is `Unknown`.
    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        let _ = subject;
        Ok(SubjectStatus::Unknown)
    }
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
/// names or subjects return `Ok(None)`; `set_password_hash` and `delete_user` return `Ok(false)` for
/// unknown names. The core revokes a user's grants when it deletes the user or changes their
/// password; the store only stores.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn get_user(&self, username: &str) -> ProviderResult<Option<UserRecord>>;
    async fn get_user_by_subject(&self, subject: &str) -> ProviderResult<Option<UserRecord>>;
    async fn insert_user(&self, user: UserRecord) -> ProviderResult<()>;
    async fn list_users(&self) -> ProviderResult<Vec<UserRecord>>;
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> ProviderResult<bool>;
    async fn delete_user(&self, username: &str) -> ProviderResult<bool>;
}
