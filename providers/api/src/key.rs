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
    pub created_at: UnixTime,
    /// The key that signs new tokens. At most one key is active.
    pub active: bool,
    /// When a retired key may be deleted (every token it signed has expired); `None` while active.
    pub retire_at: Option<UnixTime>,
}

/// Where signing keys live.
///
/// Contract:
/// - `insert_key` MUST fail with `Conflict` on a duplicate `kid`.
/// - `activate_key` MUST atomically make `kid` the only active key, setting `retire_at` on the key
///   it replaces; it returns `Ok(false)` for an unknown `kid`.
/// - `list_keys` returns every key, active or retired, newest first.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn list_keys(&self) -> ProviderResult<Vec<SigningKeyRecord>>;
    async fn insert_key(&self, key: SigningKeyRecord) -> ProviderResult<()>;
    async fn activate_key(&self, kid: &str, retire_previous_at: UnixTime) -> ProviderResult<bool>;
    async fn delete_key(&self, kid: &str) -> ProviderResult<bool>;
}
