//! Signing keys for access tokens: generated on first start, kept in the provider's [`KeyStore`] so
//! every server on one store signs with the same key, and published as a JWK Set (RFC 7517 §5).
//!
//! EdDSA (Ed25519, RFC 8037) by default; ES256 (RFC 7518 §3.4) on request. RSA is not offered: the
//! pure-Rust `rsa` crate has a timing advisory (RUSTSEC-2023-0071).
//!
//! The active key is parsed once, when the keys are loaded, and signs the JWS compact serialisation
//! (RFC 7515 §7.1) itself: `jsonwebtoken::encode` parses the PKCS#8 key on every call, and for
//! Ed25519 that includes deriving the public key, a scalar multiplication as costly as the signature
//! (36 % of a `client_credentials` request's instructions, BENCHMARKS.md).

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use mcp_oauth_provider::{KeyStore, ProviderError, ProviderResult, SigningKeyRecord, UnixTime};
use mcp_oauth_resource::verifier::verdict_cache::VerdictCache;

use crate::oauth::key_encryption::KeyEncryptionKey;
use crate::oauth::secrets::{new_secret, random_bytes};
use crate::oauth::tokens::AccessClaims;

/// PKCS#8 v1 prefix for an Ed25519 private key (RFC 8410 §7): SEQUENCE, version 0, algorithm
/// id-Ed25519, OCTET STRING wrapping the 32-byte seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The key that signs new tokens.
struct ActiveKey {
    kid: String,
    signer: TokenSigner,
}

/// A private key parsed and ready to sign (its public half derived once).
enum TokenSigner {
    Ed25519(Box<ed25519_dalek::SigningKey>),
    Es256(Box<p256::ecdsa::SigningKey>),
}

impl TokenSigner {
    /// Parses a PKCS#8 private key of `algorithm`.
    fn from_pkcs8(algorithm: Algorithm, der: &[u8]) -> ProviderResult<Self> {
        use p256::pkcs8::DecodePrivateKey;
        let unusable = |e: String| ProviderError::backend("loading the signing key", e);
        match algorithm {
            Algorithm::EdDSA => ed25519_dalek::SigningKey::from_pkcs8_der(der)
                .map(|k| Self::Ed25519(Box::new(k)))
                .map_err(|e| unusable(e.to_string())),
            Algorithm::ES256 => p256::ecdsa::SigningKey::from_pkcs8_der(der)
                .map(|k| Self::Es256(Box::new(k)))
                .map_err(|e| unusable(e.to_string())),
            other => Err(ProviderError::Unsupported(format!(
                "signing algorithm {other:?}"
            ))),
        }
    }

    /// The JWS `alg` (RFC 7518 §3.1, RFC 8037 §3.1).
    fn alg(&self) -> &'static str {
        match self {
            Self::Ed25519(_) => "EdDSA",
            Self::Es256(_) => "ES256",
        }
    }

    /// The signature of `message`: 64 bytes for both (ES256 as R || S, RFC 7518 §3.4).
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Ed25519(key) => {
                use ed25519_dalek::Signer;
                key.sign(message).to_bytes().to_vec()
            }
            Self::Es256(key) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }
}

struct KeySet {
    active: ActiveKey,
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: JwkSet,
    /// Which load this is: remembered verdicts belong to the key set that verified them.
    epoch: u64,
}

/// Holds the keys loaded from the store.
pub struct KeyManager {
    algorithm: Algorithm,
    kek: KeyEncryptionKey,
    /// When an unknown `kid` last triggered a reload (rate limit).
    last_miss_reload: std::sync::Mutex<Option<std::time::Instant>>,
    set: RwLock<Option<KeySet>>,
    /// Key sets loaded so far (the next one's epoch: 0, 1, …).
    loads: AtomicU64,
    /// This server's own access tokens whose signature checked out, until their `exp`
    /// (`[limits] verified_token_cache_entries`), so introspection and the co-hosted resource
    /// check a token presented again by its digest, not by its signature.
    verified: VerdictCache<AccessClaims>,
}

/// A newly generated key, not yet stored.
pub fn generate_key(algorithm: Algorithm, now: UnixTime) -> ProviderResult<SigningKeyRecord> {
    let (der, alg_name) = match algorithm {
        Algorithm::EdDSA => {
            let mut der = ED25519_PKCS8_PREFIX.to_vec();
            der.extend_from_slice(&random_bytes());
            (der, "EdDSA")
        }
        Algorithm::ES256 => {
            use p256::pkcs8::EncodePrivateKey;
            // A random 32-byte string is a valid P-256 scalar except with negligible probability;
            // loop rather than fail in that case.
            let secret = loop {
                if let Ok(k) = p256::SecretKey::from_slice(&random_bytes()) {
                    break k;
                }
            };
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| ProviderError::backend("encoding a P-256 key", e.to_string()))?;
            (der.as_bytes().to_vec(), "ES256")
        }
        other => {
            return Err(ProviderError::Unsupported(format!(
                "signing algorithm {other:?}"
            )));
        }
    };
    let kid = new_secret()[..16].to_string();
    let encoding = encoding_key(algorithm, &der);
    let mut jwk = Jwk::from_encoding_key(&encoding, algorithm)
        .map_err(|e| ProviderError::backend("deriving the public JWK", e.to_string()))?;
    jwk.common.key_id = Some(kid.clone());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match algorithm {
        Algorithm::ES256 => KeyAlgorithm::ES256,
        _ => KeyAlgorithm::EdDSA,
    });
    let public_jwk =
        serde_json::to_string(&jwk).map_err(|e| ProviderError::backend("serialising a JWK", e))?;
    Ok(SigningKeyRecord {
        kid,
        algorithm: alg_name.to_string(),
        private_key: der,
        public_jwk,
        created_at: now,
        active: false,
        retire_at: None,
    })
}

fn encoding_key(algorithm: Algorithm, der: &[u8]) -> EncodingKey {
    match algorithm {
        Algorithm::ES256 => EncodingKey::from_ec_der(der),
        _ => EncodingKey::from_ed_der(der),
    }
}

/// The JWS compact serialisation (RFC 7515 §7.1) of `claims`, signed by `key`, with `typ` and `kid`
/// in the protected header.
fn compact_jws<T: serde::Serialize>(
    key: &ActiveKey,
    typ: &str,
    claims: &T,
) -> Result<String, ProviderError> {
    let header = serde_json::json!({"typ": typ, "alg": key.signer.alg(), "kid": key.kid});
    let part = |json: Result<Vec<u8>, serde_json::Error>| {
        json.map(|j| URL_SAFE_NO_PAD.encode(j))
            .map_err(|e| ProviderError::backend("signing a token", e))
    };
    let mut jws = part(serde_json::to_vec(&header))?;
    jws.push('.');
    jws.push_str(&part(serde_json::to_vec(claims))?);
    let signature = key.signer.sign(jws.as_bytes());
    jws.push('.');
    jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(jws)
}

/// Parses an algorithm name from config or the store.
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "EdDSA" => Some(Algorithm::EdDSA),
        "ES256" => Some(Algorithm::ES256),
        _ => None,
    }
}

impl KeyManager {
    pub fn new(algorithm: Algorithm, kek: KeyEncryptionKey) -> Self {
        Self {
            algorithm,
            kek,
            last_miss_reload: std::sync::Mutex::new(None),
            set: RwLock::new(None),
            loads: AtomicU64::new(0),
            verified: VerdictCache::new(0),
        }
    }

    /// Remembers up to `entries` verified tokens of this server's own (0: none).
    pub fn with_verified_cache(mut self, entries: usize) -> Self {
        self.verified = VerdictCache::new(entries);
        self
    }

    /// Verified own tokens, by digest; valid in [`KeyManager::epoch`] only.
    pub fn verified(&self) -> &VerdictCache<AccessClaims> {
        &self.verified
    }

    /// The current key set's epoch (`None` before the keys are loaded).
    pub fn epoch(&self) -> Option<u64> {
        self.with_set(|set| set.epoch)
    }

    /// A new key, sealed for the store.
    fn new_sealed_key(&self, now: UnixTime) -> ProviderResult<SigningKeyRecord> {
        let mut key = generate_key(self.algorithm, now)?;
        key.private_key = self.kek.seal(&key.kid, &key.private_key)?;
        Ok(key)
    }

    /// Loads the keys, creating and activating one when the store has no active key.
    pub async fn init(&self, store: &dyn KeyStore, now: UnixTime) -> ProviderResult<()> {
        if !store.list_keys().await?.iter().any(|k| k.active) {
            let key = self.new_sealed_key(now)?;
            let kid = key.kid.clone();
            store.insert_key(key).await?;
            // Another server may have raced us; activating makes exactly one key active either way.
            store.activate_key(&kid, now).await?;
            tracing::info!(kid = %kid, "generated a new signing key");
        }
        self.reload(store).await
    }

    /// Generates a new key and makes it the signing key; the previous one keeps verifying until
    /// `retire_previous_at`.
    pub async fn rotate(
        &self,
        store: &dyn KeyStore,
        now: UnixTime,
        retire_previous_at: UnixTime,
    ) -> ProviderResult<String> {
        let key = self.new_sealed_key(now)?;
        let kid = key.kid.clone();
        store.insert_key(key).await?;
        store.activate_key(&kid, retire_previous_at).await?;
        self.reload(store).await?;
        Ok(kid)
    }

    /// Periodic upkeep: deletes retired keys whose tokens have all expired, then reloads (keys rotated
    /// by `mcp-oauth keys rotate` or another server).
    pub async fn maintain(&self, store: &dyn KeyStore, now: UnixTime) -> ProviderResult<()> {
        for k in store.list_keys().await? {
            if !k.active && k.retire_at.is_some_and(|at| at <= now) {
                store.delete_key(&k.kid).await?;
                tracing::info!(kid = %k.kid, "deleted a retired signing key");
            }
        }
        self.reload(store).await
    }

    /// Reloads when a token names a `kid` this process has not loaded (another server rotated),
    /// at most once every 5 seconds. Returns whether the `kid` is known afterwards.
    pub async fn ensure_kid(&self, store: &dyn KeyStore, kid: &str) -> bool {
        if self.verifying_key(kid).is_some() {
            return true;
        }
        {
            let mut last = match self.last_miss_reload.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if last.is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(5)) {
                return false;
            }
            *last = Some(std::time::Instant::now());
        }
        if let Err(e) = self.reload(store).await {
            tracing::warn!(error = %e, "reloading signing keys failed");
        }
        self.verifying_key(kid).is_some()
    }

    /// Re-reads the store (keys rotated by another server).
    pub async fn reload(&self, store: &dyn KeyStore) -> ProviderResult<()> {
        let records = store.list_keys().await?;
        let mut active = None;
        let mut verifying = HashMap::new();
        let mut keys = Vec::new();
        for r in &records {
            let Some(alg) = parse_algorithm(&r.algorithm) else {
                tracing::warn!(kid = %r.kid, algorithm = %r.algorithm, "skipping a key with an unknown algorithm");
                continue;
            };
            let jwk: Jwk = serde_json::from_str(&r.public_jwk).map_err(|e| {
                ProviderError::backend(format!("stored JWK of key {} is corrupt", r.kid), e)
            })?;
            let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| {
                ProviderError::backend(
                    format!("stored JWK of key {} is unusable", r.kid),
                    e.to_string(),
                )
            })?;
            verifying.insert(r.kid.clone(), (alg, decoding));
            keys.push(jwk);
            if r.active && active.is_none() {
                let der = self.kek.open(&r.kid, &r.private_key)?;
                active = Some(ActiveKey {
                    kid: r.kid.clone(),
                    signer: TokenSigner::from_pkcs8(alg, &der)?,
                });
            }
        }
        let active = active
            .ok_or_else(|| ProviderError::backend_msg("the key store has no active signing key"))?;
        let set = KeySet {
            active,
            verifying,
            jwks: JwkSet { keys },
            epoch: self.loads.fetch_add(1, Ordering::Relaxed),
        };
        match self.set.write() {
            Ok(mut guard) => *guard = Some(set),
            Err(poisoned) => *poisoned.into_inner() = Some(set),
        }
        Ok(())
    }

    fn with_set<T>(&self, f: impl FnOnce(&KeySet) -> T) -> Option<T> {
        let guard = match self.set.read() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        guard.as_ref().map(f)
    }

    /// Signs a JWT with the active key, with the given `typ`.
    pub fn sign<T: serde::Serialize>(
        &self,
        typ: &str,
        claims: &T,
    ) -> Result<String, ProviderError> {
        self.with_set(|set| compact_jws(&set.active, typ, claims))
            .unwrap_or_else(|| Err(ProviderError::backend_msg("signing keys are not loaded")))
    }

    /// The verification key for `kid`, if known.
    pub fn verifying_key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.verifying_key_in_epoch(kid)
            .map(|(alg, key, _)| (alg, key))
    }

    /// The verification key for `kid`, if known, and the epoch of the key set it came from.
    pub fn verifying_key_in_epoch(&self, kid: &str) -> Option<(Algorithm, DecodingKey, u64)> {
        self.with_set(|set| {
            set.verifying
                .get(kid)
                .map(|(alg, key)| (*alg, key.clone(), set.epoch))
        })
        .flatten()
    }

    /// The public JWK Set.
    pub fn jwks(&self) -> JwkSet {
        self.with_set(|set| set.jwks.clone())
            .unwrap_or(JwkSet { keys: Vec::new() })
    }

    /// The `kid` of the active key.
    pub fn active_kid(&self) -> Option<String> {
        self.with_set(|set| set.active.kid.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let rec = generate_key(alg, 0).unwrap();
            let jwk: Jwk = serde_json::from_str(&rec.public_jwk).unwrap();
            assert_eq!(jwk.common.key_id.as_deref(), Some(rec.kid.as_str()));
            assert!(
                !rec.public_jwk.contains("\"d\""),
                "the public JWK must not carry the private key"
            );
            let enc = encoding_key(alg, &rec.private_key);
            let token = jsonwebtoken::encode(
                &jsonwebtoken::Header::new(alg),
                &serde_json::json!({"sub": "x", "exp": 4_000_000_000u64}),
                &enc,
            )
            .unwrap();
            let dec = DecodingKey::from_jwk(&jwk).unwrap();
            let mut v = jsonwebtoken::Validation::new(alg);
            v.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &dec, &v).unwrap();
        }
    }

    #[test]
    fn the_active_key_signs_jws_that_its_public_jwk_verifies() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let rec = generate_key(alg, 0).unwrap();
            let key = ActiveKey {
                kid: rec.kid.clone(),
                signer: TokenSigner::from_pkcs8(alg, &rec.private_key).unwrap(),
            };
            let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
            let token = compact_jws(&key, "at+jwt", &claims).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg);
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(rec.kid.as_str()));
            let jwk: Jwk = serde_json::from_str(&rec.public_jwk).unwrap();
            let dec = DecodingKey::from_jwk(&jwk).unwrap();
            let mut v = jsonwebtoken::Validation::new(alg);
            v.validate_aud = false;
            let got = jsonwebtoken::decode::<serde_json::Value>(&token, &dec, &v).unwrap();
            assert_eq!(got.claims, claims);
            // Another key of the same algorithm does not verify it.
            let other: Jwk =
                serde_json::from_str(&generate_key(alg, 0).unwrap().public_jwk).unwrap();
            let other = DecodingKey::from_jwk(&other).unwrap();
            assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &other, &v).is_err());
        }
        assert!(TokenSigner::from_pkcs8(Algorithm::EdDSA, b"not a key").is_err());
        assert!(TokenSigner::from_pkcs8(Algorithm::RS256, b"").is_err());
    }
}
