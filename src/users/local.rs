//! The `local` user authenticator: accounts in the storage backend's `UserStore`, argon2id passwords.
//!
//! Unknown users cost the same argon2 verification as known ones (against a fixed dummy hash), so the
//! response time does not reveal whether a username exists.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    AuthOutcome, AuthenticatedUser, FactoryContext, HashingPool, NoSettings, ProviderResult,
    Storage, SubjectStatus, UserAuthenticator, UserAuthenticatorFactory, UserStore,
};

use crate::users::password::verify_password;

/// argon2id of a random password nobody knows, with the same parameters as real hashes.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J3zW3lOmfvwzEfcF8n8bAqAJ4Hy5o8ZEmI+rrtTVjlw";

pub struct LocalAuthenticator {
    users: Arc<dyn UserStore>,
    pool: HashingPool,
}

impl LocalAuthenticator {
    pub fn new(users: Arc<dyn UserStore>, pool: HashingPool) -> Self {
        Self { users, pool }
    }
}

#[async_trait]
impl UserAuthenticator for LocalAuthenticator {
    async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome> {
        if username.is_empty() || password.is_empty() {
            return Ok(AuthOutcome::Rejected);
        }
        let record = self.users.get_user(username).await?;
        let phc = record
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| DUMMY_HASH.to_string());
        let password = password.to_string();
        let ok = self
            .pool
            .run(move || verify_password(&password, &phc))
            .await?;
        Ok(match (ok, record) {
            (true, Some(r)) => AuthOutcome::Authenticated(AuthenticatedUser {
                subject: r.subject,
                username: r.username,
                display_name: None,
                email: None,
                groups: Vec::new(),
                allowed_scopes: None,
            }),
            _ => AuthOutcome::Rejected,
        })
    }

    /// A local account must still exist for its grants to be refreshed.
    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        Ok(match self.users.get_user_by_subject(subject).await? {
            Some(_) => SubjectStatus::Active {
                allowed_scopes: None,
            },
            None => SubjectStatus::Gone,
        })
    }
}

/// Registers `[users] kind = "local"` (no settings of its own: `[[users.accounts]]` and
/// `create_admin` are the core's, since they seed the storage's accounts).
pub struct LocalAuthenticatorFactory;

#[async_trait]
impl UserAuthenticatorFactory for LocalAuthenticatorFactory {
    fn kind(&self) -> &'static str {
        "local"
    }
    fn uses_local_accounts(&self) -> bool {
        true
    }
    async fn build(
        &self,
        ctx: &FactoryContext,
        storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
        ctx.parse_settings::<NoSettings>()?;
        let users = storage.users.clone().ok_or_else(|| {
            ctx.invalid("the storage backend keeps no local accounts; choose another [users] kind")
        })?;
        Ok(Arc::new(LocalAuthenticator::new(
            users,
            ctx.hashing.clone(),
        )))
    }
}
