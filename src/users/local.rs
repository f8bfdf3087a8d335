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

#[cfg(test)]
mod conformance {
    //! The authenticator kit against `local` accounts in the memory backend.
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use mcp_oauth_provider::testkit::AuthenticatorFixture;
    use mcp_oauth_provider::{UserAuthenticator, UserRecord, UserStore, unix_now};
    use mcp_oauth_provider_memory::MemoryStore;

    use super::LocalAuthenticator;
    use crate::users::password::PasswordPool;

    async fn local() -> (Arc<dyn UserAuthenticator>, AuthenticatorFixture) {
        let store = MemoryStore::new();
        // Cheap parameters for the fixture users (verification reads them from the PHC string);
        // unknown users still cost a full verification against the dummy hash.
        let cheap = |password: &str| {
            use argon2::password_hash::PasswordHasher;
            let params = argon2::Params::new(64, 1, 1, None).unwrap();
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(password.as_bytes())
                .unwrap()
                .to_string()
        };
        let (alice, empty) = (cheap("correct horse battery"), cheap(""));
        for (username, subject, password_hash) in
            [("alice", "sub-alice", alice), ("blank", "sub-blank", empty)]
        {
            store
                .insert_user(UserRecord {
                    username: username.into(),
                    subject: subject.into(),
                    password_hash,
                    created_at: unix_now(),
                })
                .await
                .unwrap();
        }
        let auth = LocalAuthenticator::new(Arc::new(store), PasswordPool::new(2));
        (
            Arc::new(auth),
            AuthenticatorFixture::new("alice", "correct horse battery", "nobody")
                .with_empty_password_user("blank"),
        )
    }

    mcp_oauth_provider::authenticator_conformance_tests!(local());
}
