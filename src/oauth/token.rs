//! `POST /token`: the token endpoint (OAuth 2.1 §3.2, RFC 6749 §4.1.3 / §6 / §4.4).
//!
//! - `authorization_code`: the code is taken atomically (single use); a replayed code is
//!   `invalid_grant` and revokes everything issued from it (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3); PKCE S256
//!   verifier (RFC 7636 §4.6); `redirect_uri` must repeat the authorization request's (RFC 6749
//!   §4.1.3); `resource` must match the code's (RFC 8707 §2.2, else `invalid_target`).
//! - `refresh_token`: rotation on every use (OAuth 2.1 §4.3.1); reuse of a rotated token outside the
//!   grace window revokes the whole family; a replay inside the window gets the very successor the
//!   first rotation issued (kept sealed under the key-encryption key), so a family never has two
//!   live branches; requested scopes ⊆ original (RFC 6749 §6, `invalid_scope`). Every refresh
//!   re-checks the user with the authenticator (a deleted user's grant ends) and the grant's
//!   absolute lifetime (`[tokens] max_grant_lifetime`): rotation never extends a grant.
//! - `client_credentials`: confidential clients only (RFC 6749 §4.4); no refresh token; scopes only
//!   from the client's explicit allow-list (none without one); `sub` is the client id and no user
//!   claim is present (RFC 9068 §2.2).
//!
//! Responses carry `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{CodeRedemption, GrantType, RotateRefreshToken, Rotation, SubjectStatus};
use serde_json::Value;

use crate::error::{ErrorCode, OAuthError, no_store_headers};
use crate::oauth::client_auth::{AuthenticatedClient, ClientRequest};
use crate::oauth::params::Params;
use crate::oauth::pkce::{is_valid_verifier, verify_s256};
use crate::oauth::policy;
use crate::oauth::resources::{ClientScope, parse_scope, select_scopes};
use crate::oauth::secrets::hash_secret;
use crate::oauth::tokens::{Grant, Issued, mint, response_body};
use crate::state::AppState;

pub async fn token_post(
    State(state): State<AppState>,
    ClientRequest {
        params,
        client,
        now: t,
    }: ClientRequest,
) -> Result<Response, OAuthError> {
    let (grant, body) = match params.required("grant_type")? {
        "authorization_code" => (
            GrantType::AuthorizationCode,
            response_body(&authorization_code(&state, &client, &params, t).await?),
        ),
        "refresh_token" => (
            GrantType::RefreshToken,
            refresh_token(&state, &client, &params, t).await?,
        ),
        "client_credentials" => (
            GrantType::ClientCredentials,
            response_body(&client_credentials(&state, &client, &params, t).await?),
        ),
        _ => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "unsupported grant_type",
            ));
        }
    };
    state.observability.metrics.token_issued(grant);
    crate::oauth::client_usage::record_use(&state, &client.client.client_id, t);
    let mut resp = Json(body).into_response();
    no_store_headers(resp.headers_mut());
    Ok(resp)
}

fn require_grant(client: &AuthenticatedClient, grant: GrantType) -> Result<(), OAuthError> {
    if client.client.allows_grant(grant) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this client is not registered for the {grant} grant"),
        ))
    }
}

async fn authorization_code(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    t: i64,
) -> Result<Issued, OAuthError> {
    require_grant(client, GrantType::AuthorizationCode)?;
    let code = params.required("code")?;
    let verifier = params.required("code_verifier")?;
    let redirect_uri = params.single("redirect_uri")?;
    let resource = params.single("resource")?;
    if !is_valid_verifier(verifier) {
        return Err(OAuthError::invalid_grant(
            "code_verifier is malformed (RFC 7636 §4.1)",
        ));
    }
    let requested_resource = resource
        .map(|r| state.resources.resolve(Some(r)))
        .transpose()?;

    let code = match state
        .provider
        .tokens()
        .take_code(&hash_secret(code))
        .await?
    {
        CodeRedemption::Redeemed(code) => code,
        CodeRedemption::Replayed { family_id } => {
            // RFC 6749 §4.1.2: the server SHOULD revoke all tokens previously issued from this code.
            state
                .provider
                .tokens()
                .revoke_family(&family_id, state.revoked_family_memory_until(t))
                .await?;
            tracing::warn!(client_id = %client.client.client_id, family_id = %family_id, "authorization code replayed; grant revoked");
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid",
            ));
        }
    };
    if code.client_id != client.client.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.expires_at <= t {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    match redirect_uri {
        Some(uri) if uri == code.redirect_uri => {}
        Some(_) => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        None if code.redirect_uri_explicit => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri is required because the authorization request had one",
            ));
        }
        None => {}
    }
    if !verify_s256(verifier, &code.code_challenge) {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    if let Some(r) = requested_resource
        && r.uri != code.resource
    {
        return Err(OAuthError::invalid_target(
            "resource does not match the authorization request",
        ));
    }
    let lifetimes =
        policy::token_lifetimes(state.provider.policy(), &client.client, state.lifetimes);
    let issue_refresh = client.client.allows_grant(GrantType::RefreshToken);
    let issued = mint(
        state,
        &Grant {
            family_id: &code.family_id,
            client_id: &code.client_id,
            subject: &code.subject,
            scopes: &code.scopes,
            refresh_scopes: &code.scopes,
            resource: &code.resource,
            access_ttl: lifetimes.access_token,
            refresh_ttl: issue_refresh.then_some(lifetimes.refresh_token),
            grant_expires_at: code.issued_at.saturating_add(state.max_grant_lifetime),
        },
        t,
    )?;
    state
        .provider
        .tokens()
        .insert_tokens(issued.access_record.clone(), issued.refresh_record.clone())
        .await?;
    Ok(issued)
}

/// Additional authenticated data binding a sealed successor to the token it replaces.
fn successor_aad(old_hash: &mcp_oauth_provider::SecretHash) -> String {
    format!("refresh-successor:{}", old_hash.as_str())
}

/// Ends a refresh whose user may no longer hold the grant: revokes the family and says why.
async fn end_grant(
    state: &AppState,
    family_id: &str,
    t: i64,
    why: &'static str,
) -> Result<Value, OAuthError> {
    state
        .provider
        .tokens()
        .revoke_family(family_id, state.revoked_family_memory_until(t))
        .await?;
    tracing::info!(family_id = %family_id, reason = why, "grant ended at refresh");
    Err(OAuthError::invalid_grant(why))
}

async fn refresh_token(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    t: i64,
) -> Result<Value, OAuthError> {
    require_grant(client, GrantType::RefreshToken)?;
    let presented = params.required("refresh_token")?;
    let scope = params.single("scope")?;
    let resource = params.single("resource")?;
    let old_hash = hash_secret(presented);
    let old = state
        .provider
        .tokens()
        .get_refresh_token(&old_hash)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token is invalid"))?;
    if old.client_id != client.client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let scopes = match scope {
        Some(raw) => {
            let requested = parse_scope(raw)?;
            if let Some(bad) = requested.iter().find(|s| !old.scopes.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {bad:?} exceeds the original grant"
                )));
            }
            requested
        }
        None => old.scopes.clone(),
    };
    if let Some(r) = resource
        && state.resources.resolve(Some(r))?.uri != old.resource
    {
        return Err(OAuthError::invalid_target(
            "resource does not match the original grant",
        ));
    }
    if t >= old.grant_expires_at {
        return Err(OAuthError::invalid_grant(
            "the grant has reached its maximum lifetime ([tokens] max_grant_lifetime); sign in again",
        ));
    }
    // The user behind the grant must still exist and still be allowed its scopes.
    match crate::oauth::upstream::facts::check_subject(state, &old.subject).await? {
        SubjectStatus::Gone => {
            // A user deleted, no longer admitted by an upstream's configuration, or of an upstream
            // removed from it: every grant of theirs ends, as `users delete` ends them.
            crate::oauth::grants::end_user_grants(
                state.provider.tokens(),
                state.provider.interactions(),
                &old.subject,
                state.revoked_family_memory_until(t),
            )
            .await?;
            return Err(OAuthError::invalid_grant(
                "the user of this grant no longer exists or may no longer sign in",
            ));
        }
        SubjectStatus::Active {
            allowed_scopes: Some(allowed),
        } if old.scopes.iter().any(|s| !allowed.contains(s)) => {
            return end_grant(
                state,
                &old.family_id,
                t,
                "the user is no longer allowed every scope of this grant; sign in again",
            )
            .await;
        }
        SubjectStatus::Active { .. } | SubjectStatus::Unknown => {}
    }
    let lifetimes =
        policy::token_lifetimes(state.provider.policy(), &client.client, state.lifetimes);
    let issued = mint(
        state,
        &Grant {
            family_id: &old.family_id,
            client_id: &old.client_id,
            subject: &old.subject,
            scopes: &scopes,
            refresh_scopes: &old.scopes,
            resource: &old.resource,
            access_ttl: lifetimes.access_token,
            refresh_ttl: Some(lifetimes.refresh_token),
            grant_expires_at: old.grant_expires_at,
        },
        t,
    )?;
    let (Some(new_refresh), new_access) =
        (issued.refresh_record.clone(), issued.access_record.clone())
    else {
        return Err(OAuthError::server_error());
    };
    let body = response_body(&issued);
    let aad = successor_aad(&old_hash);
    let sealed_successor = state
        .kek
        .seal(&aad, body.to_string().as_bytes())
        .map_err(OAuthError::from)?;
    let request = RotateRefreshToken {
        old_hash,
        new_refresh,
        new_access,
        now: t,
        reuse_grace_since: t - state.refresh_reuse_grace,
        sealed_successor,
    };
    match state
        .provider
        .tokens()
        .rotate_refresh_token(request)
        .await?
    {
        Rotation::Rotated(_) => Ok(body),
        Rotation::Replayed {
            old,
            sealed_successor,
        } => {
            // Inside the grace window: the same successor again, never a second branch.
            let plain = state
                .kek
                .open(&aad, &sealed_successor)
                .map_err(OAuthError::from)?;
            let body: Value = serde_json::from_slice(&plain).map_err(|e| {
                tracing::error!(error = %e, "a kept refresh successor is unreadable");
                OAuthError::server_error()
            })?;
            tracing::info!(client_id = %old.client_id, family_id = %old.family_id, "refresh token replayed inside the grace window; same successor returned");
            Ok(body)
        }
        Rotation::Reused(old) => {
            // OAuth 2.1 §4.3.1: a rotated refresh token presented again means one of the two parties
            // holding it is an attacker; revoke the whole grant.
            state
                .provider
                .tokens()
                .revoke_family(&old.family_id, state.revoked_family_memory_until(t))
                .await?;
            tracing::warn!(client_id = %old.client_id, family_id = %old.family_id, "refresh token reused; grant revoked");
            Err(OAuthError::invalid_grant(
                "the refresh token was already used",
            ))
        }
        Rotation::Unknown => Err(OAuthError::invalid_grant(
            "the refresh token is invalid, expired or revoked",
        )),
    }
}

async fn client_credentials(
    state: &AppState,
    client: &AuthenticatedClient,
    params: &Params,
    t: i64,
) -> Result<Issued, OAuthError> {
    if !client.is_confidential() {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "client_credentials requires a confidential client",
        ));
    }
    require_grant(client, GrantType::ClientCredentials)?;
    let resource = state.resources.resolve(params.single("resource")?)?;
    // The client's registered scope is an explicit allow-list here: none registered, none granted.
    let scopes = select_scopes(
        resource,
        client.client.scope.as_deref(),
        params.single("scope")?,
        ClientScope::Limit,
    )?;
    let scopes =
        policy::client_credentials_scopes(state.provider.policy(), &client.client, &scopes).await;
    let family_id = uuid::Uuid::new_v4().to_string();
    let lifetimes =
        policy::token_lifetimes(state.provider.policy(), &client.client, state.lifetimes);
    let issued = mint(
        state,
        &Grant {
            family_id: &family_id,
            client_id: &client.client.client_id,
            subject: &client.client.client_id,
            scopes: &scopes,
            refresh_scopes: &scopes,
            resource: &resource.uri,
            access_ttl: lifetimes.access_token,
            refresh_ttl: None,
            grant_expires_at: t.saturating_add(lifetimes.access_token),
        },
        t,
    )?;
    state
        .provider
        .tokens()
        .insert_tokens(issued.access_record.clone(), None)
        .await?;
    Ok(issued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_oauth_provider::SecretHash;

    /// The sealed successor is bound to the token it replaces: a blob moved to another row of the
    /// store (a tampered database) does not open there.
    #[test]
    fn successor_aad_names_the_replaced_token() {
        let a = SecretHash("a".repeat(64));
        let b = SecretHash("b".repeat(64));
        assert_ne!(successor_aad(&a), successor_aad(&b));
        assert!(successor_aad(&a).ends_with(a.as_str()));
        let kek = crate::oauth::key_encryption::KeyEncryptionKey::random();
        let sealed = kek.seal(&successor_aad(&a), b"{}").unwrap();
        assert!(kek.open(&successor_aad(&a), &sealed).is_ok());
        assert!(kek.open(&successor_aad(&b), &sealed).is_err());
    }
}
