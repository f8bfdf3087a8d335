//! A server that is not ours: a small standards-following authorization server and MCP server,
//! laid out nothing like mcp-oauth.
//!
//! - MCP endpoint `/api/v2/mcp-endpoint`; its 401 challenge has no `resource_metadata`, so the
//!   client must build the path-inserted RFC 9728 URL (the root one is 404).
//! - Path-based issuer `<base>/realms/acme`, whose metadata is only at the OIDC "path appended"
//!   location `/realms/acme/.well-known/openid-configuration` (the third URL MCP probes).
//! - Endpoints under `/realms/acme/protocol/openid-connect/…`; registration elsewhere.
//! - The authorization endpoint has no login page: it redirects straight back with `code`, `state`
//!   and `iss` (RFC 9207).
//! - Opaque tokens; refresh tokens rotate, and a reused one is counted and refused.
//!
//! Every request is recorded so tests can check what the client sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub const MCP_PATH: &str = "/api/v2/mcp-endpoint";
pub const REALM: &str = "/realms/acme";

/// Knobs for the failure cases.
#[derive(Debug, Clone)]
pub struct Config {
    pub access_ttl: i64,
    pub advertise_s256: bool,
    /// Every tools/call answers 403 insufficient_scope.
    pub always_403: bool,
    /// The `resource` the protected-resource metadata names (default: the MCP URL).
    pub prm_resource: Option<String>,
    /// Dynamic registration issues a secret (client_secret_basic) expiring this many seconds on.
    pub secret_expires_in: Option<i64>,
    /// The token-endpoint method dynamic registration names when it issues a secret.
    pub secret_method: &'static str,
    /// Where `/evil` redirects.
    pub evil_target: String,
    /// Advertise and accept client ID metadata documents (https URLs as client ids).
    pub cimd: bool,
    /// Behave like an MCP 2025-03-26 server: no RFC 9728 or 8414 metadata anywhere, the default
    /// endpoints `/authorize`, `/token`, `/register` at the origin, no `iss`.
    pub legacy: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            access_ttl: 3600,
            advertise_s256: true,
            always_403: false,
            prm_resource: None,
            secret_expires_in: None,
            secret_method: "client_secret_basic",
            evil_target: "javascript:alert(1)".into(),
            cimd: false,
            legacy: false,
        }
    }
}

#[derive(Debug, Default)]
pub struct Log {
    pub authorize: Vec<HashMap<String, String>>,
    pub token: Vec<HashMap<String, String>>,
    pub registrations: Vec<Value>,
    pub rotations: u32,
    pub reuses: u32,
    pub revoked: Vec<String>,
    pub mcp_401: u32,
}

#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    scopes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Code {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Db {
    /// client_id → (redirect URIs, secret)
    clients: HashMap<String, (Vec<String>, Option<String>)>,
    codes: HashMap<String, Code>,
    access: HashMap<String, (Grant, i64)>,
    /// refresh token → (grant, already used)
    refresh: HashMap<String, (Grant, bool)>,
}

pub struct Shared {
    pub base: String,
    pub config: Mutex<Config>,
    pub log: Mutex<Log>,
    db: Mutex<Db>,
}

pub struct Fake {
    pub shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Fake {
    pub async fn start(config: Config) -> Fake {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            base,
            config: Mutex::new(config),
            log: Mutex::default(),
            db: Mutex::default(),
        });
        let oidc = format!("{REALM}/protocol/openid-connect");
        let app = Router::new()
            .route(
                MCP_PATH,
                post(mcp).get(|| async { StatusCode::METHOD_NOT_ALLOWED }),
            )
            .route(
                &format!("/.well-known/oauth-protected-resource{MCP_PATH}"),
                get(prm),
            )
            .route(
                &format!("{REALM}/.well-known/openid-configuration"),
                get(as_metadata),
            )
            .route(&format!("{oidc}/auth"), get(authorize))
            .route(&format!("{oidc}/token"), post(token))
            .route(&format!("{oidc}/revoke"), post(revoke))
            .route(
                &format!("{REALM}/clients-registrations/openid-connect"),
                post(register),
            )
            .route("/evil", get(evil))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/register", post(register))
            .with_state(Arc::clone(&shared));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Fake {
            shared,
            stop: Some(tx),
        }
    }

    pub fn mcp_url(&self) -> String {
        format!("{}{MCP_PATH}", self.shared.base)
    }

    pub fn issuer(&self) -> String {
        format!("{}{REALM}", self.shared.base)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.shared.base)
    }

    pub fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.shared.log.lock().unwrap()
    }

    pub fn set(&self, f: impl FnOnce(&mut Config)) {
        f(&mut self.shared.config.lock().unwrap());
    }

    /// A client registered by an administrator (loopback redirect, any port).
    pub fn add_client(&self, id: &str, secret: Option<&str>) {
        self.shared.db.lock().unwrap().clients.insert(
            id.to_string(),
            (
                vec!["http://127.0.0.1/callback".into()],
                secret.map(str::to_string),
            ),
        );
    }

    /// The server forgets every registered client (e.g. its database was reset).
    pub fn forget_clients(&self) {
        self.shared.db.lock().unwrap().clients.clear();
    }

    /// Revokes every access token server-side (the next MCP call gets 401).
    pub fn drop_access_tokens(&self) {
        self.shared.db.lock().unwrap().access.clear();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn random() -> String {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn oauth_error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": format!("fake AS: {code}")})),
    )
        .into_response()
}

fn is_loopback_match(registered: &[String], given: &str) -> bool {
    // RFC 8252 §7.3: loopback redirect URIs match in any port.
    let strip = |u: &str| {
        url::Url::parse(u).ok().map(|mut u| {
            let _ = u.set_port(None);
            u.to_string()
        })
    };
    registered
        .iter()
        .any(|r| r == given || (strip(r).is_some() && strip(r) == strip(given)))
}

async fn prm(State(s): State<Arc<Shared>>) -> Response {
    if s.config.lock().unwrap().legacy {
        return StatusCode::NOT_FOUND.into_response();
    }
    let resource = s
        .config
        .lock()
        .unwrap()
        .prm_resource
        .clone()
        .unwrap_or_else(|| format!("{}{MCP_PATH}", s.base));
    Json(json!({
        "resource": resource,
        "authorization_servers": [format!("{}{REALM}", s.base)],
        "scopes_supported": ["read", "admin"],
        "bearer_methods_supported": ["header"],
    }))
    .into_response()
}

async fn as_metadata(State(s): State<Arc<Shared>>) -> Response {
    if s.config.lock().unwrap().legacy {
        return StatusCode::NOT_FOUND.into_response();
    }
    let issuer = format!("{}{REALM}", s.base);
    let oidc = format!("{issuer}/protocol/openid-connect");
    let mut m = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{oidc}/auth"),
        "token_endpoint": format!("{oidc}/token"),
        "revocation_endpoint": format!("{oidc}/revoke"),
        "registration_endpoint": format!("{issuer}/clients-registrations/openid-connect"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "scopes_supported": ["openid", "read", "admin", "offline_access"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "authorization_response_iss_parameter_supported": true,
    });
    if s.config.lock().unwrap().advertise_s256 {
        m["code_challenge_methods_supported"] = json!(["S256"]);
    }
    if s.config.lock().unwrap().cimd {
        m["client_id_metadata_document_supported"] = json!(true);
    }
    Json(m).into_response()
}

async fn register(State(s): State<Arc<Shared>>, Json(body): Json<Value>) -> Response {
    s.log.lock().unwrap().registrations.push(body.clone());
    let uris: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let id = format!("fake-{}", random());
    let (expires, method) = {
        let c = s.config.lock().unwrap();
        (c.secret_expires_in, c.secret_method)
    };
    let mut answer = json!({
        "client_id": id, "redirect_uris": uris, "client_id_issued_at": now(),
        "grant_types": body["grant_types"], "application_type": body["application_type"],
    });
    let secret = expires.map(|_| random());
    match (&secret, expires) {
        (Some(sec), Some(exp)) => {
            answer["client_secret"] = json!(sec);
            answer["client_secret_expires_at"] = json!(now() + exp);
            answer["token_endpoint_auth_method"] = json!(method);
        }
        _ => answer["token_endpoint_auth_method"] = json!("none"),
    }
    s.db.lock().unwrap().clients.insert(id, (uris, secret));
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn authorize(
    State(s): State<Arc<Shared>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    s.log.lock().unwrap().authorize.push(q.clone());
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (cimd, legacy) = {
        let c = s.config.lock().unwrap();
        (c.cimd, c.legacy)
    };
    let db = s.db.lock().unwrap();
    let uris = match db.clients.get(&get("client_id")) {
        Some((uris, _)) => uris.clone(),
        // A client ID metadata document would be fetched here; its redirect is loopback.
        None if cimd && get("client_id").starts_with("https://") => {
            vec!["http://127.0.0.1/callback".to_string()]
        }
        None => return (StatusCode::BAD_REQUEST, "unknown client").into_response(),
    };
    if !is_loopback_match(&uris, &get("redirect_uri")) {
        return (StatusCode::BAD_REQUEST, "unregistered redirect_uri").into_response();
    }
    drop(db);
    let redirect = get("redirect_uri");
    let issuer = format!("{}{REALM}", s.base);
    let back = |pairs: &[(&str, &str)]| {
        let mut u = url::Url::parse(&redirect).unwrap();
        let pairs = pairs.iter().filter(|(k, _)| !(legacy && *k == "iss"));
        u.query_pairs_mut().extend_pairs(pairs);
        Redirect::to(u.as_str()).into_response()
    };
    if get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return back(&[
            ("error", "invalid_request"),
            ("state", &get("state")),
            ("iss", &issuer),
        ]);
    }
    if get("resource") != format!("{}{MCP_PATH}", s.base) {
        return back(&[
            ("error", "invalid_target"),
            ("state", &get("state")),
            ("iss", &issuer),
        ]);
    }
    let code = random();
    s.db.lock().unwrap().codes.insert(
        code.clone(),
        Code {
            grant: Grant {
                client_id: get("client_id"),
                scopes: get("scope")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect(),
            },
            redirect_uri: redirect.clone(),
            challenge: get("code_challenge"),
        },
    );
    back(&[("code", &code), ("state", &get("state")), ("iss", &issuer)])
}

fn client_of(s: &Shared, headers: &HeaderMap, form: &HashMap<String, String>) -> Option<String> {
    use base64::Engine;
    let db = s.db.lock().unwrap();
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        let (_, stored) = db.clients.get(id)?;
        return (stored.as_deref() == Some(secret)).then(|| id.to_string());
    }
    let id = form.get("client_id")?;
    if let Some(secret) = form.get("client_secret") {
        // client_secret_post
        let (_, stored) = db.clients.get(id)?;
        return (stored.as_deref() == Some(secret.as_str())).then(|| id.clone());
    }
    if s.config.lock().unwrap().cimd && id.starts_with("https://") {
        return Some(id.clone());
    }
    let (_, stored) = db.clients.get(id)?;
    stored.is_none().then(|| id.clone())
}

fn issue(s: &Shared, grant: Grant) -> Response {
    let access = random();
    let refresh = random();
    let ttl = s.config.lock().unwrap().access_ttl;
    let mut db = s.db.lock().unwrap();
    db.access
        .insert(access.clone(), (grant.clone(), now() + ttl));
    db.refresh.insert(refresh.clone(), (grant.clone(), false));
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "access_token": access, "token_type": "Bearer", "expires_in": ttl,
            "refresh_token": refresh, "scope": grant.scopes.join(" "),
        })),
    )
        .into_response()
}

async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    s.log.lock().unwrap().token.push(f.clone());
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let Some(client_id) = client_of(&s, &headers, &f) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    if get("resource") != format!("{}{MCP_PATH}", s.base) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_target");
    }
    match get("grant_type").as_str() {
        "authorization_code" => {
            let Some(code) = s.db.lock().unwrap().codes.remove(&get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier_ok = {
                use base64::Engine;
                use sha2::Digest;
                let digest = sha2::Sha256::digest(get("code_verifier").as_bytes());
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest) == code.challenge
            };
            if code.grant.client_id != client_id
                || code.redirect_uri != get("redirect_uri")
                || !verifier_ok
            {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            issue(&s, code.grant)
        }
        "refresh_token" => {
            let found = {
                let mut db = s.db.lock().unwrap();
                match db.refresh.get_mut(&get("refresh_token")) {
                    Some((grant, used)) if grant.client_id == client_id => {
                        let was_used = *used;
                        *used = true;
                        Some((grant.clone(), was_used))
                    }
                    _ => None,
                }
            };
            match found {
                None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
                Some((_, true)) => {
                    s.log.lock().unwrap().reuses += 1;
                    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant")
                }
                Some((grant, false)) => {
                    s.log.lock().unwrap().rotations += 1;
                    issue(&s, grant)
                }
            }
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    }
}

async fn revoke(
    State(s): State<Arc<Shared>>,
    Form(f): Form<HashMap<String, String>>,
) -> StatusCode {
    let t = f.get("token").cloned().unwrap_or_default();
    let mut db = s.db.lock().unwrap();
    db.access.remove(&t);
    db.refresh.remove(&t);
    s.log.lock().unwrap().revoked.push(t);
    StatusCode::OK
}

async fn evil(State(s): State<Arc<Shared>>) -> Response {
    let target = s.config.lock().unwrap().evil_target.clone();
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

async fn mcp(State(s): State<Arc<Shared>>, headers: HeaderMap, Json(msg): Json<Value>) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let grant = {
        let db = s.db.lock().unwrap();
        db.access
            .get(token)
            .filter(|(_, exp)| *exp > now())
            .map(|(g, _)| g.clone())
    };
    let Some(grant) = grant else {
        s.log.lock().unwrap().mcp_401 += 1;
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"fake\", scope=\"read\", error=\"invalid_token\"",
            )],
        )
            .into_response();
    };
    let forbidden = || {
        (
            StatusCode::FORBIDDEN,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer error=\"insufficient_scope\", scope=\"read admin\", error_description=\"admin needed\"",
            )],
        )
            .into_response()
    };
    let id = msg.get("id").cloned();
    let Some(id) = id else {
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match msg["method"].as_str().unwrap_or("") {
        "initialize" => json!({
            "protocolVersion": msg["params"]["protocolVersion"],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake-mcp", "version": "1.0"},
        }),
        "tools/list" => json!({"tools": [
            {"name": "hello", "description": "Says hello to the caller", "inputSchema": {"type": "object"}},
            {"name": "admin_stats", "description": "Needs the admin scope", "inputSchema": {"type": "object"}},
        ]}),
        "tools/call" => {
            if s.config.lock().unwrap().always_403 {
                return forbidden();
            }
            match msg["params"]["name"].as_str().unwrap_or("") {
                "hello" => {
                    json!({"content": [{"type": "text", "text": format!("hello {}", grant.client_id)}]})
                }
                "admin_stats" if grant.scopes.iter().any(|s| s == "admin") => {
                    json!({"content": [{"type": "text", "text": "stats: ok"}]})
                }
                "admin_stats" => return forbidden(),
                _ => {
                    return Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "unknown tool"}}))
                        .into_response();
                }
            }
        }
        _ => {
            return Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}}))
                .into_response();
        }
    };
    Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
}
