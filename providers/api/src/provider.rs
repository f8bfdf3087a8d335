//! What the server core holds: an [`OAuthServerProvider`] that hands out the storage parts and the user
//! authenticator, plus policy hooks with safe defaults.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{
    AuthenticatedUser, Client, ClientStore, InteractionStore, KeyStore, SignInThrottleStore,
    TokenStore, UserAuthenticator, UserStore,
};

/// Token lifetimes in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub access_token: i64,
    pub refresh_token: i64,
    pub code: i64,
}

/// The storage parts one backend provides.
#[derive(Clone)]
pub struct Storage {
    pub clients: Arc<dyn ClientStore>,
    pub tokens: Arc<dyn TokenStore>,
    pub keys: Arc<dyn KeyStore>,
    pub interactions: Arc<dyn InteractionStore>,
    /// Sign-in throttle counters, shared by every server on this storage.
    pub throttle: Arc<dyn SignInThrottleStore>,
    /// Local accounts, when the backend keeps them (used by the `local` authenticator and the
    /// `users` admin commands).
    pub users: Option<Arc<dyn UserStore>>,
}

impl Storage {
    /// Every part from one value that implements them all (the usual shape of a backend).
    pub fn from_one<T>(store: Arc<T>) -> Self
    where
        T: ClientStore
            + TokenStore
            + KeyStore
            + InteractionStore
            + SignInThrottleStore
            + UserStore
            + 'static,
    {
        Self {
            clients: store.clone(),
            tokens: store.clone(),
            keys: store.clone(),
            interactions: store.clone(),
            throttle: store.clone(),
            users: Some(store),
        }
    }
}

/// The provider the server core talks to.
///
/// The core owns the protocol rules (PKCE, redirect matching, code single-use, rotation); a provider
/// supplies storage, user authentication and policy, and cannot switch any protocol check off.
#[async_trait]
pub trait OAuthServerProvider: Send + Sync {
    fn clients(&self) -> &dyn ClientStore;
    fn tokens(&self) -> &dyn TokenStore;
    fn keys(&self) -> &dyn KeyStore;
    fn interactions(&self) -> &dyn InteractionStore;
    fn throttle(&self) -> &dyn SignInThrottleStore;
    fn authenticator(&self) -> &dyn UserAuthenticator;
    /// Local accounts, if this provider keeps any.
    fn user_store(&self) -> Option<&dyn UserStore>;

    /// Policy: which of the `requested` scopes `user` may grant `client`. The result MUST be a subset
    /// of `requested`. Default: every requested scope the user is allowed (all, when the user carries
    /// no restriction).
    async fn grantable_scopes(
        &self,
        user: &AuthenticatedUser,
        client: &Client,
        requested: &[String],
    ) -> Vec<String> {
        let _ = client;
        match &user.allowed_scopes {
            None => requested.to_vec(),
            Some(allowed) => requested
                .iter()
                .filter(|s| allowed.contains(s))
                .cloned()
                .collect(),
        }
    }

    /// Policy: token lifetimes for `client`. Default: the configured lifetimes.
    fn token_lifetimes(&self, client: &Client, configured: TokenLifetimes) -> TokenLifetimes {
        let _ = client;
        configured
    }
}

/// The usual provider: storage from one backend, users from one authenticator, default policy.
#[derive(Clone)]
pub struct StandardProvider {
    storage: Storage,
    authenticator: Arc<dyn UserAuthenticator>,
}

impl StandardProvider {
    pub fn new(storage: Storage, authenticator: Arc<dyn UserAuthenticator>) -> Self {
        Self {
            storage,
            authenticator,
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

#[async_trait]
impl OAuthServerProvider for StandardProvider {
    fn clients(&self) -> &dyn ClientStore {
        self.storage.clients.as_ref()
    }
    fn tokens(&self) -> &dyn TokenStore {
        self.storage.tokens.as_ref()
    }
    fn keys(&self) -> &dyn KeyStore {
        self.storage.keys.as_ref()
    }
    fn interactions(&self) -> &dyn InteractionStore {
        self.storage.interactions.as_ref()
    }
    fn throttle(&self) -> &dyn SignInThrottleStore {
        self.storage.throttle.as_ref()
    }
    fn authenticator(&self) -> &dyn UserAuthenticator {
        self.authenticator.as_ref()
    }
    fn user_store(&self) -> Option<&dyn UserStore> {
        self.storage.users.as_deref()
    }
}
