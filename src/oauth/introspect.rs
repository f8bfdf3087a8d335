//! `POST /introspect`: token introspection (RFC 7662 §2).
//!
//! - §2.1: the caller MUST authenticate; here only confidential clients can (a public client's name
//!   proves nothing), so token scanning needs a client secret.
//! - §2.2: unknown, expired, revoked or foreign tokens are `{"active": false}` with 200; active access
//!   tokens report `scope`, `client_id`, `sub`, `aud` (the RFC 8707 resource), `iss`, `exp`, `iat`,
//!   `nbf`, `jti`, `token_type`, and `username` only when a user is behind the token (RFC 9068
//!   §2.2: a `client_credentials` token's subject is the client). Refresh tokens too.
//! - §4 (privacy): a client may introspect the tokens issued to it; only a client an administrator
//!   marked as a resource server (`clients add --resource-server`) may introspect any access token;
//!   a refresh token only by its own client. Everything else is answered `{"active": false}`, the
//!   same as an unknown token, so the answer reveals nothing.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{Client, RefreshTokenState};
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
    let body = introspect_for(&state, &client.client, token, t).await?;
    let mut resp = Json(body).into_response();
    no_store_headers(resp.headers_mut());
    Ok(resp)
}

/// The answer `caller` may see for `token` at time `t` (RFC 7662 §4: only resource servers see
/// other clients' access tokens; refresh tokens only their own client).
pub async fn introspect_for(
    state: &AppState,
    caller: &Client,
    token: &str,
    t: i64,
) -> Result<Value, OAuthError> {
    let answer = introspect(state, token, t).await?;
    if answer["active"] != true {
        return Ok(answer);
    }
    let own = answer["client_id"].as_str() == Some(caller.client_id.as_str());
    let is_refresh = answer["token_type"] == "refresh_token";
    if own || (caller.resource_server && !is_refresh) {
        Ok(answer)
    } else {
        Ok(json!({ "active": false }))
    }
}

/// The introspection answer for `token` at time `t`, whoever asks.
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
        let is_user = claims.sub != claims.client_id;
        let mut answer = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "aud": claims.aud,
            "iss": claims.iss,
            "exp": claims.exp,
            "iat": claims.iat,
            "nbf": claims.nbf,
            "jti": claims.jti,
        });
        if is_user {
            answer["username"] = answer["sub"].clone();
        }
        return Ok(answer);
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
