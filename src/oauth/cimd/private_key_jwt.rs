//! `private_key_jwt` for document clients (RFC 7523 §2.2 and §3, RFC 7521 §4.2; OpenID Connect Core
//! §9): the client authenticates at the token, revocation and introspection endpoints with a JWT it
//! signed with a key its metadata document publishes (`jwks`, or `jwks_uri` fetched through the
//! same guarded fetcher).
//!
//! The assertion must have `iss` = `sub` = the client id, an `aud` naming this server's token
//! endpoint or its issuer, an `exp` no further than `[registration] cimd_assertion_max_lifetime`
//! away, and a `jti` used once: accepted `jti`s are remembered until their assertion expires (RFC
//! 7523 §3 item 7). A `jti` is claimed in storage ([`SharedStateStore::claim_once`], key
//! `cimd-jti:<client_id>#<jti>`: a client id never contains `#`, so no client can name another
//! client's key), atomically across every server on the store, so a replay sent to
//! another instance is refused too. The claim lasts until the assertion could no longer be accepted
//! anywhere: its `exp` plus the clock leeway. A store that cannot record the claim refuses the
//! assertion (the error is the store's: 503 or 500), never accepts it unrecorded.
//!
//! [`SharedStateStore::claim_once`]: mcp_oauth_provider::SharedStateStore::claim_once

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcp_oauth_provider::UnixTime;
use serde_json::{Map, Value};

use super::cache::{store_key, ttl_from_headers};
use super::document::{DocumentAuth, DocumentClient, parse_client_id_url};
use crate::error::OAuthError;
use crate::state::AppState;

/// RFC 7523 §2.2.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Seconds of clock skew allowed on `exp` and `nbf`; a used `jti` is remembered this much past its
/// assertion's `exp`.
const LEEWAY: u64 = 30;

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

/// The key a `jti` is claimed under (long ones hashed, see [`store_key`]). The client id is a
/// validated document URL, which has no fragment, so `#` ends it unambiguously.
pub fn replay_key(client_id: &str, jti: &str) -> String {
    store_key("cimd-jti:", &format!("cimd-jti:{client_id}#{jti}"))
}

/// Until when a `jti` stays claimed: while `now <= exp + LEEWAY` the assertion still verifies, so
/// the claim must be live then (a claim is expired at `expires_at <= now`).
pub fn claim_expiry(exp: UnixTime) -> UnixTime {
    exp.saturating_add(i64::try_from(LEEWAY).unwrap_or(0))
        .saturating_add(1)
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
    validation.leeway = LEEWAY;
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
    let first = state
        .provider
        .shared_state()
        .claim_once(&replay_key(client_id, jti), claim_expiry(exp), now)
        .await
        .map_err(OAuthError::from)?;
    if !first {
        return Err(bad("the client assertion was already used (jti replayed)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_outlives_the_last_second_the_assertion_verifies() {
        // jsonwebtoken accepts while now <= exp + leeway; the claim is live while now < expiry.
        let exp = 1_000;
        assert!(claim_expiry(exp) > exp + i64::try_from(LEEWAY).unwrap());
        assert_eq!(claim_expiry(i64::MAX), i64::MAX);
    }

    #[test]
    fn replay_keys_name_the_client_and_the_jti() {
        assert_eq!(
            replay_key("https://app.example/c.json", "j1"),
            "cimd-jti:https://app.example/c.json#j1"
        );
        assert_ne!(
            replay_key("https://app.example/c.json", "j1"),
            replay_key("https://app.example/d.json", "j1")
        );
        // A client whose URL ends where another's jti begins cannot name that client's key.
        assert_ne!(
            replay_key("https://app.example/a:b", "c"),
            replay_key("https://app.example/a", "b:c")
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
