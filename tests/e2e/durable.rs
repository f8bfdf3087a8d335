//! Durable storage end to end: restarts keep everything, two servers on one Postgres act as one, a
//! database outage answers 503 and heals, bad input leaves stored state alone.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::processes::*;
use crate::support::*;

fn sqlite_storage(dir: &TempDir) -> String {
    format!("kind = \"sqlite\"\ndata_dir = \"{}\"", dir.path().display())
}

#[tokio::test]
async fn sqlite_restart_keeps_users_clients_keys_and_tokens() {
    let dir = TempDir::new("mcp-oauth-restart");
    let server = start_with(Options {
        storage: Some(sqlite_storage(&dir)),
        ..Default::default()
    })
    .await;
    let port = server.port();
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let tokens: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let jwks_before: Value = http()
        .get(server.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    server.stop().await;

    let server = start_with(Options {
        storage: Some(sqlite_storage(&dir)),
        port: Some(port),
        ..Default::default()
    })
    .await;
    let jwks_after: Value = http()
        .get(server.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        jwks_before, jwks_after,
        "the signing key survives the restart"
    );
    assert_eq!(
        server.introspect(&access).await["active"],
        true,
        "a token issued before the restart still verifies"
    );
    assert_eq!(
        server.refresh(&client_id, &refresh).await.status(),
        StatusCode::OK,
        "refresh works after restart"
    );
    // The client and the user are still there: a new flow completes.
    let code = server.obtain_code(&client_id).await;
    assert_eq!(
        server.exchange(&client_id, &code).await.status(),
        StatusCode::OK
    );
    let kek = std::fs::read_to_string(dir.path().join("key-encryption-key")).unwrap();
    let db = std::fs::read(dir.path().join("mcp-oauth.db")).unwrap();
    assert!(
        !db.windows(kek.trim().len())
            .any(|w| w == kek.trim().as_bytes()),
        "the KEK is not in the database"
    );
    assert!(
        !db.windows(refresh.len()).any(|w| w == refresh.as_bytes()),
        "refresh tokens are stored only hashed"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_input_never_changes_stored_state() {
    let dir = TempDir::new("mcp-oauth-bad-input");
    let server = start_with(Options {
        storage: Some(sqlite_storage(&dir)),
        ..Default::default()
    })
    .await;
    let store = &server.state.provider;
    let clients_before = store.clients().list_clients().await.unwrap().len();
    for body in [
        serde_json::json!({"redirect_uris": ["http://evil.example/cb"]}),
        serde_json::json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}),
    ] {
        assert_eq!(
            server.register(body).await.status(),
            StatusCode::BAD_REQUEST
        );
    }
    assert_eq!(
        store.clients().list_clients().await.unwrap().len(),
        clients_before,
        "refused registrations store nothing"
    );

    let users_before = store.user_store().unwrap().list_users().await.unwrap();
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    for _ in 0..3 {
        let r = server.post_login(&b, &tx, &csrf, USER, "wrong").await;
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Invalid username or password.")
        );
    }
    assert_eq!(
        store.user_store().unwrap().list_users().await.unwrap(),
        users_before,
        "failed logins change no account"
    );
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert!(
        r.text().await.unwrap().contains("Allow access?"),
        "the transaction survives failed attempts"
    );
}

#[tokio::test]
async fn postgres_outage_answers_503_and_recovers() {
    let Some(schema) = pg_schema().await else {
        return;
    };
    let url = pg_url();
    pg_migrate(&url, &schema).await;
    let pg_addr: std::net::SocketAddr = {
        let u = url::Url::parse(&url).unwrap();
        let host = u.host_str().unwrap();
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{host}:{}", u.port().unwrap_or(5432))
            .parse()
            .unwrap()
    };
    let proxy = FlakyProxy::start(pg_addr).await;
    let mut proxied = url::Url::parse(&url).unwrap();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let storage = format!("kind = \"postgres\"\nurl = \"{proxied}\"\nsearch_path = \"{schema}\"");
    let server = start_with(Options {
        storage: Some(storage),
        env: vec![(
            "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
        )],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;

    proxy.cut();
    let started = std::time::Instant::now();
    let r = server
        .register(
            serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable".into()
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the outage is reported promptly"
    );
    let r = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "x"),
            ("client_id", &client_id),
        ])
        .await;
    assert_eq!(
        error_of(r).await,
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable".into()
        )
    );
    let page = server
        .authorize(&http(), &server.auth_params(&client_id))
        .await;
    assert_eq!(
        page.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "/authorize shows an unavailable page"
    );
    let meta = http()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        meta.status(),
        StatusCode::OK,
        "endpoints that need no database keep working"
    );

    proxy.restore();
    let mut recovered = false;
    for _ in 0..40 {
        let r = server.register(serde_json::json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})).await;
        if r.status() == StatusCode::CREATED {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "the server recovers by itself when the database returns"
    );
    let code = server.obtain_code(&client_id).await;
    assert_eq!(
        server.exchange(&client_id, &code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_servers_on_one_postgres_act_as_one() {
    let Some(schema) = pg_schema().await else {
        return;
    };
    let url = pg_url();
    pg_migrate(&url, &schema).await;
    let storage = format!("kind = \"postgres\"\nurl = \"{url}\"\nsearch_path = \"{schema}\"");
    let (port_a, port_b) = (free_port().await, free_port().await);
    let dir = TempDir::new("mcp-oauth-two");
    let (cfg_a, cfg_b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    // One issuer for both, as behind a load balancer.
    std::fs::write(&cfg_a, process_config(port_a, port_a, &storage)).unwrap();
    std::fs::write(&cfg_b, process_config(port_a, port_b, &storage)).unwrap();
    let env = [
        (
            "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
            "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=",
        ),
        ("MCP_OAUTH__TOKENS__REFRESH_REUSE_GRACE", "1s"),
    ];
    let a = ServeProcess::start(&cfg_a, port_a, port_a, &env).await;
    let b = ServeProcess::start(&cfg_b, port_b, port_a, &env).await;

    let jwks_a: Value = http()
        .get(a.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_b: Value = http()
        .get(b.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks_a, jwks_b, "both publish the same JWKS");

    // Register at A, start the authorization at A, sign in at B, consent at A, redeem at B.
    let client_id = a.register_public().await;
    let browser = browser();
    let r = a.authorize(&browser, &a.auth_params(&client_id)).await;
    let login = location(&r);
    let page = browser
        .get(b.url(&login))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (tx, csrf) = (input_value(&page, "tx"), input_value(&page, "csrf_token"));
    assert!(
        b.post_login(&browser, &tx, &csrf, USER, PASSWORD)
            .await
            .text()
            .await
            .unwrap()
            .contains("Allow access?")
    );
    let r = a.post_consent(&browser, &tx, &csrf, "approve", false).await;
    let code = query_param(&location(&r), "code").unwrap();
    let r = b.exchange(&client_id, &code).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a code issued by one server is redeemed at the other"
    );
    let tokens: Value = r.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh1 = tokens["refresh_token"].as_str().unwrap().to_string();

    // Revoked at A → inactive at B.
    assert_eq!(b.introspect(&access).await["active"], true);
    let r = http()
        .post(a.url("/revoke"))
        .form(&[
            ("token", access.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        b.introspect(&access).await["active"],
        false,
        "a token revoked at one is inactive at the other"
    );

    // Rotate at A, reuse the old refresh token at B after the grace window: the family dies for both.
    let rotated: Value = a.refresh(&client_id, &refresh1).await.json().await.unwrap();
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        error_of(b.refresh(&client_id, &refresh1).await).await.1,
        "invalid_grant"
    );
    assert_eq!(
        error_of(a.refresh(&client_id, &refresh2).await).await.1,
        "invalid_grant",
        "reuse detected at B revokes the family at A"
    );
    assert_eq!(
        a.introspect(rotated["access_token"].as_str().unwrap())
            .await["active"],
        false
    );

    a.terminate().await;
    b.terminate().await;
}

#[tokio::test]
async fn a_key_rotated_elsewhere_is_accepted_at_once() {
    use mcp_oauth::oauth::key_encryption::KeyEncryptionKey;
    use mcp_oauth::oauth::keys::KeyManager;
    use mcp_oauth_provider::{AccessTokenRecord, unix_now};

    let dir = TempDir::new("mcp-oauth-rotate");
    let server = start_with(Options {
        storage: Some(sqlite_storage(&dir)),
        ..Default::default()
    })
    .await;
    let old_kid = server.state.keys.active_kid().unwrap();

    // Another process (`mcp-oauth keys rotate`, or a second server) rotates the shared key and
    // signs with it; this server has not reloaded yet.
    let other = KeyManager::new(
        jsonwebtoken::Algorithm::EdDSA,
        KeyEncryptionKey::load_or_create_file(dir.path()).unwrap(),
    );
    let keys = server.state.provider.keys();
    let t = unix_now();
    let new_kid = other.rotate(keys, t, t + 3600).await.unwrap();
    assert_ne!(new_kid, old_kid);
    let jti = format!("rotated-{new_kid}");
    let claims = serde_json::json!({
        "iss": server.base, "sub": USER, "aud": server.resource, "client_id": "c",
        "scope": "mcp:tools", "exp": t + 600, "iat": t, "nbf": t, "jti": jti,
    });
    let token = other.sign("at+jwt", &claims).unwrap();
    let record = AccessTokenRecord {
        jti,
        family_id: "f".into(),
        client_id: "c".into(),
        subject: USER.into(),
        scopes: vec!["mcp:tools".into()],
        resource: server.resource.clone(),
        issued_at: t,
        expires_at: t + 600,
        revoked: false,
    };
    server
        .state
        .provider
        .tokens()
        .insert_tokens(record, None)
        .await
        .unwrap();

    assert_eq!(
        server.introspect(&token).await["active"],
        true,
        "unknown kid → keys reloaded"
    );
    let jwks: Value = http()
        .get(server.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&new_kid.as_str()) && kids.contains(&old_kid.as_str()),
        "{kids:?}"
    );
    server.stop().await;
}
