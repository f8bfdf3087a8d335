//! `POST /introspect`: token introspection (RFC 7662 §2).
//!
//! - §2.1: the caller MUST authenticate; here only confidential clients can (a public client's name
//!   proves nothing), so token scanning needs a client secret.
//! - §2.2: unknown, expired, revoked or foreign tokens are `{"active": false}` with 200; active access
//!   tokens report `scope`, `client_id`, `sub`, `aud` (the RFC 8707 resource), `iss`, `exp`, `iat`,
//!   `nbf`, `jti`, `token_type`. Refresh tokens can be introspected too.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::RefreshTokenState;
use serde_json::{Value, json};

use crate::error::{OAuthError, no_store_headers};
use crate::oauth::client_auth::ClientRequest;
use crate::oauth::secrets::hash_secret;
use crate::oauth::tokens::{looks_like_jwt, verify_own_fresh};
use crate::state::AppState;

pub async fn introspect_post(
    State(state): State<AppState>,
    ClientRequest {
        params,
        client,
        now: t,
    }: ClientRequest,
) -> Result<Response, OAuthError> {
    if !client.is_confidential() {
        return Err(OAuthError::invalid_client(
            "introspection requires client authentication with a secret",
        ));
    }
    let token = params.required("token")?;
    let _hint = params.single("token_type_hint")?;
    let body = introspect(&state, token, t).await?;
    let mut resp = Json(body).into_response();
    no_store_headers(resp.headers_mut());
    Ok(resp)
}

/// The introspection answer for `token` at time `t`.
pub async fn introspect(state: &AppState, token: &str, t: i64) -> Result<Value, OAuthError> {
    let inactive = json!({ "active": false });
    if looks_like_jwt(token) {
        let Some(claims) = verify_own_fresh(state, token).await else {
            return Ok(inactive);
        };
        let Some(record) = state
            .provider
            .tokens()
            .get_access_token(&claims.jti)
            .await?
        else {
            return Ok(inactive);
        };
        if record.revoked || record.expires_at <= t {
            return Ok(inactive);
        }
        return Ok(json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "username": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "nbf": claims.nbf,
            "jti": claims.jti,
        }));
    }
    let Some(rt) = state
        .provider
        .tokens()
        .get_refresh_token(&hash_secret(token))
        .await?
    else {
        return Ok(inactive);
    };
    if rt.state != RefreshTokenState::Active || rt.expires_at <= t {
        return Ok(inactive);
    }
    Ok(json!({
        "active": true,
        "token_type": "refresh_token",
        "scope": rt.scopes.join(" "),
        "client_id": rt.client_id,
        "sub": rt.subject,
        "aud": rt.resource,
        "iss": state.issuer,
        "exp": rt.expires_at,
        "iat": rt.issued_at,
    }))
}
