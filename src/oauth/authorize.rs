//! `GET|POST /authorize`: the authorization endpoint (OAuth 2.1 §4.1.1, RFC 6749 §4.1.1).
//!
//! Checks, in the order that decides where an error may go (RFC 6749 §4.1.2.1; MCP-AUTH §5.1):
//! 1. `client_id` names a registered client (or is the URL of a client metadata document, see
//!    [`crate::oauth::cimd`]) and `redirect_uri` matches one of its registered URIs
//!    (exact, loopback port-agnostic per RFC 8252 §7.3). Otherwise an error *page*: the server never
//!    redirects to an unverified URI (OAuth 2.1 §7.12.2).
//! 2. Everything else is answered by redirect with `error`, `error_description`, `state` and `iss`
//!    — for a client no user approved and no administrator created, on a page with a link instead
//!    (RFC 9700 §4.11.2) —
//!    (RFC 9207 §2): `response_type=code` only; PKCE with `code_challenge_method=S256` required and
//!    `plain` refused (RFC 7636 §4.3, OAuth 2.1 §4.1.1); `resource` must be a declared resource
//!    (RFC 8707 §2, `invalid_target`); requested scopes must be offered by that resource
//!    (`invalid_scope`) — a client's registered `scope` is only its default here, so MCP step-up
//!    works; the user's consent and the user's own limits decide; repeated parameters are `invalid_request` (RFC 6749 §3.1).
//!
//! A valid request becomes a server-side login transaction with its own random id (never the
//! client's `state`) and a short expiry, bound to the browser by a cookie; the browser is sent to
//! `/login`.

use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{GrantType, LoginTransaction};

use crate::error::{AuthorizeError, ErrorCode, OAuthError};
use crate::oauth::browser_binding;
use crate::oauth::cimd::{LookupError, find_client};
use crate::oauth::pages::ErrorInfo;
use crate::oauth::params::{Params, is_form, read_body};
use crate::oauth::pkce::is_valid_s256_challenge;
use crate::oauth::redirect_uri::{find_match, with_params};
use crate::oauth::resources::{ClientScope, select_scopes};
use crate::oauth::secrets::{hash_secret, new_secret};
use crate::state::{AppState, now};

pub async fn authorize_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    respond(&state, authorize(&state, &headers, &params).await)
}

pub async fn authorize_post(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    if !is_form(&headers) {
        return error_response(
            &state,
            AuthorizeError::page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The authorization request must be a form post.",
            ),
        );
    }
    let params = match read_body(req, &()).await {
        Ok(body) => Params::parse(&body),
        Err(_) => {
            return error_response(
                &state,
                AuthorizeError::page(
                    StatusCode::BAD_REQUEST,
                    "Invalid request",
                    "The authorization request could not be read.",
                ),
            );
        }
    };
    respond(&state, authorize(&state, &headers, &params).await)
}

fn respond(state: &AppState, result: Result<Response, AuthorizeError>) -> Response {
    result.unwrap_or_else(|e| error_response(state, e))
}

/// Turns an [`AuthorizeError`] into a page or a redirect.
pub fn error_response(state: &AppState, err: AuthorizeError) -> Response {
    match err {
        AuthorizeError::Page {
            status,
            title,
            message,
            code,
            client_id,
        } => {
            let info = ErrorInfo {
                code: code.map_or(ErrorInfo::for_status(status).code, ErrorCode::as_str),
                client_id: client_id.as_deref(),
            };
            state.pages.error_for(status, title, &message, info)
        }
        AuthorizeError::Redirect {
            redirect_uri,
            state: client_state,
            error,
        } => redirect(&error_redirect_uri(
            state,
            &redirect_uri,
            client_state.as_deref(),
            &error,
        )),
        AuthorizeError::Held {
            redirect_uri,
            state: client_state,
            error,
            client_id,
        } => {
            let link = error_redirect_uri(state, &redirect_uri, client_state.as_deref(), &error);
            let host = url::Url::parse(&redirect_uri)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| redirect_uri.clone());
            state.pages.error_with_link(
                StatusCode::BAD_REQUEST,
                "Invalid authorization request",
                &error.description,
                &link,
                &host,
                ErrorInfo {
                    code: error.code.as_str(),
                    client_id: client_id.as_deref(),
                },
            )
        }
    }
}

/// The redirect URI carrying an error response (RFC 6749 §4.1.2.1, with `iss` per RFC 9207).
fn error_redirect_uri(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    error: &OAuthError,
) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("error", error.code.as_str()),
        ("error_description", &error.description),
    ];
    if let Some(s) = client_state {
        params.push(("state", s));
    }
    params.push(("iss", &state.issuer));
    with_params(redirect_uri, &params)
}

/// A 302 with `Cache-Control: no-store`.
pub fn redirect(location: &str) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn page_error(msg: &'static str) -> AuthorizeError {
    AuthorizeError::page(
        StatusCode::BAD_REQUEST,
        "Invalid authorization request",
        msg,
    )
}

async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, AuthorizeError> {
    // --- Step 0: sizes, before any lookup; never echoed to a redirect URI ([limits]). ---
    let l = &state.limits;
    if let Some(why) = params.oversize(l.max_state_bytes, l.max_parameter_bytes, l.max_query_bytes)
    {
        return Err(AuthorizeError::page(
            StatusCode::BAD_REQUEST,
            "Request too large",
            why,
        ));
    }
    // --- Step 1: identify the client and the redirect URI. Errors here are pages. ---
    let client_id = params
        .get("client_id")
        .map_err(|_| page_error("The client_id parameter is repeated."))?
        .ok_or_else(|| page_error("The request has no client_id."))?;
    let page_error = |msg: &'static str| page_error(msg).for_client(client_id);
    // A client id that is an https URL names a client metadata document (fetched, validated and
    // cached by `cimd`); its failures are pages too (MCP: invalid_client / invalid_request).
    let found = find_client(state, client_id)
        .await
        .map_err(|e| match e {
            LookupError::Document(e) => e.page().for_client(client_id),
            LookupError::Storage(e) => {
                let e = OAuthError::from(e);
                AuthorizeError::page(e.code.status(), "Authorization unavailable", e.description)
                    .with_code(e.code)
                    .for_client(client_id)
            }
        })?
        .ok_or_else(|| {
            page_error("The application that sent you here is not registered with this server.")
                .with_code(ErrorCode::InvalidClient)
        })?;
    let is_document = found.document().is_some();
    let client = found.into_client();
    let requested_redirect = params
        .get("redirect_uri")
        .map_err(|_| page_error("The redirect_uri parameter is repeated."))?;
    let (redirect_uri, redirect_uri_explicit) = match requested_redirect {
        Some(uri) => match find_match(&client.redirect_uris, uri) {
            // Use the URI as requested (it may differ from the registered one in the loopback port).
            Some(_) => (uri.to_string(), true),
            // MCP: the redirect URI MUST be one of the document's.
            None if is_document => {
                return Err(page_error(
                    "invalid_request: the redirect_uri is not listed in the application's client \
                     metadata document.",
                ));
            }
            None => {
                return Err(page_error(
                    "The redirect_uri is not registered for this application.",
                ));
            }
        },
        // OAuth 2.1 §4.1.1: redirect_uri may be omitted when exactly one is registered.
        None => match client.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            _ => {
                return Err(page_error(
                    "The request has no redirect_uri and the application registered several.",
                ));
            }
        },
    };

    // --- Step 2: the redirect target is registered; errors go back to the client, but only
    // automatically when the client is trusted (approved by a user, or not anonymous): otherwise
    // a page shows the error and links to the client (RFC 9700 §4.11.2). ---
    let trusted = client.redirects_are_trusted();
    let client_state = match params.get("state") {
        Ok(s) => s.map(str::to_string),
        Err(_) => None,
    };
    let fail = |error: OAuthError| {
        if trusted {
            AuthorizeError::Redirect {
                redirect_uri: redirect_uri.clone(),
                state: client_state.clone(),
                error,
            }
        } else {
            AuthorizeError::Held {
                redirect_uri: redirect_uri.clone(),
                state: client_state.clone(),
                error,
                client_id: Some(client.client_id.clone()),
            }
        }
    };
    if params.get("state").is_err() {
        return Err(fail(OAuthError::invalid_request(
            "parameter repeated: state",
        )));
    }
    let single = |name: &str| params.single(name).map_err(&fail);

    match single("response_type")? {
        None => {
            return Err(fail(OAuthError::invalid_request(
                "missing parameter: response_type",
            )));
        }
        Some("code") => {}
        Some(_) => {
            return Err(fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            )));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client is not registered for the authorization_code grant",
        )));
    }
    let challenge = single("code_challenge")?.ok_or_else(|| {
        fail(OAuthError::invalid_request(
            "code_challenge is required (PKCE, S256)",
        ))
    })?;
    match single("code_challenge_method")? {
        Some("S256") => {}
        Some("plain") => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method plain is not allowed; use S256",
            )));
        }
        Some(_) => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method must be S256",
            )));
        }
        None => {
            return Err(fail(OAuthError::invalid_request(
                "code_challenge_method is required and must be S256",
            )));
        }
    }
    if !is_valid_s256_challenge(challenge) {
        return Err(fail(OAuthError::invalid_request(
            "code_challenge is not a base64url SHA-256 value",
        )));
    }
    let resource = state
        .resources
        .resolve(single("resource")?)
        .map_err(&fail)?;

    let scopes = select_scopes(
        resource,
        client.scope.as_deref(),
        single("scope")?,
        ClientScope::Default,
    )
    .map_err(&fail)?;

    // --- Step 3: start the login transaction. ---
    let t = now();
    let tx_id = new_secret();
    let (binding, set_cookie) = browser_binding::issue(state, headers);
    let tx = LoginTransaction {
        id_hash: hash_secret(&tx_id),
        browser_binding_hash: hash_secret(&binding),
        csrf_token: new_secret(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        redirect_uri_explicit,
        state: client_state.clone(),
        code_challenge: challenge.to_string(),
        scopes,
        resource: resource.uri.clone(),
        user: None,
        created_at: t,
        expires_at: t + state.login_ttl,
    };
    state
        .provider
        .interactions()
        .insert_transaction(tx)
        .await
        .map_err(|e| fail(e.into()))?;
    let mut resp = redirect(&format!("/login?tx={tx_id}"));
    resp.headers_mut().append(header::SET_COOKIE, set_cookie);
    Ok(resp)
}
