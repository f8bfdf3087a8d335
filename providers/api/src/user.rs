//! Users: who may log in, and the local account store behind the `local` authenticator.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ProviderResult, UnixTime, UpstreamAuthenticator};

/// A user who proved who they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticatedUser {
    /// Stable subject identifier, becomes the token's `sub`.
    pub subject: String,
    /// The name the user typed (normalised by the authenticator).
    pub username: String,
    /// A name to show the user (e.g. on the consent page), if the directory has one.
    pub display_name: Option<String>,
    /// The user's e-mail address, if the directory has one; informational, never verified here.
    pub email: Option<String>,
    /// Group names (e.g. LDAP group DNs), informational.
    pub groups: Vec<String>,
    /// Scopes this user may grant; `None` = no restriction beyond the client's and resource's.
    pub allowed_scopes: Option<Vec<String>>,
}

/// Result of a login attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The password is right: who the user is.
    Authenticated(AuthenticatedUser),
    /// Unknown user or wrong password: callers MUST NOT learn which.
    Rejected,
}

/// What an authenticator knows of a subject it signed in earlier (checked at every refresh).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectStatus {
    /// The user still exists; `allowed_scopes` as in [`AuthenticatedUser`].
    Active {
        /// Scopes the user may still grant; `None` = no restriction.
        allowed_scopes: Option<Vec<String>>,
    },
    /// The user no longer exists (or may no longer sign in): their grants end.
    Gone,
    /// This authenticator cannot look a user up without their password (e.g. LDAP direct-bind
    /// mode); grants then end at their absolute lifetime.
    Unknown,
}

/// Checks a username and password against a user directory (local accounts, LDAP, a plugin).
///
/// The core calls it from the login page, after the sign-in throttle admitted the attempt
/// ([`SignInThrottleStore`](crate::SignInThrottleStore)), and at every refresh to learn whether the
/// user may still use their grants. Throttling, sessions and tokens are the core's; an authenticator
/// only answers who someone is. Every method's contract is on the method.
#[async_trait]
pub trait UserAuthenticator: Send + Sync {
    /// Checks `password` for `username` and answers who the user is.
    ///
    /// - MUST answer [`AuthOutcome::Rejected`] the same way, and in comparable time, whether the
    ///   user is unknown or the password is wrong (e.g. verify against a dummy hash for an unknown
    ///   user), so a caller cannot learn which usernames exist.
    /// - MUST answer `Rejected` for an empty password without contacting any backend (an LDAP
    ///   simple bind with an empty password is an anonymous bind that "succeeds").
    /// - MUST return [`ProviderError::Unavailable`](crate::ProviderError::Unavailable) when the
    ///   directory cannot be reached or times out, never `Rejected` (a directory outage must not
    ///   look like a wrong password to the user).
    /// - MUST run slow password hashing off the async workers (the core hands authenticators a
    ///   bounded [`HashingPool`](crate::HashingPool)), so a login storm cannot starve other requests.
    /// - MUST NOT log or store the password.
    /// - MUST return a stable `subject` for one user across calls (it becomes the tokens' `sub`
    ///   and is what [`check_subject`](Self::check_subject) receives).
    async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome>;

    /// Whether `subject` (from an earlier [`AuthOutcome::Authenticated`]) may still use its grants.
    ///
    /// Called at every refresh. MUST return [`SubjectStatus::Gone`] for a user deleted (or no longer
    /// allowed to sign in) and [`ProviderError::Unavailable`](crate::ProviderError::Unavailable)
    /// when the directory cannot be reached, never `Gone` for an outage (the core ends the grant
    /// on `Gone`). The default, for authenticators that cannot look users up without their
    /// password, answers [`SubjectStatus::Unknown`]: the grant then lives to its absolute end.
    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        let _ = subject;
        Ok(SubjectStatus::Unknown)
    }

    /// Whether the directory behind this authenticator answers now, e.g. a bind with its service
    /// account. Asked by `config check`, by the start-up warning, and by the readiness probe
    /// (`GET /readyz`, at most once per `[health] readiness_cache`).
    ///
    /// MUST be cheap and read-only, MUST NOT sign anyone in, MUST be bounded in time (the core also
    /// bounds it with `[health] readiness_timeout`) and MUST NOT put a secret in its error. Answer
    /// [`ProviderError::Unavailable`](crate::ProviderError::Unavailable) when the directory cannot
    /// be reached. The default, for authenticators with nothing remote to reach (local accounts
    /// live in the storage, which the probe checks itself), is `Ok(())`.
    async fn check_health(&self) -> ProviderResult<()> {
        Ok(())
    }

    /// Whether the login page shows the username + password form. An authenticator that signs
    /// users in only through upstreams answers `false`; its [`authenticate`](Self::authenticate)
    /// MUST then answer [`AuthOutcome::Rejected`] for every password without contacting anything.
    fn accepts_passwords(&self) -> bool {
        true
    }

    /// The upstream identity providers users may sign in with instead of a password (see
    /// [`crate::upstream`]): one button each on the login page. MUST return the same upstreams, in
    /// the same order, at every call. The default has none.
    fn upstreams(&self) -> Vec<Arc<dyn UpstreamAuthenticator>> {
        Vec::new()
    }
}

/// A local account. The password is stored only as an argon2id PHC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The login name; unique in the store.
    pub username: String,
    /// The stable subject identifier (the tokens' `sub`), generated by the core; it survives a
    /// password change.
    pub subject: String,
    /// The argon2id PHC string (`$argon2id$v=19$…`), never the password. Opaque to the store.
    pub password_hash: String,
    /// When the account was created, in seconds since the epoch.
    pub created_at: UnixTime,
}

/// Where local accounts live (the storage backend's `users` part, behind the `local`
/// authenticator).
///
/// The `local` authenticator reads it at every sign-in and refresh; the CLI (`mcp-oauth users`) and
/// the start-up seeding of `[[users.accounts]]` write it. The store only stores: it never hashes or
/// checks a password, and the core revokes a user's grants after it deletes the user or changes
/// their password. Every method's contract is on the method.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Returns the account named `username` (exact match).
    ///
    /// MUST return `Ok(None)` for an unknown name, never an error.
    async fn get_user(&self, username: &str) -> ProviderResult<Option<UserRecord>>;

    /// Returns the account whose `subject` is `subject` (the `local` authenticator's
    /// [`check_subject`](UserAuthenticator::check_subject)).
    ///
    /// MUST return `Ok(None)` when no account has that subject, never an error. The core never gives
    /// two accounts one subject; if a store holds such, which one it returns is unspecified.
    async fn get_user_by_subject(&self, subject: &str) -> ProviderResult<Option<UserRecord>>;

    /// Stores a new account.
    ///
    /// MUST fail with [`ProviderError::Conflict`](crate::ProviderError::Conflict) when `username`
    /// exists, and then leave the stored account unchanged; the check and the insert MUST be one
    /// atomic step (usernames are unique even under concurrent inserts).
    async fn insert_user(&self, user: UserRecord) -> ProviderResult<()>;

    /// Returns every account, SHOULD be ordered by `username`.
    async fn list_users(&self) -> ProviderResult<Vec<UserRecord>>;

    /// Replaces the account's password hash (nothing else: the subject stays).
    ///
    /// Returns `Ok(true)` when the account exists, `Ok(false)` for an unknown name, never an error.
    /// It MUST NOT touch grants: the core revokes the user's grants afterwards.
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> ProviderResult<bool>;

    /// Deletes the account, returning `Ok(true)` when it existed and `Ok(false)` for an unknown
    /// name, never an error.
    ///
    /// It deletes the account only and MUST NOT touch grants or consents: the core ends them
    /// afterwards ([`TokenStore::revoke_grants`](crate::TokenStore::revoke_grants),
    /// [`InteractionStore::forget_consents`](crate::InteractionStore::forget_consents)).
    async fn delete_user(&self, username: &str) -> ProviderResult<bool>;
}
