//! `POST /revoke`: token revocation (RFC 7009 §2).
//!
//! - §2.1: the client authenticates (public clients name themselves); `token` is required,
//!   `token_type_hint` optional.
//! - §2.1: revoking a refresh token also revokes the access tokens of the same grant; revoking an
//!   access token revokes that token.
//! - §2.2: 200 whether or not the token was known (an invalid token is not an error). A token that
//!   belongs to another client is left alone, and the answer is the same 200, so it cannot be used to
//!   probe other clients' tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::RevokeTarget;

use crate::error::{OAuthError, no_store_headers};
use crate::oauth::client_auth::ClientRequest;
use crate::oauth::secrets::hash_secret;
use crate::oauth::tokens::{looks_like_jwt, verify_own_fresh};
use crate::state::AppState;

pub async fn revoke_post(
    State(state): State<AppState>,
    ClientRequest {
        params,
        client,
        now: t,
    }: ClientRequest,
) -> Result<Response, OAuthError> {
    let token = params.required("token")?;
    // The hint only orders lookups (RFC 7009 §2.1); the token's shape already tells them apart.
    let _hint = params.single("token_type_hint")?;
    let tokens = state.provider.tokens();
    let client_id = client.client.client_id.as_str();
    if looks_like_jwt(token) {
        if let Some(claims) = verify_own_fresh(&state, token).await
            && claims.client_id == client_id
        {
            tokens
                .revoke(RevokeTarget::AccessToken { jti: claims.jti })
                .await?;
        }
    } else if let Some(rt) = tokens.get_refresh_token(&hash_secret(token)).await?
        && rt.client_id == client_id
    {
        tokens
            .revoke_family(&rt.family_id, state.revoked_family_memory_until(t))
            .await?;
    }
    let mut resp = StatusCode::OK.into_response();
    no_store_headers(resp.headers_mut());
    Ok(resp)
}
