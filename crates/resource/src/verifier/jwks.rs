//! [`JwksVerifier`]: RFC 9068 JWT access tokens verified offline with the issuer's JWK Set.
//!
//! RFC 9068 §4 validation, in order: the `typ` header is `at+jwt` (or `application/at+jwt`); the
//! algorithm is on an allow-list of asymmetric algorithms (never `none`, never HMAC: a verifier
//! that accepted HS256 would take the *public* key as the shared secret, and anyone could mint
//! tokens); the key named by `kid` comes from the issuer's JWKS and belongs to the algorithm's
//! family (and equals the JWK's own `alg` when it has one); the signature verifies; `iss` is the
//! issuer; `aud` names this resource (RFC 8707 §2); `exp` and `nbf` hold, with a small leeway for
//! clock skew.
//!
//! The JWK Set is fetched on first use, kept for [`DEFAULT_MAX_AGE`], and refetched when a token
//! names an unknown `kid` (key rotation) — but at most once per [`DEFAULT_MIN_REFETCH`], so tokens
//! with made-up `kid`s cannot turn the verifier into a flood of requests to the issuer.
//!
//! A token that passed every check is remembered (a [`VerdictCache`], by SHA-256 of the resource
//! and the token) until its `exp`, so a client presenting the same token on every MCP request pays
//! for one signature check, not one per request (an Ed25519 verification is about 70 % of the
//! layer's instructions). A remembered verdict is used only while the key set that verified it is
//! fresh and current: every fetched key set starts a new epoch, so a withdrawn key's tokens are
//! checked again, and refused, as soon as the verifier learns of the withdrawal, exactly as without
//! the cache. [`JwksVerifier::with_verified_cache_max_entries`] bounds it (0 turns it off).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde_json::{Map, Value};
use url::Url;

use super::remote::{RemoteError, checked_url, discover, outbound_client};
use super::verdict_cache::{VerdictCache, verdict_key};
use super::{Identity, TokenVerifier, VerifyError, unix_now};
use crate::protected::ProtectedResource;

/// Clock skew tolerated on `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// How long a fetched JWK Set is used before it is fetched again.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);
/// The shortest interval between two fetches (an unknown `kid` triggers one).
pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(10);
/// Verified tokens remembered at most by default
/// ([`JwksVerifier::with_verified_cache_max_entries`]); when full, expired ones go first, then all.
pub const DEFAULT_VERIFIED_CACHE_MAX_ENTRIES: usize = 10_000;

/// Asymmetric algorithms accepted by default. HMAC algorithms are never accepted.
pub const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::EdDSA,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Where the keys come from.
enum KeySource {
    /// Fetched from the issuer's `jwks_uri`.
    Remote {
        http: reqwest::Client,
        jwks_uri: Url,
    },
    /// Given once (pinned keys); never refetched.
    Pinned,
}

#[derive(Clone)]
struct CachedKey {
    /// The JWK's own `alg`, when it declares one.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, CachedKey>,
    /// Last successful fetch.
    fetched_at: Option<Instant>,
    /// Last fetch attempt, successful or not (the rate limit).
    attempted_at: Option<Instant>,
    /// Counts the key sets fetched: remembered verdicts belong to the epoch that verified them.
    epoch: u64,
}

/// Verifies JWT access tokens with the issuer's JWK Set. See the module docs for the rules.
pub struct JwksVerifier {
    issuer: String,
    source: KeySource,
    algorithms: Vec<Algorithm>,
    leeway: Duration,
    max_age: Duration,
    min_refetch: Duration,
    cache: RwLock<KeyCache>,
    /// One fetch at a time; waiters re-read the cache afterwards.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Tokens that passed every check, until their `exp` (module docs).
    verdicts: VerdictCache<Identity>,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("issuer", &self.issuer)
            .field("algorithms", &self.algorithms)
            .field("verified_cache_max_entries", &self.verdicts.max_entries())
            .finish_non_exhaustive()
    }
}

impl JwksVerifier {
    /// Tokens from `issuer`, keys from `jwks_uri` (https, or http on loopback).
    pub fn new(issuer: &str, jwks_uri: &str) -> Result<Self, RemoteError> {
        let jwks_uri = checked_url("jwks_uri", jwks_uri)?;
        checked_url("issuer", issuer)?;
        Ok(Self::with_source(
            issuer,
            KeySource::Remote {
                http: outbound_client()?,
                jwks_uri,
            },
            KeyCache::default(),
        ))
    }

    /// Finds `jwks_uri` in the issuer's RFC 8414 metadata.
    pub async fn discover(issuer: &str) -> Result<Self, RemoteError> {
        let http = outbound_client()?;
        let meta = discover(&http, issuer).await?;
        Self::new(issuer, meta.jwks_uri()?)
    }

    /// Pinned keys: nothing is ever fetched. For deployments that distribute keys out of band.
    pub fn from_jwks(issuer: &str, jwks: &JwkSet) -> Self {
        let cache = KeyCache {
            keys: usable_keys(jwks.keys.iter()),
            fetched_at: Some(Instant::now()),
            attempted_at: Some(Instant::now()),
            epoch: 0,
        };
        Self::with_source(issuer, KeySource::Pinned, cache)
    }

    fn with_source(issuer: &str, source: KeySource, cache: KeyCache) -> Self {
        Self {
            issuer: issuer.trim_end_matches('/').to_string(),
            source,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: DEFAULT_LEEWAY,
            max_age: DEFAULT_MAX_AGE,
            min_refetch: DEFAULT_MIN_REFETCH,
            cache: RwLock::new(cache),
            fetch_lock: tokio::sync::Mutex::new(()),
            verdicts: VerdictCache::new(DEFAULT_VERIFIED_CACHE_MAX_ENTRIES),
        }
    }

    /// Remembers at most `entries` verified tokens (default
    /// [`DEFAULT_VERIFIED_CACHE_MAX_ENTRIES`], about 1 KiB each); 0 checks every signature every time.
    pub fn with_verified_cache_max_entries(mut self, entries: usize) -> Self {
        self.verdicts = VerdictCache::new(entries);
        self
    }

    /// Restricts the accepted algorithms. HMAC algorithms are dropped from the list whatever is
    /// asked: a resource server never shares a secret with the issuer.
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms
            .into_iter()
            .filter(|a| a.family() != AlgorithmFamily::Hmac)
            .collect();
        self
    }

    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Minimum time between two JWKS fetches.
    pub fn with_min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch = interval;
        self
    }

    /// How long fetched keys are used before being fetched again.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn read_cache<T>(&self, f: impl FnOnce(&KeyCache) -> T) -> T {
        match self.cache.read() {
            Ok(guard) => f(&guard),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    fn write_cache(&self, f: impl FnOnce(&mut KeyCache)) {
        match self.cache.write() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// The cached key for `kid`, and its key set's epoch, when the key set is fresh enough to
    /// trust without asking again.
    fn fresh_key(&self, kid: &str) -> Option<(CachedKey, u64)> {
        self.fresh_key_at(kid, Instant::now())
    }

    fn fresh_key_at(&self, kid: &str, now: Instant) -> Option<(CachedKey, u64)> {
        self.read_cache(|c| {
            if self.is_fresh(c, now) {
                c.keys.get(kid).cloned().map(|k| (k, c.epoch))
            } else {
                None
            }
        })
    }

    fn is_fresh(&self, c: &KeyCache, now: Instant) -> bool {
        match self.source {
            KeySource::Pinned => true,
            KeySource::Remote { .. } => c
                .fetched_at
                .is_some_and(|t| now.saturating_duration_since(t) < self.max_age),
        }
    }

    /// The current epoch, when the key set is fresh: only then may remembered verdicts be used.
    fn fresh_epoch(&self, now: Instant) -> Option<u64> {
        self.read_cache(|c| self.is_fresh(c, now).then_some(c.epoch))
    }

    async fn key_for(&self, kid: &str) -> Result<(CachedKey, u64), VerifyError> {
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let KeySource::Remote { http, jwks_uri } = &self.source else {
            return Err(VerifyError::Invalid(
                "the token is signed with an unknown key",
            ));
        };
        let _one_fetch_at_a_time = self.fetch_lock.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let may_fetch = self.read_cache(|c| {
            c.attempted_at
                .is_none_or(|t| t.elapsed() >= self.min_refetch)
        });
        if may_fetch {
            self.write_cache(|c| c.attempted_at = Some(Instant::now()));
            match fetch_jwks(http, jwks_uri).await {
                Ok(keys) => {
                    tracing::debug!(jwks_uri = %jwks_uri, keys = keys.len(), "fetched the JWK Set");
                    self.write_cache(|c| {
                        c.keys = keys;
                        c.fetched_at = Some(Instant::now());
                        c.epoch += 1;
                    });
                }
                Err(e) => {
                    tracing::warn!(jwks_uri = %jwks_uri, error = %e, "fetching the JWK Set failed")
                }
            }
        }
        // A stale key is better than no answer while the issuer is unreachable.
        let (key, ever_fetched) = self.read_cache(|c| {
            (
                c.keys.get(kid).cloned().map(|k| (k, c.epoch)),
                c.fetched_at.is_some(),
            )
        });
        match (key, ever_fetched) {
            (Some(key), _) => Ok(key),
            (None, true) => Err(VerifyError::Invalid(
                "the token is signed with an unknown key",
            )),
            (None, false) => Err(VerifyError::Unavailable(
                "the issuer's JWK Set could not be fetched".into(),
            )),
        }
    }
}

async fn fetch_jwks(
    http: &reqwest::Client,
    jwks_uri: &Url,
) -> Result<HashMap<String, CachedKey>, RemoteError> {
    let fetch_err = |source| RemoteError::Fetch {
        url: jwks_uri.to_string(),
        source,
    };
    let resp = http
        .get(jwks_uri.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(fetch_err)?;
    if !resp.status().is_success() {
        return Err(RemoteError::Status {
            url: jwks_uri.to_string(),
            status: resp.status().as_u16(),
        });
    }
    let set: Value = resp.json().await.map_err(fetch_err)?;
    // Parsed key by key: one key of a type this library does not know must not hide the others.
    let jwks: Vec<Jwk> = set
        .get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(usable_keys(jwks.iter()))
}

/// Signature keys with a `kid`, asymmetric only.
fn usable_keys<'a>(jwks: impl Iterator<Item = &'a Jwk>) -> HashMap<String, CachedKey> {
    let mut out = HashMap::new();
    for jwk in jwks {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        let alg = jwk
            .common
            .key_algorithm
            .and_then(|a| serde_json::to_value(a).ok())
            .and_then(|v| v.as_str().and_then(|s| Algorithm::from_str(s).ok()));
        out.insert(kid, CachedKey { alg, key });
    }
    out
}

/// RFC 9068 §4 step 1: `typ` is `at+jwt`, with or without the `application/` prefix (RFC 7515
/// §4.1.9), compared case-insensitively.
fn is_access_token_typ(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        let t = t.to_ascii_lowercase();
        t == "at+jwt" || t == "application/at+jwt"
    })
}

fn describe(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet",
        ErrorKind::InvalidIssuer => "the token was issued by another issuer",
        ErrorKind::InvalidAudience => "the token was not issued for this resource",
        ErrorKind::InvalidSignature => "the token signature does not verify",
        ErrorKind::MissingRequiredClaim(_) => "the token lacks a required claim",
        _ => "the token could not be verified",
    }
}

#[async_trait]
impl TokenVerifier for JwksVerifier {
    async fn verify(
        &self,
        token: &str,
        resource: &ProtectedResource,
    ) -> Result<Identity, VerifyError> {
        let verdict = verdict_key(&[resource.uri().as_bytes(), token.as_bytes()]);
        if let Some(epoch) = self.fresh_epoch(Instant::now())
            && let Some(identity) = self.verdicts.get(&verdict, Instant::now(), epoch)
        {
            return Ok(identity);
        }
        let (identity, epoch) = self.check(token, resource).await?;
        self.remember(verdict, &identity, epoch, Instant::now(), unix_now());
        Ok(identity)
    }
}

impl JwksVerifier {
    /// Remembers a verified token from `now` (`now_unix` in seconds) until its `exp`.
    fn remember(
        &self,
        verdict: [u8; 32],
        identity: &Identity,
        epoch: u64,
        now: Instant,
        now_unix: i64,
    ) {
        let Some(left) = identity
            .expires_at
            .and_then(|exp| u64::try_from(exp.saturating_sub(now_unix)).ok())
        else {
            return;
        };
        self.verdicts.remember(
            verdict,
            identity,
            now,
            now + Duration::from_secs(left),
            epoch,
        );
    }

    /// Every check of the module docs; the identity, and the epoch of the key that verified it.
    async fn check(
        &self,
        token: &str,
        resource: &ProtectedResource,
    ) -> Result<(Identity, u64), VerifyError> {
        // `alg: none` fails here: it is not an algorithm this library can even name.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid("the token is not a well-formed signed JWT"))?;
        if !is_access_token_typ(header.typ.as_deref()) {
            return Err(VerifyError::Invalid(
                "the token is not an at+jwt access token",
            ));
        }
        if !self.algorithms.contains(&header.alg) {
            return Err(VerifyError::Invalid(
                "the token's signing algorithm is not accepted",
            ));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or(VerifyError::Invalid("the token names no key (kid)"))?;
        let (key, epoch) = self.key_for(kid).await?;
        if key.key.family() != header.alg.family() || key.alg.is_some_and(|a| a != header.alg) {
            return Err(VerifyError::Invalid(
                "the token's algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[resource.uri()]);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| VerifyError::Invalid(describe(e.kind())))?;
        let identity = Identity::from_claims(data.claims, &self.issuer)
            .ok_or(VerifyError::Invalid("the token names no subject"))?;
        Ok((identity, epoch))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::verifier::unix_now as now;

    const ISSUER: &str = "http://127.0.0.1:9000";
    const RESOURCE: &str = "http://127.0.0.1:9000/mcp";

    struct TestKey {
        kid: String,
        alg: Algorithm,
        encoding: EncodingKey,
        jwk: Jwk,
    }

    /// A fresh signing key (a new seed and `kid` on every call), as the authorization server
    /// would publish it.
    fn test_key(alg: Algorithm) -> TestKey {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let seed = [u8::try_from(n % 250 + 1).unwrap(); 32];
        let encoding = match alg {
            Algorithm::ES256 => {
                use p256::pkcs8::EncodePrivateKey;
                let der = p256::SecretKey::from_slice(&seed)
                    .unwrap()
                    .to_pkcs8_der()
                    .unwrap();
                EncodingKey::from_ec_der(der.as_bytes())
            }
            _ => {
                // PKCS#8 v1 Ed25519 private key (RFC 8410 §7) around the 32-byte seed.
                let mut der = vec![
                    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04,
                    0x22, 0x04, 0x20,
                ];
                der.extend_from_slice(&seed);
                EncodingKey::from_ed_der(&der)
            }
        };
        let kid = format!("test-key-{n}");
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match alg {
            Algorithm::ES256 => jsonwebtoken::jwk::KeyAlgorithm::ES256,
            _ => jsonwebtoken::jwk::KeyAlgorithm::EdDSA,
        });
        TestKey {
            kid,
            alg,
            encoding,
            jwk,
        }
    }

    fn claims() -> Value {
        let t = now();
        json!({"iss": ISSUER, "sub": "alice", "aud": RESOURCE, "client_id": "c1",
               "scope": "mcp:tools", "exp": t + 600, "iat": t, "nbf": t, "jti": "j1"})
    }

    fn sign(key: &TestKey, claims: &Value) -> String {
        let mut header = Header::new(key.alg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
    }

    fn resource() -> ProtectedResource {
        ProtectedResource::new(RESOURCE, ISSUER).unwrap()
    }

    fn verifier(keys: &[&TestKey]) -> JwksVerifier {
        let set = JwkSet {
            keys: keys.iter().map(|k| k.jwk.clone()).collect(),
        };
        JwksVerifier::from_jwks(ISSUER, &set)
    }

    async fn reason(v: &JwksVerifier, token: &str) -> VerifyError {
        v.verify(token, &resource()).await.unwrap_err()
    }

    #[tokio::test]
    async fn a_valid_token_gives_its_identity() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let key = test_key(alg);
            let id = verifier(&[&key])
                .verify(&sign(&key, &claims()), &resource())
                .await
                .unwrap();
            assert_eq!(id.subject, "alice");
            assert_eq!(id.client_id.as_deref(), Some("c1"));
            assert_eq!(id.scopes, ["mcp:tools"]);
            assert_eq!(id.issuer, ISSUER);
            assert!(id.is_for(&resource()));
        }
    }

    #[tokio::test]
    async fn wrong_claims_are_invalid() {
        let key = test_key(Algorithm::EdDSA);
        let v = verifier(&[&key]);
        let t = now();
        let cases = [
            ("exp", json!(t - 120), "the token has expired"),
            ("nbf", json!(t + 120), "the token is not valid yet"),
            (
                "iss",
                json!("http://127.0.0.1:9001"),
                "the token was issued by another issuer",
            ),
            (
                "aud",
                json!("http://127.0.0.1:9000/other"),
                "the token was not issued for this resource",
            ),
        ];
        for (claim, value, expected) in cases {
            let mut c = claims();
            c[claim] = value;
            assert_eq!(
                reason(&v, &sign(&key, &c)).await,
                VerifyError::Invalid(expected),
                "{claim}"
            );
        }
        // Inside the leeway, expiry is tolerated.
        let mut c = claims();
        c["exp"] = json!(t - 5);
        assert!(v.verify(&sign(&key, &c), &resource()).await.is_ok());
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        assert_eq!(
            reason(&v, &sign(&key, &c)).await,
            VerifyError::Invalid("the token lacks a required claim")
        );
    }

    #[tokio::test]
    async fn wrong_type_unknown_key_and_garbage_are_invalid() {
        let key = test_key(Algorithm::EdDSA);
        let other = test_key(Algorithm::EdDSA);
        let v = verifier(&[&key]);
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        let id_token_like = jsonwebtoken::encode(&header, &claims(), &key.encoding).unwrap();
        assert_eq!(
            reason(&v, &id_token_like).await,
            VerifyError::Invalid("the token is not an at+jwt access token")
        );
        header.typ = Some("application/AT+JWT".into());
        let long_typ = jsonwebtoken::encode(&header, &claims(), &key.encoding).unwrap();
        assert!(v.verify(&long_typ, &resource()).await.is_ok());
        assert_eq!(
            reason(&v, &sign(&other, &claims())).await,
            VerifyError::Invalid("the token is signed with an unknown key")
        );
        // Signed by another key under our kid.
        let forged = sign(
            &TestKey {
                kid: key.kid.clone(),
                ..test_key(Algorithm::EdDSA)
            },
            &claims(),
        );
        assert_eq!(
            reason(&v, &forged).await,
            VerifyError::Invalid("the token signature does not verify")
        );
        for garbage in ["garbage", "a.b.c", ""] {
            assert_eq!(
                reason(&v, garbage).await,
                VerifyError::Invalid("the token is not a well-formed signed JWT")
            );
        }
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let key = test_key(Algorithm::EdDSA);
        let v = verifier(&[&key]);
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap());
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": key.kid});
            let unsigned = format!("{}.{}.", b64(&header), b64(&claims()));
            assert!(
                matches!(reason(&v, &unsigned).await, VerifyError::Invalid(_)),
                "{alg}"
            );
            // With a signature part copied from a genuine token, too.
            let genuine = sign(&key, &claims());
            let sig = genuine.rsplit('.').next().unwrap();
            let spliced = format!("{}.{}.{sig}", b64(&header), b64(&claims()));
            assert!(
                matches!(reason(&v, &spliced).await, VerifyError::Invalid(_)),
                "{alg}"
            );
        }
    }

    #[tokio::test]
    async fn hmac_signed_with_the_public_key_is_refused() {
        let key = test_key(Algorithm::EdDSA);
        let AlgorithmParameters::OctetKeyPair(okp) = &key.jwk.algorithm else {
            panic!("an Ed25519 JWK")
        };
        let raw_public = URL_SAFE_NO_PAD.decode(&okp.x).unwrap();
        let jwk_json = serde_json::to_vec(&key.jwk).unwrap();
        // Even with HS256 put back on the allow-list, it is dropped.
        let v = verifier(&[&key]).with_algorithms([Algorithm::HS256, Algorithm::EdDSA]);
        for secret in [raw_public.as_slice(), okp.x.as_bytes(), jwk_json.as_slice()] {
            for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let mut header = Header::new(alg);
                header.typ = Some("at+jwt".into());
                header.kid = Some(key.kid.clone());
                let token =
                    jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret))
                        .unwrap();
                assert_eq!(
                    reason(&v, &token).await,
                    VerifyError::Invalid("the token's signing algorithm is not accepted"),
                    "{alg:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn an_algorithm_that_does_not_fit_the_key_is_refused() {
        let ed = test_key(Algorithm::EdDSA);
        let es = test_key(Algorithm::ES256);
        // An ES256 token claiming the Ed25519 key's kid.
        let token = sign(
            &TestKey {
                kid: ed.kid.clone(),
                ..test_key(Algorithm::ES256)
            },
            &claims(),
        );
        let v = verifier(&[&ed, &es]);
        assert_eq!(
            reason(&v, &token).await,
            VerifyError::Invalid("the token's algorithm does not match its key")
        );
        // ES384 claimed for the ES256 key: the same family, but not the key's declared algorithm.
        let b64 = |v: Value| {
            base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                v.to_string(),
            )
        };
        let forged = format!(
            "{}.{}.{}",
            b64(json!({"alg": "ES384", "typ": "at+jwt", "kid": es.kid})),
            b64(claims()),
            "AAAA"
        );
        let any_ec = verifier(&[&es]).with_algorithms([Algorithm::ES256, Algorithm::ES384]);
        assert_eq!(
            reason(&any_ec, &forged).await,
            VerifyError::Invalid("the token's algorithm does not match its key")
        );
        let only_ed = verifier(&[&ed, &es]).with_algorithms([Algorithm::EdDSA]);
        assert_eq!(
            reason(&only_ed, &sign(&es, &claims())).await,
            VerifyError::Invalid("the token's signing algorithm is not accepted")
        );
    }

    /// A JWKS endpoint on 127.0.0.1 that counts its fetches and serves whatever keys it holds.
    async fn jwks_server(keys: Arc<RwLock<Vec<Jwk>>>) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let keys = keys.read().unwrap().clone();
                counter.fetch_add(1, Ordering::SeqCst);
                async move { axum::Json(JwkSet { keys }) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    #[tokio::test]
    async fn unknown_kids_refetch_at_most_once_per_interval() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let first = test_key(Algorithm::EdDSA);
        let keys = Arc::new(RwLock::new(vec![first.jwk.clone()]));
        let (url, hits) = jwks_server(keys.clone()).await;
        let v = JwksVerifier::new(ISSUER, &url)
            .unwrap()
            .with_min_refetch_interval(Duration::from_millis(400));
        v.verify(&sign(&first, &claims()), &resource())
            .await
            .unwrap();
        v.verify(&sign(&first, &claims()), &resource())
            .await
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 1, "cached");
        assert_eq!(v.issuer(), ISSUER);
        let shown = format!("{v:?}");
        assert!(
            shown.starts_with("JwksVerifier") && shown.contains(ISSUER),
            "{shown}"
        );

        // The issuer rotates: a token with the new kid arrives before the interval has passed.
        let second = test_key(Algorithm::EdDSA);
        keys.write().unwrap().push(second.jwk.clone());
        assert_eq!(
            reason(&v, &sign(&second, &claims())).await,
            VerifyError::Invalid("the token is signed with an unknown key")
        );
        assert_eq!(hits.load(Ordering::SeqCst), 1, "rate-limited");
        tokio::time::sleep(Duration::from_millis(450)).await;
        v.verify(&sign(&second, &claims()), &resource())
            .await
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2, "refetched for the new kid");
        // A flood of made-up kids costs at most one more fetch.
        tokio::time::sleep(Duration::from_millis(450)).await;
        let stranger = test_key(Algorithm::EdDSA);
        for _ in 0..20 {
            assert!(
                v.verify(&sign(&stranger, &claims()), &resource())
                    .await
                    .is_err()
            );
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        // Past the refetch interval but within max_age: a known key is still fresh, no fetch.
        tokio::time::sleep(Duration::from_millis(450)).await;
        v.verify(&sign(&first, &claims()), &resource())
            .await
            .unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 3, "fresh until max_age");
    }

    #[tokio::test]
    async fn fetched_keys_are_fresh_for_exactly_max_age() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = test_key(Algorithm::EdDSA);
        let (url, _hits) = jwks_server(Arc::new(RwLock::new(vec![key.jwk.clone()]))).await;
        let v = JwksVerifier::new(ISSUER, &url)
            .unwrap()
            .with_max_age(Duration::from_secs(600));
        v.verify(&sign(&key, &claims()), &resource()).await.unwrap();
        let fetched = v.read_cache(|c| c.fetched_at).unwrap();
        let kid = key.jwk.common.key_id.clone().unwrap();
        let at = |d: Duration| v.fresh_key_at(&kid, fetched + d).is_some();
        assert!(at(Duration::ZERO));
        assert!(at(Duration::from_secs(600) - Duration::from_nanos(1)));
        assert!(!at(Duration::from_secs(600)), "stale at max_age");
        assert!(!at(Duration::from_secs(601)));
    }

    #[tokio::test]
    async fn an_unreachable_jwks_is_unavailable_not_invalid() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        drop(listener);
        let key = test_key(Algorithm::EdDSA);
        let v = JwksVerifier::new(ISSUER, &url).unwrap();
        assert!(matches!(
            reason(&v, &sign(&key, &claims())).await,
            VerifyError::Unavailable(_)
        ));
        assert!(JwksVerifier::new(ISSUER, "http://auth.example.com/jwks.json").is_err());
    }

    /// An identity as a remembered verdict holds it, expiring at `exp`.
    fn identity_until(exp: i64) -> Identity {
        let mut c = claims();
        c["exp"] = json!(exp);
        Identity::from_claims(c.as_object().cloned().unwrap(), ISSUER).unwrap()
    }

    #[tokio::test]
    async fn a_verified_token_is_remembered_for_its_resource_only() {
        let key = test_key(Algorithm::EdDSA);
        let v = verifier(&[&key]);
        let token = sign(&key, &claims());
        v.verify(&token, &resource()).await.unwrap();
        let remembered = verdict_key(&[RESOURCE.as_bytes(), token.as_bytes()]);
        assert!(v.verdicts.get(&remembered, Instant::now(), 0).is_some());
        // For another resource the same token is checked again, and refused (its `aud`).
        let other = ProtectedResource::new("http://127.0.0.1:9000/other", ISSUER).unwrap();
        assert_eq!(
            v.verify(&token, &other).await.unwrap_err(),
            VerifyError::Invalid("the token was not issued for this resource")
        );
        // What `verify` answers for a remembered token is the remembered verdict: planted for a
        // string that is no JWT at all, it is served without any check.
        let planted = verdict_key(&[RESOURCE.as_bytes(), b"not-a-jwt"]);
        let t = Instant::now();
        v.verdicts.remember(
            planted,
            &identity_until(now() + 60),
            t,
            t + Duration::from_secs(60),
            0,
        );
        assert_eq!(
            v.verify("not-a-jwt", &resource()).await.unwrap().subject,
            "alice"
        );
    }

    #[test]
    fn a_verdict_is_remembered_until_the_tokens_exp_and_not_after() {
        let v = verifier(&[]);
        let (t0, unix0) = (Instant::now(), 1_000_000_i64);
        v.remember([1; 32], &identity_until(unix0 + 100), 0, t0, unix0);
        assert!(
            v.verdicts
                .get(&[1; 32], t0 + Duration::from_secs(99), 0)
                .is_some()
        );
        assert!(
            v.verdicts
                .get(&[1; 32], t0 + Duration::from_secs(100), 0)
                .is_none()
        );
        // Expired (inside the leeway, which let it pass) or without `exp`: not remembered.
        v.remember([2; 32], &identity_until(unix0 - 1), 0, t0, unix0);
        let mut no_exp = identity_until(unix0 + 100);
        no_exp.expires_at = None;
        v.remember([3; 32], &no_exp, 0, t0, unix0);
        assert!(v.verdicts.get(&[2; 32], t0, 0).is_none());
        assert!(v.verdicts.get(&[3; 32], t0, 0).is_none());
        // Turned off: nothing is kept.
        let off = verifier(&[]).with_verified_cache_max_entries(0);
        off.remember([1; 32], &identity_until(unix0 + 100), 0, t0, unix0);
        assert!(off.verdicts.get(&[1; 32], t0, 0).is_none());
    }

    #[tokio::test]
    async fn a_withdrawn_key_takes_its_remembered_tokens_with_it() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (old, new) = (test_key(Algorithm::EdDSA), test_key(Algorithm::EdDSA));
        let keys = Arc::new(RwLock::new(vec![old.jwk.clone()]));
        let (url, hits) = jwks_server(keys.clone()).await;
        let v = JwksVerifier::new(ISSUER, &url)
            .unwrap()
            .with_min_refetch_interval(Duration::ZERO);
        let old_token = sign(&old, &claims());
        v.verify(&old_token, &resource()).await.unwrap();
        // The issuer withdraws the old key; a token with the new kid makes the verifier learn it.
        *keys.write().unwrap() = vec![new.jwk.clone()];
        v.verify(&sign(&new, &claims()), &resource()).await.unwrap();
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        assert_eq!(
            reason(&v, &old_token).await,
            VerifyError::Invalid("the token is signed with an unknown key")
        );
    }

    #[tokio::test]
    async fn remembered_verdicts_need_a_fresh_key_set() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let key = test_key(Algorithm::EdDSA);
        let (url, _hits) = jwks_server(Arc::new(RwLock::new(vec![key.jwk.clone()]))).await;
        let v = JwksVerifier::new(ISSUER, &url)
            .unwrap()
            .with_max_age(Duration::from_secs(600));
        assert_eq!(v.fresh_epoch(Instant::now()), None, "nothing fetched yet");
        v.verify(&sign(&key, &claims()), &resource()).await.unwrap();
        let fetched = v.read_cache(|c| c.fetched_at).unwrap();
        let edge = fetched + Duration::from_secs(600);
        assert_eq!(v.fresh_epoch(edge - Duration::from_nanos(1)), Some(1));
        assert_eq!(v.fresh_epoch(edge), None, "stale at max_age");
        // Pinned keys never go stale.
        assert_eq!(verifier(&[&key]).fresh_epoch(edge), Some(0));
    }
}
