//! A small OpenID Connect provider for the federated sign-in tests: axum on 127.0.0.1 with its own
//! ES256 key. It signs in whoever it is told to (no login page), and each answer can be made wrong
//! in one way (nonce, key, expiry, audience, issuer, an error) through [`Behaviour`]. It records
//! every token it issues, so a test can check none of them reaches an MCP client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcp_oauth::oauth::keys::generate_key;
use mcp_oauth::oauth::pkce::s256_challenge;
use mcp_oauth::oauth::secrets::new_secret;
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "mcp-oauth-test";
pub const CLIENT_SECRET: &str = "upstream-client-s3cret-do-not-log";

/// How the next answers go wrong (all `None`/`false`: a correct provider).
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// The claims about the user (merged into the ID token).
    pub user: Value,
    /// Put this nonce in the ID token instead of the one asked for.
    pub nonce: Option<String>,
    /// Sign with a key the provider does not publish (same `kid`).
    pub rogue_key: bool,
    /// Seconds from now until `exp` (default 300; negative: already expired).
    pub exp_in: Option<i64>,
    /// Use this `aud` instead of the client id.
    pub aud: Option<Value>,
    /// Answer the authorization request with this `error` instead of a code.
    pub error: Option<String>,
    /// Put this `iss` on the authorization response instead of the issuer.
    pub response_iss: Option<String>,
    /// Report this issuer in discovery instead of the real one.
    pub discovery_issuer: Option<String>,
}

/// What the provider remembers of one code.
#[derive(Debug, Clone)]
struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct Shared {
    behaviour: Behaviour,
    /// The signing key, its `kid` and its public JWK (replaced by [`FakeOp::rotate_key`]).
    key: EncodingKey,
    kid: String,
    public_jwk: Value,
    grants: HashMap<String, Grant>,
    /// Every token issued (access, refresh, ID).
    issued: Vec<String>,
    /// The query of every authorization request.
    authorize_requests: Vec<HashMap<String, String>>,
    /// Token requests with the right client secret.
    authenticated_token_requests: usize,
}

#[derive(Clone)]
struct Op {
    base: String,
    rogue: Arc<EncodingKey>,
    shared: Arc<Mutex<Shared>>,
}

/// A running provider.
pub struct FakeOp {
    pub base: String,
    shared: Arc<Mutex<Shared>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for FakeOp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn es256_key() -> (EncodingKey, Value, String) {
    let record = generate_key(Algorithm::ES256, 0).unwrap();
    (
        EncodingKey::from_ec_der(&record.private_key),
        serde_json::from_str(&record.public_jwk).unwrap(),
        record.kid,
    )
}

impl FakeOp {
    pub async fn start() -> Self {
        crate::support::install_crypto_provider();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (key, public_jwk, kid) = es256_key();
        let (rogue, _, _) = es256_key();
        let shared = Arc::new(Mutex::new(Shared {
            behaviour: Behaviour {
                user: json!({"sub": "upstream-user-1"}),
                ..Default::default()
            },
            key,
            kid,
            public_jwk,
            grants: HashMap::new(),
            issued: Vec::new(),
            authorize_requests: Vec::new(),
            authenticated_token_requests: 0,
        }));
        let op = Op {
            base: base.clone(),
            rogue: Arc::new(rogue),
            shared: shared.clone(),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/jwks", get(jwks))
            .with_state(op);
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

    /// Changes how the provider answers from now on.
    pub fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.shared.lock().unwrap().behaviour);
    }

    /// Signs with a new key (new `kid`) from now on and publishes only that one.
    pub fn rotate_key(&self) {
        let (key, public_jwk, kid) = es256_key();
        let mut shared = self.shared.lock().unwrap();
        shared.key = key;
        shared.kid = kid;
        shared.public_jwk = public_jwk;
    }

    /// Every token the provider issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.shared.lock().unwrap().issued.clone()
    }

    /// The query of every authorization request so far.
    pub fn authorize_requests(&self) -> Vec<HashMap<String, String>> {
        self.shared.lock().unwrap().authorize_requests.clone()
    }

    /// How many token requests carried our client secret.
    pub fn authenticated_token_requests(&self) -> usize {
        self.shared.lock().unwrap().authenticated_token_requests
    }
}

async fn discovery(State(op): State<Op>) -> Json<Value> {
    let issuer = op
        .shared
        .lock()
        .unwrap()
        .behaviour
        .discovery_issuer
        .clone()
        .unwrap_or_else(|| op.base.clone());
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{}/authorize", op.base),
        "token_endpoint": format!("{}/token", op.base),
        "jwks_uri": format!("{}/jwks", op.base),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

async fn jwks(State(op): State<Op>) -> Json<Value> {
    Json(json!({"keys": [op.shared.lock().unwrap().public_jwk.clone()]}))
}

fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(uri).unwrap();
    url.query_pairs_mut().extend_pairs(pairs);
    url.into()
}

async fn authorize(State(op): State<Op>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut shared = op.shared.lock().unwrap();
    shared.authorize_requests.push(q.clone());
    let b = shared.behaviour.clone();
    let (Some(redirect_uri), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri and state required").into_response();
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || q.get("response_type").map(String::as_str) != Some("code")
        || q.get("code_challenge_method").map(String::as_str) != Some("S256")
    {
        return (StatusCode::BAD_REQUEST, "bad authorization request").into_response();
    }
    let iss = b.response_iss.clone().unwrap_or_else(|| op.base.clone());
    if let Some(error) = b.error {
        return Redirect::to(&with_query(
            redirect_uri,
            &[("error", &error), ("state", state), ("iss", &iss)],
        ))
        .into_response();
    }
    let code = new_secret();
    shared.grants.insert(
        code.clone(),
        Grant {
            nonce: q.get("nonce").cloned().unwrap_or_default(),
            challenge: q.get("code_challenge").cloned().unwrap_or_default(),
            redirect_uri: redirect_uri.clone(),
        },
    );
    Redirect::to(&with_query(
        redirect_uri,
        &[("code", &code), ("state", state), ("iss", &iss)],
    ))
    .into_response()
}

fn token_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn token(
    State(op): State<Op>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    let mut shared = op.shared.lock().unwrap();
    shared.authenticated_token_requests += 1;
    let Some(grant) = form.get("code").and_then(|c| shared.grants.remove(c)) else {
        return token_error("invalid_grant");
    };
    let verifier_ok = form
        .get("code_verifier")
        .is_some_and(|v| s256_challenge(v) == grant.challenge);
    if !verifier_ok || form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return token_error("invalid_grant");
    }
    let b = shared.behaviour.clone();
    let now = mcp_oauth_provider::unix_now();
    let mut claims = json!({
        "iss": op.base,
        "aud": b.aud.clone().unwrap_or(json!(CLIENT_ID)),
        "iat": now,
        "exp": now + b.exp_in.unwrap_or(300),
        "nonce": b.nonce.clone().unwrap_or(grant.nonce),
    });
    for (k, v) in b.user.as_object().unwrap() {
        claims[k] = v.clone();
    }
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(shared.kid.clone());
    let key = if b.rogue_key { &*op.rogue } else { &shared.key };
    let id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
    let access_token = format!("upstream-at-{}", new_secret());
    let refresh_token = format!("upstream-rt-{}", new_secret());
    shared.issued.extend([
        id_token.clone(),
        access_token.clone(),
        refresh_token.clone(),
    ]);
    Json(json!({
        "access_token": access_token,
        "refresh_token": refresh_token,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 300,
    }))
    .into_response()
}
