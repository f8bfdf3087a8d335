//! What the server core holds: an [`OAuthServerProvider`] that hands out the storage parts and the user
//! authenticator and the policy.

use std::sync::Arc;

use crate::{
    ClientStore, InteractionStore, KeyStore, LocalSharedState, Policy, SharedStateStore,
    SignInThrottleStore, TokenStore, UserAuthenticator, UserStore,
};

/// Token lifetimes in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    pub access_token: i64,
    pub refresh_token: i64,
    pub code: i64,
}

/// How a storage backend's connection pool is used right now (the server's metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Open connections, idle or in use.
    pub open: u32,
    /// Open connections waiting for work.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// A backend's connection pool, read at every scrape of `GET /metrics`: MUST be cheap, MUST NOT
/// block or touch the database (sqlx pools answer from counters).
pub trait PoolGauge: Send + Sync {
    fn pool_use(&self) -> PoolUse;
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
    /// The backend's connection pool, when it has one (reported as metrics); `None` otherwise.
    pub pool: Option<Arc<dyn PoolGauge>>,
    /// Single-use claims and the document cache, shared by every server on this storage
    /// ([`Storage::with_shared_state`]). `None`: the backend keeps none, and the core uses a
    /// [`LocalSharedState`] per process (so a client assertion replayed to another process on the
    /// same data is not caught; the server warns at start when the store is shared).
    pub shared: Option<Arc<dyn SharedStateStore>>,
}

impl Storage {
    /// Every part from one value that implements them all, without local accounts and without
    /// shared state (add them with [`Storage::with_users`] and [`Storage::with_shared_state`]: a
    /// backend that several processes share SHOULD provide the latter). Parts may also
    /// come from different values (the fields are public): the core drives every rule that spans
    /// two parts (deleting a client revokes its tokens, deleting a user ends their grants), so no
    /// part needs to reach into another.
    pub fn from_one<T>(store: Arc<T>) -> Self
    where
        T: ClientStore + TokenStore + KeyStore + InteractionStore + SignInThrottleStore + 'static,
    {
        Self {
            clients: store.clone(),
            tokens: store.clone(),
            keys: store.clone(),
            interactions: store.clone(),
            throttle: store,
            users: None,
            pool: None,
            shared: None,
        }
    }

    /// The same parts, with local accounts in `users`.
    pub fn with_users(mut self, users: Arc<dyn UserStore>) -> Self {
        self.users = Some(users);
        self
    }

    /// The same parts, with single-use claims and the document cache kept in `shared` (see
    /// [`SharedStateStore`]) instead of per process.
    pub fn with_shared_state(mut self, shared: Arc<dyn SharedStateStore>) -> Self {
        self.shared = Some(shared);
        self
    }

    /// The same parts, with the backend's connection pool reported as metrics.
    pub fn with_pool_gauge(mut self, pool: Arc<dyn PoolGauge>) -> Self {
        self.pool = Some(pool);
        self
    }
}

/// The provider the server core talks to.
///
/// The core owns the protocol rules (PKCE, redirect matching, code single-use, rotation); a provider
/// supplies storage, user authentication and policy, and cannot switch any protocol check off.
pub trait OAuthServerProvider: Send + Sync {
    fn clients(&self) -> &dyn ClientStore;
    fn tokens(&self) -> &dyn TokenStore;
    fn keys(&self) -> &dyn KeyStore;
    fn interactions(&self) -> &dyn InteractionStore;
    fn throttle(&self) -> &dyn SignInThrottleStore;
    /// Single-use claims and the document cache (the storage's, else one per process).
    fn shared_state(&self) -> &dyn SharedStateStore;
    fn authenticator(&self) -> &dyn UserAuthenticator;
    /// Local accounts, if this provider keeps any.
    fn user_store(&self) -> Option<&dyn UserStore>;
    /// The decisions a deployment customises (scopes, lifetimes, registrations).
    fn policy(&self) -> &dyn Policy;
}

/// The usual provider: storage from one backend, users from one authenticator, one policy.
#[derive(Clone)]
pub struct StandardProvider {
    storage: Storage,
    shared: Arc<dyn SharedStateStore>,
    authenticator: Arc<dyn UserAuthenticator>,
    policy: Arc<dyn Policy>,
}

impl StandardProvider {
    pub fn new(
        storage: Storage,
        authenticator: Arc<dyn UserAuthenticator>,
        policy: Arc<dyn Policy>,
    ) -> Self {
        let shared = storage
            .shared
            .clone()
            .unwrap_or_else(|| Arc::new(LocalSharedState::default()));
        Self {
            storage,
            shared,
            authenticator,
            policy,
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

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
    fn shared_state(&self) -> &dyn SharedStateStore {
        self.shared.as_ref()
    }
    fn authenticator(&self) -> &dyn UserAuthenticator {
        self.authenticator.as_ref()
    }
    fn user_store(&self) -> Option<&dyn UserStore> {
        self.storage.users.as_deref()
    }
    fn policy(&self) -> &dyn Policy {
        self.policy.as_ref()
    }
}
