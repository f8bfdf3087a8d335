//! Test harness: a server per test, an HTTP client with a cookie jar, and the browser steps of the
//! authorization-code flow.
#![allow(dead_code)]

use std::sync::OnceLock;

use mcp_oauth::config::Settings;
use mcp_oauth::oauth::pkce::s256_challenge;
use mcp_oauth::registry::Registry;
use mcp_oauth::server::Server;
use mcp_oauth::state::AppState;
use reqwest::{Response, StatusCode, redirect::Policy};
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const USER: &str = "alice";
pub const PASSWORD: &str = "correct horse battery staple";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const REDIRECT: &str = "http://127.0.0.1:4567/callback";

pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| mcp_oauth::users::password::hash_password(PASSWORD).unwrap())
}

/// Where a server answers: the HTTP helpers of every test live here.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub base: String,
    pub resource: String,
    /// A client an administrator marked as a resource server: (id, secret). Only such clients may
    /// introspect tokens issued to others.
    pub introspector: Option<(String, String)>,
}

/// A running in-process server.
pub struct TestServer {
    pub ep: Endpoint,
    pub state: AppState,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _data: Option<crate::processes::TempDir>,
    _config: TempFile,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct TempFile(std::path::PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Extra TOML appended to the test config (later keys of a table must not repeat earlier ones, so
/// the tunables come in through `env`).
#[derive(Default)]
pub struct Options {
    pub env: Vec<(&'static str, String)>,
    pub extra_resources: bool,
    /// The `[storage]` table body; default `kind = "memory"`.
    pub storage: Option<String>,
    /// Store in SQLite in a temp directory owned by the server (overrides `storage`).
    pub sqlite_temp: bool,
    /// A fixed port (restart tests keep the issuer); default ephemeral.
    pub port: Option<u16>,
    /// More TOML appended to the config.
    pub extra_toml: Option<String>,
    /// TOML written instead of the `[[users.accounts]]` block that seeds `USER`: another `[users]`
    /// table (e.g. `kind = "ldap"` with `[users.ldap]`) and any other table the test picks, such
    /// as `[storage]`.
    pub users_toml: Option<String>,
    /// One more `[[resources]]` entry with this URI (scopes `mcp:tools`, `mcp:admin`): an MCP server
    /// served elsewhere, e.g. the standalone demo on another port.
    pub extra_resource: Option<String>,
    /// The factories the server is built with; default `Registry::builtin()`.
    pub registry: Option<Registry>,
}

pub async fn start() -> TestServer {
    start_with(Options::default()).await
}

/// The ring TLS provider for every reqwest client in this binary (the library's JWKS and
/// introspection clients included): building a client without one panics. Installing twice is a
/// no-op error.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Everything every in-process server logs, at TRACE for this project's crates and tower-http, so a
/// test can check that no secret reaches the log.
pub fn captured_log() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    static BUF: OnceLock<std::sync::Arc<std::sync::Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer_buf = std::sync::Arc::clone(&buf);
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "mcp_oauth=trace,mcp_oauth_provider_sql=trace,mcp_oauth_provider_ldap=trace,mcp_oauth_provider_oidc=trace,tower_http=trace",
            ))
            .with_ansi(false)
            .with_writer(move || LogWriter(std::sync::Arc::clone(&writer_buf)))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn start_with(opts: Options) -> TestServer {
    install_crypto_provider();
    log_buffer();
    let listener = TcpListener::bind(("127.0.0.1", opts.port.unwrap_or(0)))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let resource = format!("{base}/mcp");
    let data_dir = opts
        .sqlite_temp
        .then(|| crate::processes::TempDir::new("mcp-oauth-e2e-data"));
    let storage = match &data_dir {
        Some(dir) => format!("kind = \"sqlite\"\ndata_dir = \"{}\"", dir.path().display()),
        None => opts
            .storage
            .clone()
            .unwrap_or_else(|| "kind = \"memory\"".into()),
    };
    let users_toml = opts.users_toml.unwrap_or_else(|| {
        format!(
            "[[users.accounts]]\nusername = \"{USER}\"\npassword_hash = \"{hash}\"\n",
            hash = password_hash()
        )
    });
    let mut toml = format!(
        r#"
[server]
bind = "127.0.0.1:{port}"
issuer = "{base}"

[storage]
{storage}

{users_toml}

[[resources]]
uri = "{resource}"
name = "Test <MCP> server"
scopes = ["mcp:tools", "mcp:admin"]
"#,
        storage = storage,
    );
    if let Some(extra) = &opts.extra_toml {
        toml.push('\n');
        toml.push_str(extra);
    }
    if opts.extra_resources {
        toml.push_str(&format!(
            "\n[[resources]]\nuri = \"{base}/other\"\nname = \"Other\"\nscopes = [\"other:read\"]\n"
        ));
    }
    if let Some(uri) = &opts.extra_resource {
        toml.push_str(&format!(
            "\n[[resources]]\nuri = \"{uri}\"\nname = \"Remote MCP\"\nscopes = [\"mcp:tools\", \"mcp:admin\"]\n"
        ));
    }
    let path = std::env::temp_dir().join(format!(
        "mcp-oauth-e2e-{port}-{}.toml",
        mcp_oauth::oauth::secrets::new_secret()
    ));
    std::fs::write(&path, toml).unwrap();
    let mut env: Vec<(String, String)> =
        vec![("MCP_OAUTH__TOKENS__REFRESH_REUSE_GRACE".into(), "1s".into())];
    env.extend(opts.env.into_iter().map(|(k, v)| (k.to_string(), v)));
    let settings = Settings::load_with_env(Some(&path), env).unwrap();
    let registry = opts.registry.unwrap_or_else(Registry::builtin);
    let server = Server::build(&settings, &registry).await.unwrap();
    let state = server.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .run(listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    let (id, secret) = admin_client_on(
        &state,
        json!({"grant_types": ["client_credentials"], "client_name": "Test introspector"}),
        true,
    )
    .await;
    TestServer {
        ep: Endpoint {
            base,
            resource,
            introspector: Some((id, secret)),
        },
        state,
        shutdown: Some(tx),
        handle: Some(handle),
        _config: TempFile(path),
        _data: data_dir,
    }
}

/// A browser-like client: cookie jar, no automatic redirects.
pub fn browser() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// A client without cookies.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

impl TestServer {
    /// Stops the server and waits until it has let go of its port and storage.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), h).await;
        }
    }
}

impl TestServer {
    /// A public client that a user has already approved (so `/authorize` errors redirect to it).
    pub async fn register_approved(&self) -> String {
        let id = self.register_public().await;
        self.state
            .provider
            .clients()
            .mark_client_approved(&id, mcp_oauth::state::now())
            .await
            .unwrap();
        id
    }
}

impl std::ops::Deref for TestServer {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.ep
    }
}

impl Endpoint {
    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn register(&self, body: Value) -> Response {
        http()
            .post(self.url("/register"))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// A public client with one loopback redirect URI; returns its id.
    pub async fn register_public(&self) -> String {
        let r = self
            .register(json!({
                "client_name": "Test client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["client_id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A confidential client; returns (id, secret). Open registration admits only
    /// authorization_code / refresh_token clients: machine clients come from [`admin_client`].
    pub async fn register_confidential(&self, grants: &[&str]) -> (String, String) {
        let r = self
            .register(json!({
                "client_name": "Confidential client",
                "redirect_uris": [REDIRECT],
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": grants,
            }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.unwrap();
        (
            v["client_id"].as_str().unwrap().to_string(),
            v["client_secret"].as_str().unwrap().to_string(),
        )
    }

    /// Standard authorization parameters for `client_id`.
    pub fn auth_params(&self, client_id: &str) -> Vec<(String, String)> {
        vec![
            ("response_type".into(), "code".into()),
            ("client_id".into(), client_id.into()),
            ("redirect_uri".into(), REDIRECT.into()),
            ("code_challenge".into(), s256_challenge(VERIFIER)),
            ("code_challenge_method".into(), "S256".into()),
            ("state".into(), "xyz-state".into()),
            ("resource".into(), self.resource.clone()),
            ("scope".into(), "mcp:tools".into()),
        ]
    }

    pub async fn authorize(&self, b: &reqwest::Client, params: &[(String, String)]) -> Response {
        b.get(self.url("/authorize"))
            .query(params)
            .send()
            .await
            .unwrap()
    }

    /// GET /authorize → follow to the login page; returns (tx, csrf, html).
    pub async fn start_login(
        &self,
        b: &reqwest::Client,
        params: &[(String, String)],
    ) -> (String, String, String) {
        let r = self.authorize(b, params).await;
        assert_eq!(
            r.status(),
            StatusCode::FOUND,
            "authorize should redirect to login: {:?}",
            r.text().await
        );
        let loc = location(&r);
        assert!(loc.starts_with("/login?tx="), "{loc}");
        let page = b.get(self.url(&loc)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        (
            input_value(&html, "tx"),
            input_value(&html, "csrf_token"),
            html,
        )
    }

    pub async fn post_login(
        &self,
        b: &reqwest::Client,
        tx: &str,
        csrf: &str,
        user: &str,
        pw: &str,
    ) -> Response {
        b.post(self.url("/login"))
            .form(&[
                ("tx", tx),
                ("csrf_token", csrf),
                ("username", user),
                ("password", pw),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn post_consent(
        &self,
        b: &reqwest::Client,
        tx: &str,
        csrf: &str,
        decision: &str,
        remember: bool,
    ) -> Response {
        let mut form = vec![("tx", tx), ("csrf_token", csrf), ("decision", decision)];
        if remember {
            form.push(("remember", "yes"));
        }
        b.post(self.url("/consent"))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// The whole browser part; returns the redirect URL carrying the code.
    pub async fn obtain_redirect(&self, params: &[(String, String)]) -> String {
        let b = browser();
        let (tx, csrf, _) = self.start_login(&b, params).await;
        let r = self.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Allow access?"),
            "consent page expected: {html}"
        );
        let r = self.post_consent(&b, &tx, &csrf, "approve", false).await;
        assert_eq!(r.status(), StatusCode::FOUND);
        location(&r)
    }

    /// An authorization code for `client_id` with the standard parameters.
    pub async fn obtain_code(&self, client_id: &str) -> String {
        let loc = self.obtain_redirect(&self.auth_params(client_id)).await;
        query_param(&loc, "code").expect("code in redirect")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> Response {
        http()
            .post(self.url("/token"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Code → tokens for a public client with the standard parameters.
    pub async fn exchange(&self, client_id: &str, code: &str) -> Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &self.resource),
        ])
        .await
    }

    /// A confidential code-flow client (HTTP Basic) and its first tokens:
    /// (id, secret, access token, refresh token).
    pub async fn confidential_tokens(&self) -> (String, String, String, String) {
        let (id, secret) = self
            .register_confidential(&["authorization_code", "refresh_token"])
            .await;
        let code = self.obtain_code(&id).await;
        let v: Value = http()
            .post(self.url("/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            id,
            secret,
            v["access_token"].as_str().unwrap().into(),
            v["refresh_token"].as_str().unwrap().into(),
        )
    }

    pub async fn refresh(&self, client_id: &str, refresh_token: &str) -> Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .await
    }

    /// An access token for `resource` with `scope`, through the whole browser flow as `alice`.
    pub async fn access_token_for(&self, resource: &str, scope: &str) -> String {
        let client_id = self.register_public().await;
        let params = with(&self.auth_params(&client_id), "resource", Some(resource));
        let params = with(&params, "scope", Some(scope));
        let loc = self.obtain_redirect(&params).await;
        let code = query_param(&loc, "code").expect("code in redirect");
        let r = self
            .token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &client_id),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
                ("resource", resource),
            ])
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Introspection as the resource-server client every test server has.
    pub async fn introspect(&self, token: &str) -> Value {
        let (id, secret) = self
            .introspector
            .clone()
            .expect("this endpoint has an introspecting client");
        self.introspect_as(&id, &secret, token).await
    }

    /// Introspection as the client `id` (RFC 7662 §2.1, HTTP Basic); asserts 200.
    pub async fn introspect_as(&self, id: &str, secret: &str, token: &str) -> Value {
        let r = http()
            .post(self.url("/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }
}

pub fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `value` of `<input name="NAME" value="…">` in a page we rendered.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in page"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

pub async fn error_of(r: Response) -> (StatusCode, String) {
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        v["error"]
            .as_str()
            .unwrap_or("<not a JSON error>")
            .to_string(),
    )
}

/// Replaces (or adds) one parameter.
pub fn with(params: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<_> = params.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_string(), v.to_string()));
    }
    out
}

/// A confidential client created the way an administrator creates one (`clients add`), from RFC 7591
/// metadata; returns (id, secret).
pub async fn admin_client(s: &TestServer, metadata: Value) -> (String, String) {
    admin_client_with(s, metadata, false).await
}

/// Like [`admin_client`]; `resource_server` marks it as allowed to introspect any access token.
pub async fn admin_client_with(
    s: &TestServer,
    metadata: Value,
    resource_server: bool,
) -> (String, String) {
    admin_client_on(&s.state, metadata, resource_server).await
}

async fn admin_client_on(
    state: &AppState,
    metadata: Value,
    resource_server: bool,
) -> (String, String) {
    let mut metadata = metadata;
    let obj = metadata.as_object_mut().unwrap();
    obj.entry("client_name")
        .or_insert(json!("Admin-made client"));
    obj.entry("token_endpoint_auth_method")
        .or_insert(json!("client_secret_basic"));
    let (mut client, secret) = mcp_oauth::oauth::register::client_from_metadata(
        &state.resources,
        &state.registration,
        mcp_oauth_provider::ClientOrigin::Administrator,
        &metadata,
        mcp_oauth::state::now(),
    )
    .unwrap();
    client.resource_server = resource_server;
    state
        .provider
        .clients()
        .insert_client(client.clone())
        .await
        .unwrap();
    (client.client_id, secret.unwrap())
}

/// Introspection as a client an administrator marked as a resource server.
pub async fn introspect_as_resource_server(s: &TestServer, token: &str) -> Value {
    let (id, secret) =
        admin_client_with(s, json!({"grant_types": ["client_credentials"]}), true).await;
    s.introspect_as(&id, &secret, token).await
}
