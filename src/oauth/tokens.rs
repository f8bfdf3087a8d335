//! Access tokens as RFC 9068 JWTs (`typ: at+jwt`) and the refresh tokens issued beside them.
//!
//! RFC 9068 §2.2 claims: `iss`, `exp`, `aud` (the RFC 8707 resource), `sub`, `client_id`, `iat`, `jti`,
//! plus `scope`. Every `jti` is recorded so revocation (RFC 7009) and introspection (RFC 7662) work on
//! a self-contained token.

use std::time::{Duration, Instant};

use jsonwebtoken::Validation;
use mcp_oauth_provider::{AccessTokenRecord, RefreshTokenRecord, RefreshTokenState, UnixTime};
use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::oauth::resources::join_scope;
use crate::oauth::secrets::{hash_secret, new_secret};
use crate::resource::verifier::verdict_cache::verdict_key;
use crate::state::AppState;

/// RFC 9068 §2.1 media type, as the JWT `typ` header.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
}

/// What to issue.
pub struct Grant<'a> {
    pub family_id: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    /// Scopes of this access token.
    pub scopes: &'a [String],
    /// Scopes of the refresh token (the whole grant; RFC 6749 §6 keeps them across rotation).
    pub refresh_scopes: &'a [String],
    pub resource: &'a str,
    pub access_ttl: i64,
    /// `Some(ttl)` to issue a refresh token.
    pub refresh_ttl: Option<i64>,
    /// The absolute end of the grant (`[tokens] max_grant_lifetime` after approval): a refresh
    /// token never outlives it.
    pub grant_expires_at: UnixTime,
}

/// A minted token pair, with the records to store.
pub struct Issued {
    pub access_token: String,
    pub access_record: AccessTokenRecord,
    pub refresh_token: Option<String>,
    pub refresh_record: Option<RefreshTokenRecord>,
    pub expires_in: i64,
    pub scope: String,
}

/// Mints (but does not store) an access token and optionally a refresh token.
pub fn mint(state: &AppState, grant: &Grant<'_>, now: UnixTime) -> Result<Issued, OAuthError> {
    let jti = new_secret();
    let claims = AccessClaims {
        iss: state.issuer.clone(),
        sub: grant.subject.to_string(),
        aud: grant.resource.to_string(),
        client_id: grant.client_id.to_string(),
        scope: join_scope(grant.scopes),
        exp: now + grant.access_ttl,
        iat: now,
        nbf: now,
        jti: jti.clone(),
    };
    let access_token = state.keys.sign(ACCESS_TOKEN_TYP, &claims)?;
    let access_record = AccessTokenRecord {
        jti,
        family_id: grant.family_id.to_string(),
        client_id: grant.client_id.to_string(),
        subject: grant.subject.to_string(),
        scopes: grant.scopes.to_vec(),
        resource: grant.resource.to_string(),
        issued_at: now,
        expires_at: claims.exp,
        revoked: false,
    };
    let (refresh_token, refresh_record) = match grant.refresh_ttl {
        Some(ttl) => {
            let token = new_secret();
            let record = RefreshTokenRecord {
                token_hash: hash_secret(&token),
                family_id: grant.family_id.to_string(),
                client_id: grant.client_id.to_string(),
                subject: grant.subject.to_string(),
                scopes: grant.refresh_scopes.to_vec(),
                resource: grant.resource.to_string(),
                issued_at: now,
                expires_at: (now + ttl).min(grant.grant_expires_at),
                grant_expires_at: grant.grant_expires_at,
                state: RefreshTokenState::Active,
            };
            (Some(token), Some(record))
        }
        None => (None, None),
    };
    Ok(Issued {
        access_token,
        access_record,
        refresh_token,
        refresh_record,
        expires_in: grant.access_ttl,
        scope: claims.scope,
    })
}

/// The token response body (RFC 6749 §5.1).
pub fn response_body(issued: &Issued) -> serde_json::Value {
    let mut body = serde_json::json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
    });
    if let Some(rt) = &issued.refresh_token {
        body["refresh_token"] = serde_json::Value::String(rt.clone());
    }
    body
}

/// Verifies a JWT this server issued: signature with a known key, `typ`, `iss`, `exp`, `nbf`.
/// Returns `None` for anything else (foreign, forged, expired, malformed).
///
/// A token verified before, under the same key set and before its `exp`, is recognised by its
/// SHA-256 digest instead of a second signature check
/// ([`crate::oauth::keys::KeyManager::verified`]).
pub fn verify_own(state: &AppState, token: &str) -> Option<AccessClaims> {
    let remembered = verdict_key(&[token.as_bytes()]);
    let keys = &state.keys;
    if let Some(epoch) = keys.epoch()
        && let Some(claims) = keys.verified().get(&remembered, Instant::now(), epoch)
    {
        return Some(claims);
    }
    let (claims, epoch) = decode_own(state, token, true)?;
    remember_verified(
        state,
        remembered,
        &claims,
        epoch,
        Instant::now(),
        crate::state::now(),
    );
    Some(claims)
}

/// Remembers `claims` from `now` (`now_unix` in seconds) until the token's `exp`.
fn remember_verified(
    state: &AppState,
    remembered: [u8; 32],
    claims: &AccessClaims,
    epoch: u64,
    now: Instant,
    now_unix: i64,
) {
    if let Ok(left) = u64::try_from(claims.exp.saturating_sub(now_unix)) {
        let until = now + Duration::from_secs(left);
        state
            .keys
            .verified()
            .remember(remembered, claims, now, until, epoch);
    }
}

/// True when `token` is one of this server's JWTs, intact in every way except that `exp` has
/// passed (so a resource can say "expired" rather than "invalid", RFC 6750 §3.1).
pub fn is_expired_own(state: &AppState, token: &str) -> bool {
    decode_own(state, token, false).is_some_and(|(c, _)| c.exp <= crate::state::now())
}

/// The claims of a JWT this server issued, and the epoch of the key set that verified it.
fn decode_own(state: &AppState, token: &str, check_exp: bool) -> Option<(AccessClaims, u64)> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return None;
    }
    let (alg, key, epoch) = state.keys.verifying_key_in_epoch(header.kid.as_deref()?)?;
    if header.alg != alg {
        return None;
    }
    let mut v = Validation::new(alg);
    v.set_issuer(&[&state.issuer]);
    v.validate_aud = false;
    v.validate_exp = check_exp;
    v.validate_nbf = true;
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud", "iat", "jti"]);
    jsonwebtoken::decode::<AccessClaims>(token, &key, &v)
        .ok()
        .map(|d| (d.claims, epoch))
}

/// Like [`verify_own`], first loading the signing keys again when the token names a key this
/// process has not seen (rotated by another server or by `mcp-oauth keys rotate`).
pub async fn verify_own_fresh(state: &AppState, token: &str) -> Option<AccessClaims> {
    let kid = jsonwebtoken::decode_header(token).ok()?.kid?;
    if !state.keys.ensure_kid(state.provider.keys(), &kid).await {
        return None;
    }
    verify_own(state, token)
}

/// True when the string has the shape of a JWS compact serialisation.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}
