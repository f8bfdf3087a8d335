//! `private_key_jwt` for document clients (RFC 7523 §2.2 and §3, RFC 7521 §4.2; OpenID Connect Core
//! §9): the client authenticates at the token, revocation and introspection endpoints with a JWT it
//! signed with a key its metadata document publishes (`jwks`, or `jwks_uri` fetched through the
//! same guarded fetcher).
//!
//! The assertion must have `iss` = `sub` = the client id, an `aud` naming this server's token
//! endpoint or its issuer, an `exp` no further than `[registration] cimd_assertion_max_lifetime`
//! away, and a `jti` used once: accepted `jti`s are remembered until their assertion expires (RFC
//! 7523 §3 item 7). The replay cache is per process; several instances behind one database each
//! refuse a replay they saw themselves, so a replay across instances within the assertion's short
//! life is not caught.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_oauth_provider::UnixTime;
use serde_json::{Map, Value};

use super::cache::ttl_from_headers;
use super::document::{DocumentAuth, DocumentClient, parse_client_id_url};
use crate::error::OAuthError;
use crate::state::AppState;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Entries kept at most; past it new assertions are refused until old ones expire (refusing is
/// safe, forgetting a `jti` would not be).
const MAX_REMEMBERED: usize = 100_000;

/// Signature algorithms accepted; symmetric ones never (the key is public). Advertised as
/// `token_endpoint_auth_signing_alg_values_supported` (RFC 8414 §2).
pub const ALGORITHMS: &[Algorithm] = &[
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// `jti`s seen, with the time their assertion expires.
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, UnixTime>>,
}

impl ReplayCache {
    /// Records `key` until `exp`; false when it was already recorded (a replay) or the cache is full.
    pub fn first_use(&self, key: &str, exp: UnixTime, now: UnixTime) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        if seen.get(key).is_some_and(|until| *until >= now) {
            return false;
        }
        seen.insert(key.to_string(), exp);
        true
    }
}

/// JWK Sets fetched from `jwks_uri`, cached like documents.
#[derive(Default)]
pub struct JwksCache {
    sets: Mutex<HashMap<String, (Value, Instant)>>,
}

/// The `iss` of an assertion, read without verifying it: only to know which client's keys to
/// verify it with (RFC 7521 §4.2: `client_id` is optional next to an assertion).
pub fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_string)
}

fn bad(why: &'static str) -> OAuthError {
    OAuthError::invalid_client(why)
}

async fn key_set(state: &AppState, doc: &DocumentClient) -> Result<JwkSet, OAuthError> {
    let value = match &doc.auth {
        DocumentAuth::PrivateKeyJwtJwks(set) => set.clone(),
        DocumentAuth::PrivateKeyJwtJwksUri(uri) => jwks_from_uri(state, uri).await?,
        DocumentAuth::None => {
            return Err(bad(
                "this client's metadata document does not use private_key_jwt",
            ));
        }
    };
    serde_json::from_value(value).map_err(|_| bad("the client's JWK Set could not be read"))
}

async fn jwks_from_uri(state: &AppState, uri: &str) -> Result<Value, OAuthError> {
    let cache = &state.cimd.jwks;
    if let Some((set, until)) = cache
        .sets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(uri)
        && *until > Instant::now()
    {
        return Ok(set.clone());
    }
    let url = parse_client_id_url(uri).map_err(|_| bad("the client's jwks_uri is not usable"))?;
    let fetched = state
        .cimd
        .fetcher()
        .get(&url)
        .await
        .map_err(|e| OAuthError::invalid_client(format!("jwks_uri: {e}")))?;
    let set: Value = serde_json::from_slice(&fetched.body)
        .map_err(|_| bad("the client's jwks_uri does not hold a JWK Set"))?;
    let (min, max) = state.cimd.cache_bounds();
    let ttl = ttl_from_headers(&fetched.headers, min, max);
    cache
        .sets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(uri.to_string(), (set.clone(), Instant::now() + ttl));
    Ok(set)
}

/// Verifies `assertion` as `doc`'s client authentication at one of this server's endpoints.
pub async fn verify(
    state: &AppState,
    doc: &DocumentClient,
    assertion: &str,
    now: UnixTime,
) -> Result<(), OAuthError> {
    let client_id = doc.client.client_id.as_str();
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|_| bad("the client assertion is not a well-formed signed JWT"))?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(bad("the client assertion's algorithm is not accepted"));
    }
    let set = key_set(state, doc).await?;
    let candidates: Vec<_> = match header.kid.as_deref() {
        Some(kid) => set.find(kid).into_iter().collect(),
        None => set.keys.iter().collect(),
    };
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.to_string());
    validation.set_audience(&[state.endpoint("/token"), state.issuer.clone()]);
    validation.leeway = 30;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let mut claims = None;
    for jwk in candidates {
        let Ok(key) = DecodingKey::from_jwk(jwk) else {
            continue;
        };
        if key.family() != header.alg.family() {
            continue;
        }
        if let Ok(data) = jsonwebtoken::decode::<Map<String, Value>>(assertion, &key, &validation) {
            claims = Some(data.claims);
            break;
        }
    }
    let claims = claims.ok_or_else(|| {
        bad("the client assertion does not verify with a key of the client's metadata document")
    })?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(|| bad("the client assertion has no numeric exp"))?;
    if exp - now > state.cimd.assertion_max_lifetime() {
        return Err(bad(
            "the client assertion lives too long (exp is too far ahead)",
        ));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| bad("the client assertion has no jti"))?;
    if !state
        .cimd
        .replay
        .first_use(&format!("{client_id} {jti}"), exp, now)
    {
        return Err(bad("the client assertion was already used (jti replayed)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_accepted_once_until_it_expires() {
        let r = ReplayCache::default();
        assert!(r.first_use("c j1", 100, 50));
        assert!(!r.first_use("c j1", 100, 60));
        assert!(r.first_use("c j2", 100, 60));
        assert!(
            r.first_use("c j1", 200, 101),
            "after expiry the assertion is dead anyway"
        );
    }

    #[test]
    fn issuer_is_read_without_verification() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"iss":"https://app.example/c.json"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://app.example/c.json")
        );
        assert_eq!(unverified_issuer("garbage"), None);
    }
}
