//! A small GitHub for the `kind = "github"` (and `"oauth2"`) upstream tests: axum on 127.0.0.1 with
//! GitHub's web flow (`/login/oauth/authorize`, `/login/oauth/access_token`, which answers errors
//! with HTTP 200 as GitHub does) and the REST API parts we read (`/user`, `/user/orgs`,
//! `/user/teams`, paged). The test sets `api_url` to its base. It signs in whoever it is told to,
//! records every token it issues, and each answer can be made wrong through [`GhBehaviour`].
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use mcp_oauth::oauth::pkce::s256_challenge;
use mcp_oauth::oauth::secrets::new_secret;
use serde_json::{Value, json};

pub const GH_CLIENT_ID: &str = "Iv1.mcp-oauth-test";
pub const GH_CLIENT_SECRET: &str = "github-client-s3cret-never-logged";

/// How the fake GitHub answers.
#[derive(Debug, Clone)]
pub struct GhBehaviour {
    /// `GET /user`.
    pub user: Value,
    /// Org logins the user belongs to.
    pub orgs: Vec<String>,
    /// Teams as `(org, slug)`.
    pub teams: Vec<(String, String)>,
    /// Answer the token request with this `error` (HTTP 200, as GitHub does).
    pub token_error: Option<String>,
    /// Answer `GET /user` with this status and no user.
    pub user_status: Option<u16>,
    /// Answer `GET /user/orgs` with this status.
    pub orgs_status: Option<u16>,
}

impl Default for GhBehaviour {
    fn default() -> Self {
        Self {
            user: json!({"id": 583231, "login": "octocat", "name": "The Octocat",
                         "email": "octocat@example.com"}),
            orgs: vec!["acme".into()],
            teams: vec![("acme".into(), "admins".into())],
            token_error: None,
            user_status: None,
            orgs_status: None,
        }
    }
}

struct Shared {
    behaviour: GhBehaviour,
    /// code → (challenge, redirect_uri, scope)
    codes: HashMap<String, (String, String, String)>,
    /// access token → scope granted
    tokens: HashMap<String, String>,
    issued: Vec<String>,
    authorize_requests: Vec<HashMap<String, String>>,
    /// Token requests that carried our client id and secret in the form (GitHub's way).
    authenticated_token_requests: usize,
}

#[derive(Clone)]
struct Gh {
    shared: Arc<Mutex<Shared>>,
}

/// A running fake GitHub.
pub struct FakeGitHub {
    pub base: String,
    shared: Arc<Mutex<Shared>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeGitHub {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl FakeGitHub {
    pub async fn start() -> Self {
        crate::support::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let shared = Arc::new(Mutex::new(Shared {
            behaviour: GhBehaviour::default(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            issued: Vec::new(),
            authorize_requests: Vec::new(),
            authenticated_token_requests: 0,
        }));
        let gh = Gh {
            shared: shared.clone(),
        };
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(token))
            .route("/user", get(user))
            .route("/user/orgs", get(orgs))
            .route("/user/teams", get(teams))
            .with_state(gh);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Self {
            base,
            shared,
            shutdown: Some(tx),
        }
    }

    pub fn set(&self, change: impl FnOnce(&mut GhBehaviour)) {
        change(&mut self.shared.lock().unwrap().behaviour);
    }

    pub fn issued(&self) -> Vec<String> {
        self.shared.lock().unwrap().issued.clone()
    }

    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.shared.lock().unwrap().authorize_requests.clone()
    }

    pub fn authenticated_token_requests(&self) -> usize {
        self.shared.lock().unwrap().authenticated_token_requests
    }
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(uri).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

async fn authorize(State(gh): State<Gh>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut shared = gh.shared.lock().unwrap();
    shared.authorize_requests.push(q.clone());
    let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri and state required").into_response();
    };
    if q.get("client_id").map(String::as_str) != Some(GH_CLIENT_ID)
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let code = new_secret();
    shared.codes.insert(
        code.clone(),
        (
            q.get("code_challenge").cloned().unwrap_or_default(),
            redirect_uri.clone(),
            q.get("scope").cloned().unwrap_or_default(),
        ),
    );
    Redirect::to(&with_query(
        redirect_uri,
        &[("code", &code), ("state", state)],
    ))
    .into_response()
}

/// GitHub answers token errors with 200 and `{"error": …}`.
fn token_error(error: &str) -> Response {
    Json(json!({"error": error, "error_description": "see the docs"})).into_response()
}

async fn token(State(gh): State<Gh>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut shared = gh.shared.lock().unwrap();
    if form.get("client_id").map(String::as_str) != Some(GH_CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(GH_CLIENT_SECRET)
    {
        return token_error("incorrect_client_credentials");
    }
    shared.authenticated_token_requests += 1;
    if let Some(e) = shared.behaviour.token_error.clone() {
        return token_error(&e);
    }
    let Some((challenge, redirect_uri, scope)) =
        form.get("code").and_then(|c| shared.codes.remove(c))
    else {
        return token_error("bad_verification_code");
    };
    let verifier_ok = form
        .get("code_verifier")
        .is_some_and(|v| s256_challenge(v) == challenge);
    if !verifier_ok || form.get("redirect_uri") != Some(&redirect_uri) {
        return token_error("bad_verification_code");
    }
    let access_token = format!("gho_{}", new_secret());
    shared.issued.push(access_token.clone());
    shared.tokens.insert(access_token.clone(), scope.clone());
    Json(json!({"access_token": access_token, "token_type": "bearer", "scope": scope}))
        .into_response()
}

/// The scope granted to the bearer token, or `None` (answer [`unauthorized`]).
fn authorized(gh: &Gh, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let shared = gh.shared.lock().unwrap();
    token.and_then(|t| shared.tokens.get(t)).cloned()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"message": "Bad credentials"})),
    )
        .into_response()
}

fn status(code: u16) -> Response {
    (
        StatusCode::from_u16(code).unwrap(),
        Json(json!({"message": "as the test asked"})),
    )
        .into_response()
}

async fn user(State(gh): State<Gh>, headers: HeaderMap) -> Response {
    if authorized(&gh, &headers).is_none() {
        return unauthorized();
    }
    let b = gh.shared.lock().unwrap().behaviour.clone();
    if headers.get("user-agent").is_none() {
        return status(403);
    }
    match b.user_status {
        Some(code) => status(code),
        None => Json(b.user).into_response(),
    }
}

/// One page of `items` (GitHub's `per_page` and `page`).
fn page(items: Vec<Value>, q: &HashMap<String, String>) -> Response {
    let per: usize = q.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(30);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let part: Vec<Value> = items.into_iter().skip((page - 1) * per).take(per).collect();
    Json(Value::Array(part)).into_response()
}

fn needs_read_org(scope: &str) -> bool {
    scope.split([' ', ',']).any(|s| s == "read:org")
}

async fn orgs(
    State(gh): State<Gh>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(scope) = authorized(&gh, &headers) else {
        return unauthorized();
    };
    let b = gh.shared.lock().unwrap().behaviour.clone();
    if let Some(code) = b.orgs_status {
        return status(code);
    }
    if !needs_read_org(&scope) {
        return status(403);
    }
    page(b.orgs.iter().map(|o| json!({"login": o})).collect(), &q)
}

async fn teams(
    State(gh): State<Gh>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(scope) = authorized(&gh, &headers) else {
        return unauthorized();
    };
    if !needs_read_org(&scope) {
        return status(403);
    }
    let b = gh.shared.lock().unwrap().behaviour.clone();
    page(
        b.teams
            .iter()
            .map(|(o, s)| json!({"slug": s, "organization": {"login": o}}))
            .collect(),
        &q,
    )
}
