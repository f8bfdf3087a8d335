//! Sign-in through an upstream identity provider: the core's half (the upstream's half is a
//! [`mcp_oauth_provider::UpstreamAuthenticator`], e.g. the `oidc` users kind).
//!
//! - `POST /login/upstream/<name>` (form `tx`, `csrf_token`, from the login page's button): checks
//!   the transaction, the browser binding and the CSRF token exactly as `POST /login` does,
//!   generates this sign-in's `state`, `nonce` and PKCE verifier (RFC 7636 §4.1), remembers them in
//!   a sealed cookie bound to the transaction ([`pending`]) and sends the browser upstream
//!   (RFC 6749 §4.1.1) with `303 See Other`.
//! - `GET /login/callback/<name>` (the redirect URI registered upstream): the upstream's answer
//!   (RFC 6749 §4.1.2). The core checks, before the upstream sees anything:
//!   - `state` belongs to a sign-in this browser started (its cookie exists and opens), equals the
//!     remembered one (constant time), and the transaction is live, held by this browser (binding
//!     cookie) and not yet signed in: a tampered, foreign or replayed `state` is refused;
//!   - the answer came to the callback of the upstream the sign-in went to (mix-up defence with a
//!     distinct redirect URI per upstream, RFC 9700 §4.4.2); the upstream checks RFC 9207 `iss`;
//!   - an `error` answer (RFC 6749 §4.1.2.1) ends on our own error page: an upstream's answer
//!     never becomes a redirect to the MCP client (its redirect URI is only ever used by the
//!     consent step, as for a password sign-in).
//!
//!   Then the upstream redeems the code and validates what it gets ([`UpstreamOutcome`]); the user
//!   it answers continues to consent exactly as after a password, and the tokens the client gets
//!   are ours: upstream tokens never leave the upstream (MCP forbids token passthrough).
//!
//! What an upstream tells us about the user is kept to judge them again at every refresh
//! ([`facts`]). Every refusal is a page that says what happened; the pending cookie is cleared on
//! every answer.

pub mod facts;
pub mod pending;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{
    ProviderError, UpstreamAuthenticator, UpstreamLogin, UpstreamOutcome, UpstreamResponse,
};
use std::sync::Arc;

use crate::error::AuthorizeError;
use crate::oauth::authorize::error_response;
use crate::oauth::login;
use crate::oauth::login_throttle::CHECK_TIMEOUT;
use crate::oauth::params::Params;
use crate::oauth::pkce::s256_challenge;
use crate::oauth::secrets::{constant_time_eq, new_secret};
use crate::state::AppState;
use pending::Pending;

/// Our callback for the upstream `name`: the redirect URI to register there.
pub fn callback_url(state: &AppState, name: &str) -> String {
    state.endpoint(&format!("/login/callback/{name}"))
}

/// The configured upstream called `name`.
pub fn find(state: &AppState, name: &str) -> Option<Arc<dyn UpstreamAuthenticator>> {
    state
        .provider
        .authenticator()
        .upstreams()
        .into_iter()
        .find(|u| u.name() == name)
}

fn page(
    status: StatusCode,
    title: &'static str,
    message: impl Into<std::borrow::Cow<'static, str>>,
) -> AuthorizeError {
    AuthorizeError::page(status, title, message)
}

fn unknown_upstream() -> AuthorizeError {
    page(
        StatusCode::NOT_FOUND,
        "Unknown sign-in method",
        "This server does not offer that identity provider.",
    )
}

fn not_recognised() -> AuthorizeError {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in answer not recognised",
        "This answer from the identity provider does not belong to a sign-in started in this \
         browser, or it was already used. Return to the application and start again.",
    )
}

fn unreachable() -> AuthorizeError {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Identity provider unavailable",
        "The identity provider cannot be reached right now. Please try again in a moment.",
    )
}

/// `POST /login/upstream/<name>`: form `tx`, `csrf_token`.
pub async fn start_post(
    State(state): State<AppState>,
    Path(name): Path<String>,
    req: Request,
) -> Response {
    match start(&state, &name, req).await {
        Ok(r) => r,
        Err(e) => error_response(&state, e),
    }
}

async fn start(state: &AppState, name: &str, req: Request) -> Result<Response, AuthorizeError> {
    let (headers, params) = login::read_form(req).await?;
    let l = login::load(
        state,
        &headers,
        login::field(&params, "tx")?,
        Some(login::field(&params, "csrf_token")?),
    )
    .await?;
    let upstream = find(state, name).ok_or_else(unknown_upstream)?;
    let pending = Pending {
        tx: l.tx_id.clone(),
        upstream: name.to_string(),
        state: new_secret(),
        nonce: new_secret(),
        verifier: new_secret(),
        expires_at: l.tx.expires_at,
    };
    let login = upstream_login(state, &pending);
    let url = tokio::time::timeout(CHECK_TIMEOUT, upstream.authorization_url(&login))
        .await
        .unwrap_or_else(|_| Err(ProviderError::unavailable_msg("the upstream took too long")))
        .map_err(|err| {
            tracing::warn!(upstream = %name, error = %err, "starting an upstream sign-in failed");
            if err.is_unavailable() {
                unreachable()
            } else {
                login::storage_page(err)
            }
        })?;
    let max_age = l.tx.expires_at - crate::state::now();
    let cookie = pending::set_cookie(state, &pending, max_age).map_err(|err| {
        tracing::error!(error = %err, "sealing the upstream sign-in failed");
        login::storage_page(ProviderError::backend_msg("sealing the sign-in failed"))
    })?;
    let location = HeaderValue::from_str(&url).map_err(|_| {
        tracing::error!(upstream = %name, "the upstream's authorization URL is not a header value");
        login::storage_page(ProviderError::backend_msg("bad upstream URL"))
    })?;
    tracing::info!(upstream = %name, client_id = %l.client.client_id, "upstream sign-in started");
    Ok((
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::SET_COOKIE, cookie),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

fn upstream_login(state: &AppState, p: &Pending) -> UpstreamLogin {
    UpstreamLogin {
        state: p.state.clone(),
        nonce: p.nonce.clone(),
        pkce_challenge: s256_challenge(&p.verifier),
        pkce_verifier: p.verifier.clone(),
        redirect_uri: callback_url(state, &p.upstream),
    }
}

/// `GET /login/callback/<name>`: the upstream's answer.
pub async fn callback_get(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let upstream_state = params.get("state").ok().flatten().map(str::to_string);
    let mut response = match callback(&state, &name, &headers, &params).await {
        Ok(r) => r,
        Err(e) => error_response(&state, e),
    };
    // Whatever happened, this sign-in's cookie has done its job.
    if let Some(clear) = upstream_state
        .as_deref()
        .and_then(|s| pending::clear_cookie(&state, s))
    {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

async fn callback(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, AuthorizeError> {
    if params.first_duplicate().is_some() {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Invalid sign-in answer",
            "The identity provider's answer repeats a parameter.",
        ));
    }
    let upstream_state = params
        .get("state")
        .ok()
        .flatten()
        .ok_or_else(not_recognised)?;
    let pending = pending::presented(state, headers, upstream_state).ok_or_else(not_recognised)?;
    if !constant_time_eq(upstream_state, &pending.state) {
        return Err(not_recognised());
    }
    // The transaction, held by this browser (binding cookie), and not signed in yet (a replayed
    // answer finds it signed in, or gone after consent).
    let l = login::load(state, headers, Some(&pending.tx), None).await?;
    let client_id = l.client.client_id.clone();
    if l.tx.user.is_some() {
        tracing::warn!(upstream = %name, %client_id, "upstream answer replayed");
        return Err(not_recognised().for_client(&client_id));
    }
    // Mix-up: the answer must arrive at the callback of the upstream this sign-in went to.
    if name != pending.upstream {
        tracing::warn!(upstream = %name, started = %pending.upstream, %client_id, "upstream answer at another upstream's callback");
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Answer from the wrong identity provider",
            "This sign-in was started with another identity provider than the one that answered. \
             Return to the application and start again.",
        )
        .for_client(&client_id));
    }
    let upstream = find(state, name).ok_or_else(unknown_upstream)?;
    if let Some(error) = params.get("error").ok().flatten() {
        let error = error_code_shown(error);
        tracing::info!(upstream = %name, %client_id, error = %error, "upstream refused the sign-in");
        return Err(page(
            StatusCode::FORBIDDEN,
            "Sign-in refused by the identity provider",
            format!(
                "The identity provider did not sign you in ({error}). Return to the application \
                 and start again."
            ),
        )
        .for_client(&client_id));
    }
    let response = UpstreamResponse {
        params: params
            .pairs()
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let login = upstream_login(state, &pending);
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, upstream.finish(&login, &response))
        .await
        .unwrap_or_else(|_| Err(ProviderError::unavailable_msg("the upstream took too long")));
    let (user, facts) = match outcome {
        Ok(UpstreamOutcome::Authenticated(user)) => (user, None),
        Ok(UpstreamOutcome::AuthenticatedWithFacts { user, facts }) => (user, Some(facts)),
        Ok(UpstreamOutcome::Refused { reason }) => {
            tracing::warn!(upstream = %name, %client_id, reason = %reason, "upstream sign-in refused");
            state.observability.metrics.sign_in_failed();
            return Err(
                page(StatusCode::FORBIDDEN, "Sign-in refused", reason).for_client(&client_id)
            );
        }
        Err(err) if err.is_unavailable() => {
            tracing::warn!(upstream = %name, error = %err, "upstream unavailable during sign-in");
            return Err(unreachable().for_client(&client_id));
        }
        Err(err) => {
            tracing::warn!(upstream = %name, error = %err, "upstream sign-in failed");
            return Err(login::storage_page(err).for_client(&client_id));
        }
    };
    // Its users are `<name>:…`: how a refresh finds who to ask (see `facts`).
    if !user
        .subject
        .strip_prefix(name)
        .is_some_and(|rest| rest.starts_with(':'))
    {
        tracing::error!(upstream = %name, subject = %user.subject, "an upstream answered a subject without its `<name>:` prefix");
        return Err(login::storage_page(ProviderError::backend_msg(
            "the upstream answered a subject outside its namespace",
        ))
        .for_client(&client_id));
    }
    if let Some(facts) = facts
        && let Err(err) = facts::remember(state, name, &user.subject, facts).await
    {
        tracing::warn!(upstream = %name, error = %err, "keeping the upstream user's facts failed");
        return Err(login::storage_page(err).for_client(&client_id));
    }
    tracing::info!(upstream = %name, subject = %user.subject, %client_id, "signed in through an upstream");
    login::signed_in(state, &l, user).await
}

/// An upstream's `error` as shown on our page: the codes RFC 6749 §4.1.2.1 defines and extensions
/// use are words of letters, digits, `_`, `-` and `.`; anything else, or a long one, is shown as a
/// generic phrase (the page escapes it anyway, but an upstream's text is not ours to show).
fn error_code_shown(error: &str) -> String {
    let plain = !error.is_empty()
        && error.len() <= 64
        && error
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        error.to_string()
    } else {
        "an unreadable error".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_error_codes_are_shown() {
        assert_eq!(error_code_shown("access_denied"), "access_denied");
        assert_eq!(error_code_shown("a\"b"), "an unreadable error");
        assert_eq!(error_code_shown(&"x".repeat(65)), "an unreadable error");
        assert_eq!(error_code_shown("é"), "an unreadable error");
        assert_eq!(error_code_shown("<b>"), "an unreadable error");
        assert_eq!(error_code_shown("a b"), "an unreadable error");
    }
}
