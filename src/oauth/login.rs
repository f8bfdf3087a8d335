//! The login and consent steps of an authorization (OAuth 2.1 §4.1.1 leaves user authentication to the
//! server; MCP security best practices, *Confused Deputy*, say how consent must look).
//!
//! - `GET /login?tx=…` renders the sign-in form (when the authenticator takes passwords) and one
//!   button per upstream identity provider (their flow is [`crate::oauth::upstream`], which joins
//!   this one at `signed_in`); `POST /login` checks the credentials.
//! - Then the consent page names the client, its redirect host, the resource and the scopes;
//!   `POST /consent` approves (a code is issued, RFC 6749 §4.1.2, with `iss` per RFC 9207) or denies
//!   (`access_denied`). Consent may be remembered per user + client + resource (RFC 8707) for
//!   `[login] consent_ttl`; it is never reused for another resource and is forgotten with the
//!   user's grants. The first approval marks the client approved (RFC 9700 §4.11.2: only then may
//!   `/authorize` redirect its errors without a page).
//!
//! Every form carries the transaction's CSRF token and must come from the browser holding the
//! transaction's binding cookie. A wrong password re-renders the form with one generic message,
//! whether or not the user exists.
//!
//! Before a password is checked, the sign-in takes a slot for its client address (a few in flight
//! per address, so one address cannot fill the hashing queue) and then the sign-in throttle's limit
//! ([`crate::oauth::login_throttle`]: per username and address, a capped back-off per username,
//! one check per username at a time; OWASP Authentication Cheat Sheet "Login Throttling", NIST SP
//! 800-63B §5.2.2). A refusal is a 429 page with `Retry-After` and the same words for every
//! username, existing or not.

use std::net::IpAddr;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mcp_oauth_provider::{
    AuthOutcome, AuthenticatedUser, AuthorizationCode, Client, ClientOrigin, ConsentRecord,
    LoginTransaction, ProviderError,
};
use serde::Deserialize;

use crate::error::{AuthorizeError, ErrorCode, OAuthError};
use crate::oauth::authorize::{error_response, redirect};
use crate::oauth::browser_binding;
use crate::oauth::cimd::{LookupError, find_client};
use crate::oauth::client_address::ClientAddr;
use crate::oauth::login_throttle::{Admission, CHECK_TIMEOUT, MAX_USERNAME_BYTES};
use crate::oauth::params::{Params, is_form, read_body};
use crate::oauth::policy;
use crate::oauth::redirect_uri::with_params;
use crate::oauth::secrets::{constant_time_eq, hash_secret, new_secret, secret_matches};
use crate::observability::metrics::SignInRefusal;
use crate::state::{AppState, now};

const BAD_CREDENTIALS: &str = "Invalid username or password.";
const TOO_MANY_ATTEMPTS: &str =
    "Too many failed sign-in attempts for this username. Please wait a little and try again.";
const TOO_MANY_AT_ONCE: &str =
    "Too many sign-ins from your network at once. Please wait a moment and try again.";
const DIRECTORY_DOWN: &str = "Sign-in is temporarily unavailable. Please try again in a moment.";

#[derive(Deserialize)]
pub struct LoginQuery {
    tx: Option<String>,
}

fn page(status: StatusCode, title: &'static str, msg: &'static str) -> AuthorizeError {
    AuthorizeError::page(status, title, msg)
}

fn expired() -> AuthorizeError {
    page(
        StatusCode::BAD_REQUEST,
        "Sign-in request expired",
        "This sign-in request has expired or was already used. Return to the application and start again.",
    )
}

fn unverified() -> AuthorizeError {
    page(
        StatusCode::FORBIDDEN,
        "Request not verified",
        "This form could not be verified. Return to the application and start again in the same browser.",
    )
}

pub(crate) fn storage_page(err: ProviderError) -> AuthorizeError {
    let e = OAuthError::from(err);
    AuthorizeError::page(e.code.status(), "Temporarily unavailable", e.description)
        .with_code(e.code)
}

/// A live transaction and its client.
pub(crate) struct Loaded {
    pub(crate) tx_id: String,
    pub(crate) tx: LoginTransaction,
    pub(crate) client: Client,
    /// Set when the client is a client metadata document.
    document: Option<DocumentShown>,
}

/// What consent shows of a document client (MCP: the client id URL's host prominently; a warning
/// when every redirect URI is a loopback one, since any local program can receive those).
struct DocumentShown {
    host: String,
    loopback_only: bool,
}

/// Whether a login transaction ending at `expires_at` is still usable at `t`: up to, not including,
/// its last second (`[login] transaction_ttl` after `/authorize`).
fn is_live(expires_at: i64, t: i64) -> bool {
    expires_at > t
}

/// Loads the transaction `tx_id` and checks the browser binding (and, for posts, the CSRF token).
pub(crate) async fn load(
    state: &AppState,
    headers: &HeaderMap,
    tx_id: Option<&str>,
    csrf: Option<Option<&str>>,
) -> Result<Loaded, AuthorizeError> {
    let tx_id = tx_id.ok_or_else(expired)?;
    let tx = state
        .provider
        .interactions()
        .get_transaction(&hash_secret(tx_id))
        .await
        .map_err(storage_page)?
        .filter(|tx| is_live(tx.expires_at, now()))
        .ok_or_else(expired)?;
    let unverified = || unverified().for_client(&tx.client_id);
    let binding = browser_binding::presented(state, headers).ok_or_else(unverified)?;
    if !secret_matches(&binding, &tx.browser_binding_hash) {
        return Err(unverified());
    }
    if let Some(csrf) = csrf {
        match csrf {
            Some(token) if constant_time_eq(token, &tx.csrf_token) => {}
            _ => return Err(unverified()),
        }
    }
    let found = find_client(state, &tx.client_id)
        .await
        .map_err(|e| match e {
            LookupError::Document(e) => e.page().for_client(&tx.client_id),
            LookupError::Storage(e) => storage_page(e).for_client(&tx.client_id),
        })?
        .ok_or_else(|| {
            page(
                StatusCode::BAD_REQUEST,
                "Unknown application",
                "The application is no longer registered.",
            )
            .with_code(ErrorCode::InvalidClient)
            .for_client(&tx.client_id)
        })?;
    let document = found.document().map(|d| DocumentShown {
        host: redirect_host(&d.client.client_id),
        loopback_only: d.loopback_only(),
    });
    Ok(Loaded {
        tx_id: tx_id.to_string(),
        tx,
        client: found.into_client(),
        document,
    })
}

/// Reads a posted HTML form; anything else is an error page.
pub(crate) async fn read_form(req: Request) -> Result<(HeaderMap, Params), AuthorizeError> {
    let headers = req.headers().clone();
    if !is_form(&headers) {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The form was not submitted correctly.",
        ));
    }
    let body = read_body(req, &()).await.map_err(|_| {
        page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The form could not be read.",
        )
    })?;
    Ok((headers, Params::parse(&body)))
}

pub(crate) fn field<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, AuthorizeError> {
    params.get(name).map_err(|_| {
        page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "A form field was repeated.",
        )
    })
}

fn redirect_host(uri: &str) -> String {
    url::Url::parse(uri)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_else(|| uri.to_string())
}

fn client_label(client: &Client) -> String {
    client
        .client_name
        .clone()
        .unwrap_or_else(|| client.client_id.clone())
}

/// A client that registered itself (RFC 7591) chose its own name: the pages mark it unverified.
fn is_unverified(client: &Client) -> bool {
    client.origin == ClientOrigin::Registration
}

fn resource_name(state: &AppState, uri: &str) -> String {
    state
        .resources
        .all()
        .iter()
        .find(|r| r.uri == uri)
        .map(|r| r.name.clone())
        .unwrap_or_else(|| uri.to_string())
}

fn render_login(
    state: &AppState,
    l: &Loaded,
    status: StatusCode,
    error: Option<&str>,
    username: &str,
) -> Response {
    state.pages.render(
        status,
        "login.html",
        minijinja::context! {
            action => "/login",
            tx => l.tx_id.clone(),
            csrf_token => l.tx.csrf_token.clone(),
            client_name => client_label(&l.client),
            unverified => is_unverified(&l.client),
            resource_name => resource_name(state, &l.tx.resource),
            redirect_host => redirect_host(&l.tx.redirect_uri),
            error => error,
            username => username,
            password_form => state.provider.authenticator().accepts_passwords(),
            upstreams => upstream_buttons(state),
        },
    )
}

fn render_consent(
    state: &AppState,
    l: &Loaded,
    user: &AuthenticatedUser,
    scopes: &[String],
) -> Response {
    state.pages.render(
        StatusCode::OK,
        "consent.html",
        minijinja::context! {
            action => "/consent",
            tx => l.tx_id.clone(),
            csrf_token => l.tx.csrf_token.clone(),
            username => user.display_name.clone().unwrap_or_else(|| user.username.clone()),
            client_name => client_label(&l.client),
            client_id => l.client.client_id.clone(),
            unverified => is_unverified(&l.client),
            resource_name => resource_name(state, &l.tx.resource),
            resource_uri => l.tx.resource.clone(),
            redirect_host => redirect_host(&l.tx.redirect_uri),
            document_host => l.document.as_ref().map(|d| d.host.clone()),
            loopback_only => l.document.as_ref().is_some_and(|d| d.loopback_only),
            scopes => state.pages.describe_scopes(&l.tx.resource, scopes),
            allow_remember => state.allow_remember_consent,
        },
    )
}

/// A 429 page with `Retry-After` (RFC 9110 §10.2.3) in whole seconds.
fn too_many(mut page: Response, retry_after: i64) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(&retry_after.max(1).to_string()) {
        page.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, v);
    }
    page
}

/// The login page's upstream buttons: where each posts and what it says.
fn upstream_buttons(state: &AppState) -> Vec<minijinja::Value> {
    state
        .provider
        .authenticator()
        .upstreams()
        .iter()
        .map(|u| {
            minijinja::context! {
                action => format!("/login/upstream/{}", u.name()),
                label => u.label().to_string(),
            }
        })
        .collect()
}

/// `GET /login?tx=…`.
pub async fn login_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let tx = query.ok().and_then(|Query(q)| q.tx);
    match load(&state, &headers, tx.as_deref(), None).await {
        Ok(l) => render_login(&state, &l, StatusCode::OK, None, ""),
        Err(e) => error_response(&state, e),
    }
}

/// `POST /login`: form `tx`, `csrf_token`, `username`, `password`.
pub async fn login_post(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    req: Request,
) -> Response {
    match login(&state, client, req).await {
        Ok(r) => r,
        Err(e) => error_response(&state, e),
    }
}

async fn login(state: &AppState, client: IpAddr, req: Request) -> Result<Response, AuthorizeError> {
    let (headers, params) = read_form(req).await?;
    let l = load(
        state,
        &headers,
        field(&params, "tx")?,
        Some(field(&params, "csrf_token")?),
    )
    .await?;
    let username = field(&params, "username")?.unwrap_or("").trim().to_string();
    let password = field(&params, "password")?.unwrap_or("");
    // Nothing to check (and nothing any directory could hold): the generic answer, not counted.
    if username.is_empty() || password.is_empty() || username.len() > MAX_USERNAME_BYTES {
        return Ok(render_login(
            state,
            &l,
            StatusCode::OK,
            Some(BAD_CREDENTIALS),
            &username,
        ));
    }
    // A fair share of the hashing pool: one address has at most a few sign-ins in flight.
    let Some(_slot) = state.sign_in_gate.try_enter(client) else {
        tracing::warn!(client_id = %l.client.client_id, %client, username = ?username, "sign-in refused: too many at once from one address");
        state
            .observability
            .metrics
            .sign_in_refused(SignInRefusal::TooManyAtOnce);
        return Ok(too_many(
            render_login(
                state,
                &l,
                StatusCode::TOO_MANY_REQUESTS,
                Some(TOO_MANY_AT_ONCE),
                &username,
            ),
            1,
        ));
    };
    // The limit is taken before the password is checked (login_throttle).
    let attempt = match state.login_throttle.begin(state, &username, client).await {
        Ok(Admission::Admitted(attempt)) => attempt,
        Ok(Admission::Refused { retry_after }) => {
            tracing::warn!(client_id = %l.client.client_id, %client, username = ?username, "sign-in refused: too many failed attempts");
            state
                .observability
                .metrics
                .sign_in_refused(SignInRefusal::TooManyAttempts);
            return Ok(too_many(
                render_login(
                    state,
                    &l,
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(TOO_MANY_ATTEMPTS),
                    &username,
                ),
                retry_after,
            ));
        }
        Err(err) => {
            // Fail closed: without the throttle's store no password is checked.
            tracing::warn!(error = %err, "sign-in throttle unavailable");
            return Ok(render_login(
                state,
                &l,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(DIRECTORY_DOWN),
                &username,
            ));
        }
    };
    let checked = tokio::time::timeout(
        CHECK_TIMEOUT,
        state
            .provider
            .authenticator()
            .authenticate(&username, password),
    )
    .await
    .unwrap_or_else(|_| {
        Err(ProviderError::unavailable_msg(
            "the sign-in check took too long",
        ))
    });
    attempt
        .finish(matches!(checked, Ok(AuthOutcome::Authenticated(_))))
        .await;
    let user = match checked {
        Ok(AuthOutcome::Authenticated(user)) => user,
        Ok(AuthOutcome::Rejected) => {
            // The username is logged quoted and escaped (it is typed by anyone); never the password.
            tracing::info!(client_id = %l.client.client_id, %client, username = ?username, "failed sign-in");
            state.observability.metrics.sign_in_failed();
            return Ok(render_login(
                state,
                &l,
                StatusCode::OK,
                Some(BAD_CREDENTIALS),
                &username,
            ));
        }
        Err(err) if err.is_unavailable() => {
            tracing::warn!(error = %err, "user directory unavailable during sign-in");
            return Ok(render_login(
                state,
                &l,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(DIRECTORY_DOWN),
                &username,
            ));
        }
        Err(err) => return Err(storage_page(err)),
    };
    tracing::info!(subject = %user.subject, client_id = %l.client.client_id, "signed in");
    signed_in(state, &l, user).await
}

/// After a sign-in (a password or an upstream): records the user on the transaction, then asks for
/// consent, or finishes at once when a remembered consent covers the scopes.
pub(crate) async fn signed_in(
    state: &AppState,
    l: &Loaded,
    user: AuthenticatedUser,
) -> Result<Response, AuthorizeError> {
    let scopes =
        policy::grantable_scopes(state.provider.policy(), &user, &l.client, &l.tx.scopes).await;
    if !state
        .provider
        .interactions()
        .set_transaction_user(&l.tx.id_hash, user.clone())
        .await
        .map_err(storage_page)?
    {
        return Err(expired());
    }
    let remembered = state
        .provider
        .interactions()
        .get_consent(&user.subject, &l.client.client_id, &l.tx.resource, now())
        .await
        .map_err(storage_page)?;
    if remembered.is_some_and(|c| scopes.iter().all(|s| c.scopes.contains(s))) {
        return finish(state, &l.tx.id_hash, true, false).await;
    }
    Ok(render_consent(state, l, &user, &scopes))
}

/// `POST /consent`: form `tx`, `csrf_token`, `decision` (`approve` | `deny`), optional `remember`.
pub async fn consent_post(State(state): State<AppState>, req: Request) -> Response {
    match consent(&state, req).await {
        Ok(r) => r,
        Err(e) => error_response(&state, e),
    }
}

async fn consent(state: &AppState, req: Request) -> Result<Response, AuthorizeError> {
    let (headers, params) = read_form(req).await?;
    let l = load(
        state,
        &headers,
        field(&params, "tx")?,
        Some(field(&params, "csrf_token")?),
    )
    .await?;
    if l.tx.user.is_none() {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Not signed in",
            "Sign in before answering the consent question.",
        )
        .for_client(&l.client.client_id));
    }
    let approve = match field(&params, "decision")? {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "Choose Allow or Deny.",
            )
            .for_client(&l.client.client_id));
        }
    };
    let remember = state.allow_remember_consent && field(&params, "remember")?.is_some();
    finish(state, &l.tx.id_hash, approve, remember).await
}

/// Ends the transaction (exactly once): issues a code and redirects, or redirects `access_denied`.
async fn finish(
    state: &AppState,
    tx_hash: &mcp_oauth_provider::SecretHash,
    approve: bool,
    remember: bool,
) -> Result<Response, AuthorizeError> {
    let tx = state
        .provider
        .interactions()
        .take_transaction(tx_hash)
        .await
        .map_err(storage_page)?
        .filter(|tx| is_live(tx.expires_at, now()))
        .ok_or_else(expired)?;
    let Some(user) = tx.user.clone() else {
        return Err(expired());
    };
    let fail = |error: OAuthError| AuthorizeError::Redirect {
        redirect_uri: tx.redirect_uri.clone(),
        state: tx.state.clone(),
        error,
    };
    if !approve {
        tracing::info!(subject = %user.subject, client_id = %tx.client_id, "consent denied");
        return Err(fail(OAuthError::new(
            crate::error::ErrorCode::AccessDenied,
            "the user denied the request",
        )));
    }
    let found = find_client(state, &tx.client_id)
        .await
        .map_err(|e| fail(e.oauth()))?
        .ok_or_else(|| {
            fail(OAuthError::new(
                crate::error::ErrorCode::UnauthorizedClient,
                "the client is no longer registered",
            ))
        })?;
    let is_document = found.document().is_some();
    let client = found.into_client();
    let scopes =
        policy::grantable_scopes(state.provider.policy(), &user, &client, &tx.scopes).await;
    let t = now();
    if remember {
        let consent = ConsentRecord {
            subject: user.subject.clone(),
            client_id: client.client_id.clone(),
            resource: tx.resource.clone(),
            scopes: scopes.clone(),
            granted_at: t,
            expires_at: t.saturating_add(state.consent_ttl),
        };
        state
            .provider
            .interactions()
            .remember_consent(consent)
            .await
            .map_err(|e| fail(e.into()))?;
    }
    let lifetimes = policy::token_lifetimes(state.provider.policy(), &client, state.lifetimes);
    let code = new_secret();
    let record = AuthorizationCode {
        code_hash: hash_secret(&code),
        family_id: uuid::Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        subject: user.subject.clone(),
        redirect_uri: tx.redirect_uri.clone(),
        redirect_uri_explicit: tx.redirect_uri_explicit,
        code_challenge: tx.code_challenge.clone(),
        scopes,
        resource: tx.resource.clone(),
        issued_at: t,
        expires_at: t + lifetimes.code,
    };
    state
        .provider
        .tokens()
        .insert_code(record)
        .await
        .map_err(|e| fail(e.into()))?;
    // A document client has no stored record to mark; its redirects stay held behind a page.
    if client.approved_at.is_none() && !is_document {
        state
            .provider
            .clients()
            .mark_client_approved(&client.client_id, t)
            .await
            .map_err(|e| fail(e.into()))?;
    }
    tracing::info!(subject = %user.subject, client_id = %client.client_id, "authorization code issued");
    let mut params: Vec<(&str, &str)> = vec![("code", &code)];
    if let Some(s) = tx.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", &state.issuer));
    Ok(redirect(&with_params(&tx.redirect_uri, &params)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A login transaction is dead from its `expires_at` second on (`load` and `finish` refuse it
    /// then), and live the second before.
    #[test]
    fn a_transaction_ends_at_its_expiry_second() {
        assert!(is_live(100, 99));
        assert!(!is_live(100, 100));
        assert!(!is_live(100, 101));
    }
}
