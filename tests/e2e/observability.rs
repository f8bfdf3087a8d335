//! Health, metrics and logs (issue 12): `/healthz`, `/readyz` following the storage and the user
//! directory (and its cache), `/metrics` after a token and a failed sign-in, `/metrics` only on
//! `[server] admin_bind` when it is set (proxied requests: `attack_metrics.rs`), the access log
//! line, failed sign-ins and error pages in the log, JSON logs from the real binary, and the
//! discovery document advertising no ID token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use mcp_oauth::registry::Registry;
use mcp_oauth_provider::{
    AuthOutcome, FactoryContext, KeyStore, ProviderError, ProviderFactory, ProviderResult,
    SigningKeyRecord, Storage, StoreLocality, UnixTime, UserAuthenticator,
    UserAuthenticatorFactory,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::processes::{ServeProcess, TempDir, free_port, process_config};
use crate::support::*;

/// A switch the test flips to take a dependency down.
#[derive(Clone, Default)]
struct Switch(Arc<AtomicBool>);

impl Switch {
    fn down(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    fn set_down(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }
}

/// The in-memory store whose key reads fail while the switch is down (a database outage).
struct FlakyKeys {
    inner: Arc<dyn KeyStore>,
    switch: Switch,
}

#[async_trait]
impl KeyStore for FlakyKeys {
    async fn list_keys(&self) -> ProviderResult<Vec<SigningKeyRecord>> {
        if self.switch.down() {
            return Err(ProviderError::unavailable_msg("test database is down"));
        }
        self.inner.list_keys().await
    }
    async fn insert_key(&self, key: SigningKeyRecord) -> ProviderResult<()> {
        self.inner.insert_key(key).await
    }
    async fn activate_key(&self, kid: &str, retire_previous_at: UnixTime) -> ProviderResult<bool> {
        self.inner.activate_key(kid, retire_previous_at).await
    }
    async fn delete_key(&self, kid: &str) -> ProviderResult<bool> {
        self.inner.delete_key(kid).await
    }
}

struct FlakyStorage(Switch);

#[async_trait]
impl ProviderFactory for FlakyStorage {
    fn kind(&self) -> &'static str {
        "flaky"
    }
    fn check_settings(&self, _ctx: &FactoryContext) -> ProviderResult<()> {
        Ok(())
    }
    async fn open(&self, _ctx: &FactoryContext) -> ProviderResult<Storage> {
        let store = mcp_oauth_provider_memory::MemoryStore::new();
        let storage = store.storage();
        Ok(Storage {
            keys: Arc::new(FlakyKeys {
                inner: storage.keys.clone(),
                switch: self.0.clone(),
            }),
            ..storage
        })
    }
    fn locality(&self) -> StoreLocality {
        StoreLocality::InProcess
    }
}

/// A directory that signs nobody in and is unreachable while the switch is down; the username
/// `broken` makes it fail in another way (a backend error).
struct FlakyDirectory(Switch);

#[async_trait]
impl UserAuthenticator for FlakyDirectory {
    async fn authenticate(&self, username: &str, _password: &str) -> ProviderResult<AuthOutcome> {
        if self.0.down() {
            return Err(ProviderError::unavailable_msg("test directory is down"));
        }
        if username == "broken" {
            return Err(ProviderError::backend_msg("test directory is broken"));
        }
        Ok(AuthOutcome::Rejected)
    }
    async fn check_health(&self) -> ProviderResult<()> {
        if self.0.down() {
            return Err(ProviderError::unavailable_msg("test directory is down"));
        }
        Ok(())
    }
}

struct FlakyDirectoryFactory(Switch);

#[async_trait]
impl UserAuthenticatorFactory for FlakyDirectoryFactory {
    fn kind(&self) -> &'static str {
        "flakydir"
    }
    async fn build(
        &self,
        _ctx: &FactoryContext,
        _storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
        Ok(Arc::new(FlakyDirectory(self.0.clone())))
    }
}

/// A server on the flaky storage and directory, with the readiness cache given.
async fn flaky_server(cache: &str) -> (TestServer, Switch, Switch) {
    let (db, dir) = (Switch::default(), Switch::default());
    let server = start_with(Options {
        storage: Some("kind = \"flaky\"".into()),
        users_toml: Some("[users]\nkind = \"flakydir\"\n".into()),
        registry: Some(
            Registry::builtin()
                .with_storage(FlakyStorage(db.clone()))
                .with_users(FlakyDirectoryFactory(dir.clone())),
        ),
        env: vec![("MCP_OAUTH__HEALTH__READINESS_CACHE", cache.into())],
        ..Default::default()
    })
    .await;
    (server, db, dir)
}

async fn get(url: &str) -> (StatusCode, String) {
    let r = http().get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn readyz(server: &TestServer) -> (StatusCode, Value) {
    let (status, body) = get(&server.url("/readyz")).await;
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn readiness_follows_the_storage_and_the_directory_while_liveness_stays_up() {
    let (server, db, dir) = flaky_server("0s").await;
    let (status, body) = get(&server.url("/healthz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["storage"], "ok");
    assert_eq!(body["checks"]["directory"], "ok");

    db.set_down(true);
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["storage"], "unavailable");
    assert_eq!(body["checks"]["directory"], "ok");
    assert!(
        !body.to_string().contains("test database is down"),
        "the cause is logged, not sent: {body}"
    );
    assert_eq!(get(&server.url("/healthz")).await.0, StatusCode::OK);

    db.set_down(false);
    dir.set_down(true);
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["storage"], "ok");
    assert_eq!(body["checks"]["directory"], "unavailable");

    dir.set_down(false);
    assert_eq!(readyz(&server).await.0, StatusCode::OK);
    assert!(captured_log().contains("readiness: the storage is unavailable"));
}

#[tokio::test]
async fn a_readiness_result_is_reused_for_the_configured_time() {
    let (server, db, _dir) = flaky_server("60s").await;
    assert_eq!(readyz(&server).await.0, StatusCode::OK);
    db.set_down(true);
    // Within the cache time the store is not asked again.
    assert_eq!(readyz(&server).await.0, StatusCode::OK);
}

/// The line of `metrics` text that starts with `series`, e.g. `name{label="v"}`.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_tokens_and_failed_sign_ins_without_naming_anyone() {
    let server = start().await;
    let (status, before) = get(&server.url("/metrics")).await;
    assert_eq!(status, StatusCode::OK, "loopback clients may scrape");
    assert_eq!(
        sample(&before, "mcp_oauth_sign_in_failures_total"),
        Some(0.0),
        "{before}"
    );

    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let wrong = format!("wrong-{}", mcp_oauth::oauth::secrets::new_secret());
    let r = server.post_login(&b, &tx, &csrf, "mallory", &wrong).await;
    assert!(r.text().await.unwrap().contains("name=\"password\""));
    let _ = get(&server.url("/no-such-path-abc")).await;

    let r = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let m = r.text().await.unwrap();
    assert_eq!(
        sample(
            &m,
            r#"mcp_oauth_tokens_issued_total{grant_type="authorization_code"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, "mcp_oauth_sign_in_failures_total"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"mcp_oauth_http_requests_total{route="/token",method="POST",status="200"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(
        sample(
            &m,
            r#"mcp_oauth_http_requests_total{route="/login",method="POST",status="200"}"#
        )
        .is_some_and(|n| n >= 2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"mcp_oauth_http_requests_total{route="unmatched",method="GET",status="404"}"#
        ),
        Some(1.0),
        "unknown paths share one series: {m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"mcp_oauth_http_request_duration_seconds_count{route="/token",method="POST"}"#
        ),
        Some(1.0),
        "{m}"
    );
    assert!(m.contains(r#"mcp_oauth_http_request_duration_seconds_bucket{route="/token",method="POST",le="+Inf"} 1"#), "{m}");
    assert_eq!(
        sample(&m, "mcp_oauth_login_hashing_queue_depth"),
        Some(0.0),
        "{m}"
    );
    assert!(
        sample(&m, "mcp_oauth_login_hashing_slots").is_some_and(|n| n >= 1.0),
        "{m}"
    );
    for secret in [
        client_id.as_str(),
        "mallory",
        &wrong,
        &token,
        "no-such-path-abc",
        USER,
    ] {
        assert!(!m.contains(secret), "{secret} in the metrics");
    }
}

#[tokio::test]
async fn the_database_pool_is_reported_for_backends_that_have_one() {
    let memory = start().await;
    let m = get(&memory.url("/metrics")).await.1;
    assert!(
        !m.contains("mcp_oauth_db_pool_max_connections "),
        "memory has no pool: {m}"
    );
    let sqlite = start_with(Options {
        sqlite_temp: true,
        ..Default::default()
    })
    .await;
    let m = get(&sqlite.url("/metrics")).await.1;
    assert!(
        sample(&m, "mcp_oauth_db_pool_max_connections").is_some_and(|n| n >= 1.0),
        "{m}"
    );
    let idle = sample(&m, r#"mcp_oauth_db_pool_connections{state="idle"}"#).unwrap();
    let in_use = sample(&m, r#"mcp_oauth_db_pool_connections{state="in_use"}"#).unwrap();
    assert!(idle + in_use >= 1.0, "the store has opened its pool: {m}");
}

#[tokio::test]
async fn sign_in_lockouts_are_counted() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__LOGIN__MAX_FAILED_ATTEMPTS", "2".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            server
                .post_login(&b, &tx, &csrf, USER, "not it")
                .await
                .status(),
        );
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let m = get(&server.url("/metrics")).await.1;
    assert!(
        sample(
            &m,
            r#"mcp_oauth_sign_in_refused_total{reason="too_many_attempts"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{m}"
    );
}

#[tokio::test]
async fn with_admin_bind_metrics_move_to_the_admin_listener() {
    let admin_port = free_port().await;
    let server = start_with(Options {
        env: vec![(
            "MCP_OAUTH__SERVER__ADMIN_BIND",
            format!("127.0.0.1:{admin_port}"),
        )],
        ..Default::default()
    })
    .await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut up = false;
    for _ in 0..50 {
        if http().get(format!("{admin}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(up, "the admin listener answers");
    assert_eq!(get(&server.url("/metrics")).await.0, StatusCode::NOT_FOUND);
    let (status, m) = get(&format!("{admin}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(m.contains("mcp_oauth_http_requests_total"), "{m}");
    assert_eq!(get(&format!("{admin}/readyz")).await.0, StatusCode::OK);
    for path in [
        "/token",
        "/.well-known/oauth-authorization-server",
        "/authorize",
    ] {
        assert_eq!(
            get(&format!("{admin}{path}")).await.0,
            StatusCode::NOT_FOUND,
            "{path} is not on the admin listener"
        );
    }
    // The main listener keeps its probes.
    assert_eq!(get(&server.url("/healthz")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn every_request_gets_one_access_log_line_without_its_query() {
    let server = start().await;
    let marker = format!("access-{}", mcp_oauth::oauth::secrets::new_secret());
    let secret = format!("state-{}", mcp_oauth::oauth::secrets::new_secret());
    let r = http()
        .get(server.url(&format!("/{marker}?state={secret}&tx=abc")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let log = captured_log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&marker)).collect();
    let access: Vec<&&str> = lines
        .iter()
        .filter(|l| l.contains("mcp_oauth::access"))
        .collect();
    assert_eq!(access.len(), 1, "{lines:#?}");
    let line = access[0];
    for field in [
        "method=GET",
        &format!("path=/{marker}"),
        "status=404",
        "latency_ms=",
        "client=127.0.0.1",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert!(!log.contains(&secret), "a query string reached the log");
}

#[tokio::test]
async fn failed_sign_ins_log_the_username_never_the_password() {
    let server = start().await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let user = format!("mallory-{}", mcp_oauth::oauth::secrets::new_secret());
    let password = format!("pw-{}", mcp_oauth::oauth::secrets::new_secret());
    server.post_login(&b, &tx, &csrf, &user, &password).await;
    let log = captured_log();
    let line = log
        .lines()
        .find(|l| l.contains("failed sign-in") && l.contains(&user))
        .unwrap_or_else(|| panic!("no failed sign-in line for {user}"));
    assert!(line.contains(&format!("username=\"{user}\"")), "{line}");
    assert!(!log.contains(&password), "the password reached the log");
}

#[tokio::test]
async fn an_authorize_error_page_logs_why() {
    let server = start().await;
    let unknown = format!("ghost-{}", mcp_oauth::oauth::secrets::new_secret());
    let params = with(
        &server.auth_params(&unknown),
        "redirect_uri",
        Some(REDIRECT),
    );
    let r = http()
        .get(server.url("/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    let log = captured_log();
    let line = log
        .lines()
        .find(|l| l.contains("error page shown") && l.contains("path=/authorize"))
        .unwrap_or_else(|| panic!("no error-page line: {html}"));
    assert!(line.contains("reason="), "{line}");
    assert!(line.contains("status=400"), "{line}");
}

#[tokio::test]
async fn discovery_lists_no_id_token_algorithms() {
    let server = start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let v: Value = http()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            v.get("id_token_signing_alg_values_supported").is_none(),
            "{path}: {v}"
        );
        assert!(
            !v["response_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t.as_str().unwrap().contains("id_token")),
            "{path}"
        );
    }
}

/// The real binary: `[log] format = "json"` gives one JSON object per stderr line, the access line
/// among them, and `serve` binds `[server] admin_bind`.
#[tokio::test]
async fn serve_writes_json_logs_and_binds_the_admin_listener() {
    let dir = TempDir::new("mcp-oauth-e2e-json-log");
    let (port, admin_port) = (free_port().await, free_port().await);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, process_config(port, port, "kind = \"memory\"")).unwrap();
    let admin_bind = format!("127.0.0.1:{admin_port}");
    let serve = ServeProcess::start(
        &config,
        port,
        port,
        &[
            ("MCP_OAUTH__LOG__FORMAT", "json"),
            ("MCP_OAUTH__SERVER__ADMIN_BIND", &admin_bind),
        ],
    )
    .await;
    let marker = format!("json-{}", mcp_oauth::oauth::secrets::new_secret());
    assert_eq!(
        get(&serve.url(&format!("/{marker}?code=hidden"))).await.0,
        StatusCode::NOT_FOUND
    );
    let (status, m) = get(&format!("http://{admin_bind}/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(m.contains("mcp_oauth_http_requests_total"), "{m}");
    let stderr = serve.stderr.clone();
    assert!(serve.terminate().await);
    let text = stderr.lock().unwrap().clone();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|v| v["target"] == "mcp_oauth::access" && v["path"] == format!("/{marker}"))
        .collect();
    assert_eq!(access.len(), 1, "{text}");
    assert_eq!(access[0]["status"], 404);
    assert_eq!(access[0]["method"], "GET");
    assert_eq!(access[0]["client"], "127.0.0.1");
    assert!(access[0]["latency_ms"].is_number());
    assert!(lines.iter().any(|v| {
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("admin listener"))
    }));
    assert!(!text.contains("hidden"));
}

/// The LDAP authenticator's health check, against the test slapd through a proxy that can cut it.
#[tokio::test]
async fn readiness_follows_a_real_directory() {
    let Some(url) = crate::ldap::directory_url() else {
        return;
    };
    let target: SocketAddr = url
        .trim_start_matches("ldap://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = crate::processes::FlakyProxy::start(target).await;
    let password_file = crate::ldap::PasswordFile::new();
    let server = start_with(Options {
        users_toml: Some(crate::ldap::ldap_users_toml(
            &format!("ldap://{}/", proxy.addr),
            &password_file,
        )),
        env: vec![("MCP_OAUTH__HEALTH__READINESS_CACHE", "0s".into())],
        ..Default::default()
    })
    .await;
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    proxy.cut();
    let (status, body) = readyz(&server).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["checks"]["directory"], "unavailable");
    assert_eq!(body["checks"]["storage"], "ok");
    proxy.restore();
    assert_eq!(readyz(&server).await.0, StatusCode::OK);
}

/// A directory outage during sign-in shows the form again with "temporarily unavailable" (503);
/// any other directory failure is an error page, not the form (login.rs `is_unavailable`).
#[tokio::test]
async fn a_directory_outage_at_sign_in_shows_the_form_other_failures_an_error_page() {
    let (server, _db, dir) = flaky_server("0s").await;
    let client = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server.start_login(&b, &server.auth_params(&client)).await;
    dir.set_down(true);
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Sign-in is temporarily unavailable") && html.contains("name=\"password\""),
        "{html}"
    );
    dir.set_down(false);
    let r = server
        .post_login(&b, &tx, &csrf, "broken", "a-password")
        .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let html = r.text().await.unwrap();
    assert!(!html.contains("name=\"password\""), "{html}");
}
