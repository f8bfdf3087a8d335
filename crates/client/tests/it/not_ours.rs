//! The client against the server that is not ours ([`crate::fake`]): discovery through a
//! different layout, a path-based issuer, no login page, `resource` on every request, refresh,
//! 401 recovery, step-up and its limit, re-registration, revocation, and refusals.

use std::sync::Arc;
use std::time::Duration;

use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::store::{FileStore, StoreKey, TokenStore};
use mcp_oauth_client::{Authorizer, ClientOptions, Error, Secret, connect};
use rmcp::model::CallToolRequestParams;

use crate::fake::{Config, Fake};

pub struct Setup {
    pub fake: Fake,
    pub store: Arc<FileStore>,
    _dir: crate::TempDir,
}

pub async fn setup(config: Config) -> Setup {
    crate::install_crypto_provider();
    let dir = crate::TempDir::new("mcp-oauth-client-it");
    let store = Arc::new(FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap());
    Setup {
        fake: Fake::start(config).await,
        store,
        _dir: dir,
    }
}

fn headless() -> ClientOptions {
    ClientOptions {
        // The fake has no login page; headless mode follows its redirect straight back.
        login: LoginMode::Headless {
            username: "nobody".into(),
            password: Secret::new("unused"),
        },
        callback_timeout: Duration::from_secs(10),
        ..ClientOptions::default()
    }
}

impl Setup {
    fn authorizer(&self, opts: ClientOptions) -> Authorizer {
        Authorizer::new(&self.fake.mcp_url(), self.store.clone(), opts).unwrap()
    }
}

async fn call(auth: &Authorizer, tool: &str) -> Result<String, Error> {
    let mcp = connect(auth).await?;
    let r = mcp
        .call_tool(CallToolRequestParams::new(tool.to_string()))
        .await
        .map_err(|e| mcp_oauth_client::session::mcp_error(auth, &e));
    let _ = mcp.cancel().await;
    let r = r?;
    Ok(r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect())
}

#[tokio::test]
async fn logs_in_lists_and_calls_with_resource_on_every_request() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(headless());
    let mcp = connect(&auth).await.unwrap();
    let tools = mcp.list_all_tools().await.unwrap();
    assert!(tools.iter().any(|t| t.name == "hello"), "{tools:?}");
    let out = mcp
        .call_tool(CallToolRequestParams::new("hello"))
        .await
        .unwrap();
    assert!(
        out.content[0]
            .as_text()
            .unwrap()
            .text
            .starts_with("hello fake-")
    );
    let _ = mcp.cancel().await;

    let log = s.fake.log();
    let mcp_url = s.fake.mcp_url();
    // Dynamic registration as a native public client with refresh_token.
    let reg = &log.registrations[0];
    assert_eq!(reg["application_type"], "native");
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert!(
        reg["grant_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == "refresh_token")
    );
    assert!(
        reg["redirect_uris"][0]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    // The authorization request: resource, PKCE S256, scope from the challenge plus
    // offline_access (advertised by the AS).
    let a = &log.authorize[0];
    assert_eq!(a["resource"], mcp_url);
    assert_eq!(a["code_challenge_method"], "S256");
    assert_eq!(a["scope"], "read offline_access");
    assert!(a["state"].len() >= 43);
    for t in &log.token {
        assert_eq!(t["resource"], mcp_url, "resource on every token request");
    }
    drop(log);
    let rec = s.store.find(&mcp_url).unwrap().remove(0);
    assert_eq!(
        rec.key.issuer,
        s.fake.issuer(),
        "keyed by the path-based issuer"
    );
    assert_eq!(rec.tokens.unwrap().scopes, ["read", "offline_access"]);
}

#[tokio::test]
async fn refreshes_before_expiry_with_resource_and_rotates_once() {
    let s = setup(Config {
        access_ttl: 2,
        ..Config::default()
    })
    .await;
    let auth = s.authorizer(headless());
    let first = auth.access_token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    // Past half the lifetime: refreshed before it expires.
    let second = auth.access_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(
        auth.access_token().await.unwrap(),
        second,
        "fresh: no refresh"
    );
    let log = s.fake.log();
    assert_eq!((log.rotations, log.reuses), (1, 0));
    let refresh = log
        .token
        .iter()
        .find(|t| t["grant_type"] == "refresh_token")
        .unwrap();
    assert_eq!(refresh["resource"], s.fake.mcp_url());
    assert_eq!(log.authorize.len(), 1, "no second login");
}

#[tokio::test]
async fn a_401_gets_one_refresh_and_a_retry() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(headless());
    assert!(call(&auth, "hello").await.unwrap().starts_with("hello"));
    s.fake.drop_access_tokens();
    assert!(call(&auth, "hello").await.unwrap().starts_with("hello"));
    let log = s.fake.log();
    assert_eq!(log.rotations, 1);
    assert_eq!(
        log.authorize.len(),
        1,
        "recovered by refresh, not a new login"
    );
}

#[tokio::test]
async fn steps_up_on_insufficient_scope() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(headless());
    assert_eq!(call(&auth, "admin_stats").await.unwrap(), "stats: ok");
    let log = s.fake.log();
    assert_eq!(log.authorize.len(), 2, "the login, then one step-up");
    let scopes: Vec<&str> = log.authorize[1]["scope"].split(' ').collect();
    for want in ["read", "admin", "offline_access"] {
        assert!(scopes.contains(&want), "held ∪ required: {scopes:?}");
    }
}

#[tokio::test]
async fn a_server_that_always_answers_403_is_abandoned_after_3_attempts() {
    let s = setup(Config {
        always_403: true,
        ..Config::default()
    })
    .await;
    let auth = s.authorizer(headless());
    let err = tokio::time::timeout(Duration::from_secs(30), call(&auth, "hello"))
        .await
        .expect("gives up in time")
        .unwrap_err()
        .to_string();
    assert!(err.contains("after 3 re-authorizations"), "{err}");
    assert!(err.contains("admin"), "names the scopes: {err}");
    assert_eq!(s.fake.log().authorize.len(), 1 + 3);
}

#[tokio::test]
async fn refuses_an_authorization_server_without_s256() {
    let s = setup(Config {
        advertise_s256: false,
        ..Config::default()
    })
    .await;
    let err = s.authorizer(headless()).login().await.unwrap_err();
    assert!(matches!(err, Error::NoPkceS256 { .. }), "{err}");
    assert!(s.fake.log().authorize.is_empty(), "never sent to the AS");
}

#[tokio::test]
async fn refuses_resource_metadata_for_another_resource() {
    let s = setup(Config {
        prm_resource: Some("http://127.0.0.1:1/somewhere-else".into()),
        ..Config::default()
    })
    .await;
    let err = s
        .authorizer(headless())
        .login()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("somewhere-else") && err.contains("RFC 9728"),
        "{err}"
    );
    assert!(s.fake.log().authorize.is_empty());
}

#[tokio::test]
async fn a_forgotten_registration_is_dropped_and_redone() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(headless());
    auth.login().await.unwrap();
    s.fake.forget_clients();
    // Expire the token so the next use refreshes: invalid_client → register again → log in.
    let mut rec = s.store.find(&s.fake.mcp_url()).unwrap().remove(0);
    let t = rec.tokens.as_mut().unwrap();
    t.issued_at -= 7200;
    t.expires_at = Some(t.issued_at + 10);
    s.store.save(&rec).unwrap();
    let fresh = s.authorizer(headless());
    fresh.access_token().await.unwrap();
    let log = s.fake.log();
    assert_eq!(log.registrations.len(), 2);
    assert_eq!(log.authorize.len(), 2);
}

#[tokio::test]
async fn an_expiring_client_secret_is_renewed_by_registering_again() {
    let s = setup(Config {
        secret_expires_in: Some(30),
        ..Config::default()
    })
    .await;
    let auth = s.authorizer(headless());
    auth.login().await.unwrap();
    let rec = s.store.find(&s.fake.mcp_url()).unwrap().remove(0);
    let reg = rec.registration.unwrap();
    assert!(reg.client_secret.is_some());
    assert_eq!(
        reg.auth_method,
        mcp_oauth_client::registration::TokenAuthMethod::ClientSecretBasic
    );
    // It expires within the minute: the next login registers again, and Basic auth works.
    auth.login().await.unwrap();
    assert_eq!(s.fake.log().registrations.len(), 2);
    s.fake.set(|c| c.secret_expires_in = Some(3600));
    auth.login().await.unwrap();
    auth.login().await.unwrap();
    assert_eq!(
        s.fake.log().registrations.len(),
        3,
        "a long-lived secret is kept"
    );
}

#[tokio::test]
async fn logout_revokes_both_tokens_and_deletes_the_record() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(headless());
    auth.login().await.unwrap();
    let rec = s.store.find(&s.fake.mcp_url()).unwrap().remove(0);
    let tokens = rec.tokens.unwrap();
    let report = auth.logout().await.unwrap();
    assert_eq!((report.revoked, report.deleted), (2, 1), "{report:?}");
    let revoked = s.fake.log().revoked.clone();
    assert_eq!(revoked[0], tokens.refresh_token.unwrap().expose());
    assert_eq!(revoked[1], tokens.access_token.expose());
    assert!(s.store.find(&s.fake.mcp_url()).unwrap().is_empty());
}

#[tokio::test]
async fn without_login_permission_a_missing_login_is_a_clear_error() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(ClientOptions {
        login: LoginMode::Never,
        ..ClientOptions::default()
    });
    let err = auth.access_token().await.unwrap_err().to_string();
    assert!(err.contains("mcp-oauth login"), "{err}");
}

#[tokio::test]
async fn headless_login_refuses_unsafe_redirects() {
    let s = setup(Config::default()).await;
    let evil = url::Url::parse(&s.fake.url("/evil")).unwrap();
    for target in [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "http://example.com/login",
        "data:text/html,hi",
    ] {
        s.fake.set(|c| c.evil_target = target.into());
        let err = mcp_oauth_client::login::headless::run(
            &evil,
            "http://127.0.0.1:9/callback",
            "u",
            &Secret::new("p"),
            mcp_oauth_client::UrlPolicy::STRICT,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::UnsafeUrl { .. } | Error::BadUrl { .. }),
            "{target}: {err}"
        );
    }
}

#[tokio::test]
async fn pre_registered_credentials_come_first() {
    let s = setup(Config::default()).await;
    s.fake.add_client("admin-made-client", Some("s3cret"));
    let mut opts = headless();
    opts.registration.client_id = Some("admin-made-client".into());
    opts.registration.client_secret = Some(Secret::new("s3cret"));
    let auth = s.authorizer(opts);
    assert!(
        call(&auth, "hello")
            .await
            .unwrap()
            .contains("admin-made-client")
    );
    let log = s.fake.log();
    assert!(log.registrations.is_empty(), "no dynamic registration");
    assert_eq!(log.authorize[0]["client_id"], "admin-made-client");
    assert!(
        log.token.iter().all(|t| !t.contains_key("client_secret")),
        "client_secret_basic: the secret goes in the Authorization header"
    );
}

#[tokio::test]
async fn a_client_metadata_document_url_is_used_where_supported() {
    let url = "https://app.example.com/oauth/client.json";
    let s = setup(Config {
        cimd: true,
        ..Config::default()
    })
    .await;
    let mut opts = headless();
    opts.registration.client_metadata_url = Some(url.into());
    let auth = s.authorizer(opts.clone());
    auth.login().await.unwrap();
    assert!(s.fake.log().registrations.is_empty());
    assert_eq!(s.fake.log().authorize[0]["client_id"], url);

    // Where it is not supported, dynamic registration takes over.
    let s = setup(Config::default()).await;
    s.authorizer(opts).login().await.unwrap();
    assert_eq!(s.fake.log().registrations.len(), 1);
}

#[tokio::test]
async fn a_2025_03_26_server_uses_the_default_endpoints_at_its_origin() {
    let s = setup(Config {
        legacy: true,
        ..Config::default()
    })
    .await;
    let auth = s.authorizer(headless());
    assert!(call(&auth, "hello").await.unwrap().starts_with("hello"));
    let rec = s.store.find(&s.fake.mcp_url()).unwrap().remove(0);
    assert_eq!(rec.key.issuer, s.fake.url(""), "the origin is the issuer");
    assert_eq!(rec.auth_server.token_endpoint, s.fake.url("/token"));
    assert_eq!(
        s.fake.log().registrations.len(),
        1,
        "registered at /register"
    );
}

#[tokio::test]
async fn an_unreadable_record_blocks_login_but_logout_deletes_it() {
    let s = setup(Config::default()).await;
    s.authorizer(headless()).login().await.unwrap();
    let rec = s.store.find(&s.fake.mcp_url()).unwrap().remove(0);
    let path = s.store.record_path(&rec.key);
    let before = std::fs::read(&path).unwrap();
    // The same directory opened with another key (e.g. MCP_OAUTH_STORE_KEY changed).
    let other = Arc::new(FileStore::with_key(s.store.dir(), StoreKey::random().unwrap()).unwrap());
    let auth = Authorizer::new(&s.fake.mcp_url(), other.clone(), headless()).unwrap();
    let err = auth.login().await.unwrap_err().to_string();
    assert!(
        err.contains(&path.display().to_string()) && err.contains("logout"),
        "{err}"
    );
    assert!(auth.access_token().await.is_err());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "left byte-for-byte unchanged"
    );
    let report = auth.logout().await.unwrap();
    assert_eq!(report.deleted, 1);
    assert!(
        !report.warnings.is_empty(),
        "says it could not revoke: {report:?}"
    );
    assert!(!path.exists());
}

#[tokio::test]
async fn the_token_endpoint_method_is_the_one_registration_named() {
    let s = setup(Config {
        secret_expires_in: Some(0),
        secret_method: "client_secret_post",
        ..Config::default()
    })
    .await;
    let auth = s.authorizer(headless());
    assert!(call(&auth, "hello").await.unwrap().starts_with("hello"));
    let log = s.fake.log();
    let exchange = &log.token[0];
    assert!(
        exchange.contains_key("client_secret"),
        "client_secret_post: the secret goes in the form"
    );
}

#[tokio::test]
async fn unreachable_and_unprotected_servers_are_clear_errors() {
    let s = setup(Config::default()).await;
    // Nothing listens on port 9 of the loopback interface.
    let auth = Authorizer::new("http://127.0.0.1:9/mcp", s.store.clone(), headless()).unwrap();
    let err = auth.login().await.unwrap_err().to_string();
    assert!(err.contains("cannot reach http://127.0.0.1:9/mcp"), "{err}");
    assert!(err.contains("Check the URL"), "{err}");
    // A URL that does not answer 401 (here: the fake's metadata route, which wants no token).
    let auth = Authorizer::new(
        &s.fake
            .url("/.well-known/oauth-protected-resource/api/v2/mcp-endpoint"),
        s.store.clone(),
        headless(),
    )
    .unwrap();
    let err = auth.login().await.unwrap_err().to_string();
    assert!(
        err.contains("instead of 401") && err.contains("MCP endpoint"),
        "{err}"
    );
    // Remote plain http is refused before anything is sent.
    let err = Authorizer::new("http://mcp.example.com/mcp", s.store.clone(), headless())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--insecure"), "{err}");
}

#[tokio::test]
async fn a_registration_refused_at_the_authorization_endpoint_is_redone_once() {
    let s = setup(Config::default()).await;
    let auth = s.authorizer(headless());
    auth.login().await.unwrap();
    s.fake.forget_clients();
    auth.login().await.unwrap();
    let log = s.fake.log();
    assert_eq!(log.registrations.len(), 2);
    assert_eq!(log.authorize.len(), 3, "login, refused attempt, retry");
}
