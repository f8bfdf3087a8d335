//! [`IntrospectionVerifier`]: asks the authorization server about each token (RFC 7662).
//!
//! - §2.1: the request is a form POST of `token` (+ `token_type_hint=access_token`), authenticated
//!   with HTTP Basic client credentials (RFC 6749 §2.3.1); the endpoint must be https, or http on a
//!   loopback host, so the credentials and the token never cross a network in the clear.
//! - §2.2: `active: false` (unknown, expired, revoked, foreign) is a 401 `invalid_token`. An active
//!   answer must describe an access token (`token_type` Bearer when present: a refresh token is
//!   "active" too, and must not open the door), from the expected issuer (`iss`, when present), for
//!   this resource (`aud`, required), not expired (`exp`).
//! - §4: answers may be cached, but never past the token's `exp`. The cache is off by default so a
//!   revocation takes effect on the very next request; turn it on with
//!   [`IntrospectionVerifier::with_cache_ttl`] to trade that for fewer round trips.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use super::remote::{RemoteError, checked_url, discover, outbound_client};
use super::verdict_cache::{VerdictCache, verdict_key};
use super::{Identity, TokenVerifier, VerifyError, unix_now};
use crate::protected::ProtectedResource;

/// Cached answers kept at most by default ([`IntrospectionVerifier::with_cache_max_entries`]);
/// when full, expired entries go first, then everything.
pub const DEFAULT_CACHE_MAX_ENTRIES: usize = 10_000;

/// Verifies tokens with RFC 7662 introspection. See the module docs.
pub struct IntrospectionVerifier {
    endpoint: Url,
    issuer: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    cache_ttl: Duration,
    /// Answers by SHA-256 of the token (so the cache holds no usable token).
    cache: VerdictCache<Identity>,
}

impl std::fmt::Debug for IntrospectionVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectionVerifier")
            .field("endpoint", &self.endpoint.as_str())
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_max_entries", &self.cache.max_entries())
            .finish()
    }
}

impl IntrospectionVerifier {
    /// Introspects at `endpoint` as the confidential client `client_id`; tokens must come from
    /// `issuer`.
    pub fn new(
        endpoint: &str,
        issuer: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, RemoteError> {
        let endpoint = checked_url("introspection_endpoint", endpoint)?;
        checked_url("issuer", issuer)?;
        Ok(Self {
            endpoint,
            issuer: issuer.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            http: outbound_client()?,
            cache_ttl: Duration::ZERO,
            cache: VerdictCache::new(DEFAULT_CACHE_MAX_ENTRIES),
        })
    }

    /// Finds the `introspection_endpoint` in the issuer's RFC 8414 metadata.
    pub async fn discover(
        issuer: &str,
        client_id: &str,
        client_secret: &str,
    ) -> Result<Self, RemoteError> {
        let http = outbound_client()?;
        let meta = discover(&http, issuer).await?;
        Self::new(
            meta.introspection_endpoint()?,
            issuer,
            client_id,
            client_secret,
        )
    }

    /// Caches active answers for up to `ttl` (never past the token's `exp`). Zero (the default)
    /// asks every time.
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// At most `entries` (at least 1) answers are cached (default [`DEFAULT_CACHE_MAX_ENTRIES`]).
    pub fn with_cache_max_entries(mut self, entries: usize) -> Self {
        self.cache = VerdictCache::new(entries.max(1));
        self
    }

    fn cached(&self, key: &[u8; 32], now: Instant) -> Option<Identity> {
        self.cache.get(key, now, 0)
    }

    /// Caches `identity` from `now` (`now_unix` in seconds since the epoch) for the cache TTL, never
    /// past the token's `exp`.
    fn remember(&self, key: [u8; 32], identity: &Identity, now: Instant, now_unix: i64) {
        let mut ttl = self.cache_ttl;
        if let Some(exp) = identity.expires_at {
            let left = u64::try_from(exp - now_unix).unwrap_or(0);
            ttl = ttl.min(Duration::from_secs(left));
        }
        self.cache.remember(key, identity, now, now + ttl, 0);
    }

    async fn introspect(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let unavailable = |what: String| {
            tracing::warn!(endpoint = %self.endpoint, error = %what, "token introspection failed");
            VerifyError::Unavailable("the authorization server could not be asked".into())
        };
        let resp = self
            .http
            .post(self.endpoint.clone())
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            // 401 here means *our* credentials are wrong, not the caller's token.
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
        match body {
            Value::Object(map) => Ok(map),
            _ => Err(unavailable("the answer is not a JSON object".into())),
        }
    }
}

/// Applies RFC 7662 §2.2 to an answer.
fn identity_from_answer(answer: Map<String, Value>, issuer: &str) -> Result<Identity, VerifyError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(VerifyError::Invalid("the token is not active"));
    }
    if let Some(kind) = answer.get("token_type").and_then(Value::as_str)
        && !kind.eq_ignore_ascii_case("bearer")
        && !kind.eq_ignore_ascii_case("access_token")
    {
        return Err(VerifyError::Invalid("the token is not an access token"));
    }
    if let Some(iss) = answer.get("iss").and_then(Value::as_str)
        && iss.trim_end_matches('/') != issuer
    {
        return Err(VerifyError::Invalid(
            "the token was issued by another issuer",
        ));
    }
    if let Some(exp) = answer.get("exp").and_then(Value::as_i64)
        && exp <= unix_now()
    {
        return Err(VerifyError::Invalid("the token has expired"));
    }
    let identity = Identity::from_claims(answer, issuer)
        .ok_or(VerifyError::Invalid("the token names no subject"))?;
    if identity.audiences.is_empty() {
        return Err(VerifyError::Invalid("the token names no audience"));
    }
    Ok(identity)
}

#[async_trait]
impl TokenVerifier for IntrospectionVerifier {
    async fn verify(
        &self,
        token: &str,
        _resource: &ProtectedResource,
    ) -> Result<Identity, VerifyError> {
        let key = verdict_key(&[token.as_bytes()]);
        if let Some(identity) = self.cached(&key, Instant::now()) {
            return Ok(identity);
        }
        let identity = identity_from_answer(self.introspect(token).await?, &self.issuer)?;
        self.remember(key, &identity, Instant::now(), unix_now());
        Ok(identity)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;

    const ISSUER: &str = "http://127.0.0.1:9000";

    fn answer(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn identity_until(exp: i64) -> Identity {
        Identity::from_claims(answer(json!({"sub": "alice", "exp": exp})), ISSUER).unwrap()
    }

    #[test]
    fn the_cache_keeps_an_answer_until_its_ttl_or_its_exp_whichever_is_first() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let v = IntrospectionVerifier::new("http://127.0.0.1:1/introspect", ISSUER, "rs", "secret")
            .unwrap()
            .with_cache_ttl(Duration::from_secs(300));
        let (t0, unix0) = (Instant::now(), 1_000_000_i64);
        // exp in 100 s, before the TTL: cached exactly that long.
        v.remember([1; 32], &identity_until(unix0 + 100), t0, unix0);
        assert!(v.cached(&[1; 32], t0 + Duration::from_secs(99)).is_some());
        assert!(v.cached(&[1; 32], t0 + Duration::from_secs(100)).is_none());
        // exp in an hour: the TTL decides.
        v.remember([2; 32], &identity_until(unix0 + 3600), t0, unix0);
        assert!(v.cached(&[2; 32], t0 + Duration::from_secs(299)).is_some());
        assert!(v.cached(&[2; 32], t0 + Duration::from_secs(300)).is_none());
        // Already expired: never cached.
        v.remember([3; 32], &identity_until(unix0 - 1), t0, unix0);
        assert!(v.cached(&[3; 32], t0).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_answers_first_then_everything() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let v = IntrospectionVerifier::new("http://127.0.0.1:1/introspect", ISSUER, "rs", "secret")
            .unwrap()
            .with_cache_ttl(Duration::from_secs(60))
            .with_cache_max_entries(2);
        let (t0, unix0) = (Instant::now(), 1_000_000_i64);
        let id = identity_until(unix0 + 3600);
        v.remember([1; 32], &id, t0, unix0);
        v.remember([2; 32], &id, t0 + Duration::from_secs(30), unix0 + 30);
        // Full; [1] expires at 60 s, exactly now: only it goes.
        let t60 = t0 + Duration::from_secs(60);
        v.remember([3; 32], &id, t60, unix0 + 60);
        assert!(v.cached(&[2; 32], t60).is_some());
        assert!(v.cached(&[3; 32], t60).is_some());
        // Full and nothing expired: everything goes, the new answer stays.
        v.remember([4; 32], &id, t60, unix0 + 70);
        assert!(v.cached(&[2; 32], t60).is_none());
        assert!(v.cached(&[3; 32], t60).is_none());
        assert!(v.cached(&[4; 32], t60).is_some());
    }

    #[test]
    fn debug_redacts_the_client_secret() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let v = IntrospectionVerifier::new(
            "http://127.0.0.1:1/introspect",
            ISSUER,
            "rs",
            "s3cr3t-value",
        )
        .unwrap();
        let shown = format!("{v:?}");
        assert!(shown.starts_with("IntrospectionVerifier"), "{shown}");
        assert!(
            shown.contains("\"rs\"") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
    }

    fn active() -> Value {
        json!({"active": true, "token_type": "Bearer", "sub": "alice", "client_id": "c",
               "scope": "mcp:tools", "aud": "http://127.0.0.1:9000/mcp", "iss": ISSUER,
               "exp": unix_now() + 600})
    }

    #[test]
    fn answers_are_judged_by_rfc_7662() {
        assert!(identity_from_answer(answer(active()), ISSUER).is_ok());
        let mutate = |name: &str, value: Value| {
            let mut a = active();
            a[name] = value;
            identity_from_answer(answer(a), ISSUER)
        };
        assert_eq!(
            mutate("active", json!(false)).unwrap_err(),
            VerifyError::Invalid("the token is not active")
        );
        assert_eq!(
            mutate("active", json!("true")).unwrap_err(),
            VerifyError::Invalid("the token is not active")
        );
        assert_eq!(
            mutate("token_type", json!("refresh_token")).unwrap_err(),
            VerifyError::Invalid("the token is not an access token")
        );
        assert_eq!(
            mutate("iss", json!("http://127.0.0.1:9001")).unwrap_err(),
            VerifyError::Invalid("the token was issued by another issuer")
        );
        assert_eq!(
            mutate("exp", json!(unix_now() - 1)).unwrap_err(),
            VerifyError::Invalid("the token has expired")
        );
        let mut no_aud = active();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            identity_from_answer(answer(no_aud), ISSUER).unwrap_err(),
            VerifyError::Invalid("the token names no audience")
        );
        assert_eq!(
            identity_from_answer(answer(json!({"active": false})), ISSUER).unwrap_err(),
            VerifyError::Invalid("the token is not active")
        );
    }

    /// An introspection endpoint on 127.0.0.1 that checks Basic credentials and counts calls.
    async fn endpoint(reply: Value) -> (String, Arc<AtomicUsize>) {
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        let app = axum::Router::new().route(
            "/introspect",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                counter.fetch_add(1, Ordering::SeqCst);
                let reply = reply.clone();
                async move {
                    let basic = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    // base64("rs:s3cret")
                    if basic != "Basic cnM6czNjcmV0" || !body.contains("token=tok") {
                        return (
                            axum::http::StatusCode::UNAUTHORIZED,
                            axum::Json(json!({"error": "invalid_client"})),
                        );
                    }
                    (axum::http::StatusCode::OK, axum::Json(reply))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, hits)
    }

    fn resource() -> ProtectedResource {
        ProtectedResource::new("http://127.0.0.1:9000/mcp", ISSUER).unwrap()
    }

    #[tokio::test]
    async fn asks_every_time_by_default_and_caches_when_told() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (url, hits) = endpoint(active()).await;
        let v = IntrospectionVerifier::new(&url, ISSUER, "rs", "s3cret").unwrap();
        for _ in 0..3 {
            assert_eq!(v.verify("tok", &resource()).await.unwrap().subject, "alice");
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);

        let cached = IntrospectionVerifier::new(&url, ISSUER, "rs", "s3cret")
            .unwrap()
            .with_cache_ttl(Duration::from_secs(60));
        for _ in 0..3 {
            cached.verify("tok", &resource()).await.unwrap();
        }
        assert_eq!(hits.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn the_cache_never_outlives_the_token() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut soon = active();
        // Two seconds, not one: the first check must not cross `exp` on a loaded machine.
        soon["exp"] = json!(unix_now() + 2);
        let (url, hits) = endpoint(soon).await;
        let v = IntrospectionVerifier::new(&url, ISSUER, "rs", "s3cret")
            .unwrap()
            .with_cache_ttl(Duration::from_secs(600));
        v.verify("tok", &resource()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(3100)).await;
        assert_eq!(
            v.verify("tok", &resource()).await.unwrap_err(),
            VerifyError::Invalid("the token has expired")
        );
        assert_eq!(hits.load(Ordering::SeqCst), 2, "asked again after exp");
    }

    #[tokio::test]
    async fn wrong_credentials_or_no_server_are_unavailable() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (url, _) = endpoint(active()).await;
        let v = IntrospectionVerifier::new(&url, ISSUER, "rs", "wrong").unwrap();
        assert!(matches!(
            v.verify("tok", &resource()).await,
            Err(VerifyError::Unavailable(_))
        ));
        assert!(
            IntrospectionVerifier::new("http://auth.example.com/introspect", ISSUER, "a", "b")
                .is_err()
        );
        let rendered = format!("{v:?}");
        assert!(!rendered.contains("wrong"), "{rendered}");
    }
}
