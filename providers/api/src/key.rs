//! Signing keys for access tokens (RFC 9068 JWTs), shared by every server on one store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ProviderResult, UnixTime};

/// A signing key pair as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    /// JWS `kid`.
    pub kid: String,
    /// JWS algorithm name (`EdDSA`, `ES256`).
    pub algorithm: String,
    /// The private key, PKCS#8 DER, possibly sealed by the core with a key-encryption key. Opaque to
    /// the store.
    pub private_key: Vec<u8>,
    /// The public key as a JWK (JSON text), published at `/jwks.json`.
    pub public_jwk: String,
    /// When the key was generated, in seconds since the epoch; [`KeyStore::list_keys`] orders by it.
    pub created_at: UnixTime,
    /// The key that signs new tokens. At most one key is active.
    pub active: bool,
    /// When a retired key may be deleted (every token it signed has expired), in seconds since the
    /// epoch; `None` while active.
    pub retire_at: Option<UnixTime>,
}

/// Where signing keys live, shared by every server on one store.
///
/// The core calls it at start (to create the first key when none is active) and in its periodic
/// upkeep (to reload keys another server or `mcp-oauth keys rotate` changed, and to delete retired
/// keys); the CLI rotates keys. The store keeps the records opaque: private keys arrive sealed and
/// are returned byte for byte. Every method's contract is on the method.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Returns every key, active or retired, newest first (by `created_at`, then `kid` descending).
    async fn list_keys(&self) -> ProviderResult<Vec<SigningKeyRecord>>;

    /// Stores a new key.
    ///
    /// MUST fail with [`ProviderError::Conflict`](crate::ProviderError::Conflict) on a duplicate
    /// `kid` and then leave the stored key unchanged. When `key.active` is true, the store MUST
    /// deactivate every other key in the same atomic step, so at most one key is ever active (the
    /// core itself inserts keys inactive and then calls [`activate_key`](Self::activate_key)).
    async fn insert_key(&self, key: SigningKeyRecord) -> ProviderResult<()>;

    /// Makes `kid` the signing key: it becomes active with `retire_at = None`, and the key it
    /// replaces (if any) becomes inactive with `retire_at = retire_previous_at`.
    ///
    /// MUST be atomic: of concurrent activations (from several servers starting at once, each with
    /// its own new key), exactly one key is active afterwards, and no reader ever sees two. Returns
    /// `Ok(false)` for an unknown `kid` and then changes nothing; activating the key that is already
    /// active returns `Ok(true)` and leaves it active.
    async fn activate_key(&self, kid: &str, retire_previous_at: UnixTime) -> ProviderResult<bool>;

    /// Deletes the key, returning `Ok(true)` when it existed and `Ok(false)` for an unknown `kid`.
    ///
    /// It does not check whether the key is active or retired: the core deletes only retired keys
    /// whose `retire_at` has passed.
    async fn delete_key(&self, kid: &str) -> ProviderResult<bool>;
}
