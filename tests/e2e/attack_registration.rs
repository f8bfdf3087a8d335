//! Issue 8 §1 attacks: no anonymous path to a privileged token, bounded registration metadata,
//! machine tokens that look like machine tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp::McpClient;
use crate::support::*;

/// The reported attack: anonymous registration of a `client_credentials` client, then a token with
/// every scope of the resource, then the demo's admin tool.
#[tokio::test]
async fn attack_anonymous_client_credentials_admin_token() {
    let s = start().await;
    let r = s
        .register(json!({"client_name": "robot", "grant_types": ["client_credentials"]}))
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    if status == StatusCode::CREATED {
        // Carry the attack through, to show what it gets.
        let id = body["client_id"].as_str().unwrap();
        let secret = body["client_secret"].as_str().unwrap();
        let t = http()
            .post(s.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "mcp:tools mcp:admin"),
            ])
            .send()
            .await
            .unwrap();
        let tok: Value = t.json().await.unwrap();
        let mut mcp = McpClient::new(&s.resource, tok["access_token"].as_str());
        mcp.initialize().await.ok();
        let stats = mcp.call("admin_stats", json!({})).await;
        panic!(
            "anonymous client_credentials registration accepted; token scope {:?}; admin_stats \
             answered: {}",
            tok["scope"],
            stats.is_ok()
        );
    }
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_client_metadata", "{body}");
}

/// A `client_credentials` client with no scope allow-list gets no scope, never "all".
#[tokio::test]
async fn attack_client_credentials_without_allow_list_gets_every_scope() {
    let s = start().await;
    let (id, secret) = admin_client(&s, json!({"grant_types": ["client_credentials"]})).await;
    let r = http()
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "mcp:tools mcp:admin"),
        ])
        .send()
        .await
        .unwrap();
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope"),
        "a client without an allow-list must not get scopes"
    );
    // With no scope requested, the token carries none.
    let r = http()
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["scope"].as_str().unwrap_or("").is_empty(),
        "no allow-list, no scope: {v}"
    );
}

/// A machine token names the client as its subject, carries no user claims, and the demo's
/// `whoami` says it is talking to a client.
#[tokio::test]
async fn attack_machine_token_looks_like_a_user() {
    let s = start().await;
    let (id, secret) = admin_client(
        &s,
        json!({"grant_types": ["client_credentials"], "scope": "mcp:tools"}),
    )
    .await;
    let r = http()
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools")])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let token = v["access_token"].as_str().unwrap();
    let mut mcp = McpClient::new(&s.resource, Some(token));
    mcp.initialize().await.unwrap();
    let who = mcp.call("whoami", json!({})).await.unwrap();
    let text = who.to_string();
    assert!(text.contains(&id), "{text}");
    assert!(
        text.contains(r#"\"kind\":\"client\""#) || text.contains(r#""kind":"client""#),
        "whoami must say it is a client: {text}"
    );
    let intro = introspect_as_resource_server(&s, token).await;
    assert_eq!(intro["sub"], id.as_str(), "{intro}");
    assert!(intro.get("username").is_none(), "no user claims: {intro}");
}

/// Registration metadata is bounded: count and length of redirect URIs, total size, control and
/// bidi characters in `client_name`, https-only informational URIs.
#[tokio::test]
async fn attack_unbounded_registration_metadata() {
    let s = start().await;
    let base = || {
        json!({
            "client_name": "x",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        })
    };
    let many: Vec<String> = (0..100)
        .map(|i| format!("http://127.0.0.1:{}/cb", 1000 + i))
        .collect();
    let long = format!("https://app.example.com/{}", "a".repeat(3000));
    let cases: Vec<(&str, Value)> = vec![
        ("100 redirect URIs", {
            let mut b = base();
            b["redirect_uris"] = json!(many);
            b
        }),
        ("a 3000-character redirect URI", {
            let mut b = base();
            b["redirect_uris"] = json!([long]);
            b
        }),
        ("a 200 KB contacts list", {
            let mut b = base();
            b["contacts"] = json!(vec!["a@example.com".repeat(10); 1500]);
            b
        }),
        ("a bidi override in client_name", {
            let mut b = base();
            b["client_name"] = json!("Good app\u{202E}gpj.exe");
            b
        }),
        ("a control character in client_name", {
            let mut b = base();
            b["client_name"] = json!("line\u{0007}bell");
            b
        }),
        ("an http logo_uri", {
            let mut b = base();
            b["logo_uri"] = json!("http://evil.example/logo.png");
            b
        }),
        ("a javascript: client_uri", {
            let mut b = base();
            b["client_uri"] = json!("javascript:alert(1)");
            b
        }),
        ("an http tos_uri", {
            let mut b = base();
            b["tos_uri"] = json!("http://evil.example/tos");
            b
        }),
        ("an http policy_uri", {
            let mut b = base();
            b["policy_uri"] = json!("http://evil.example/policy");
            b
        }),
    ];
    let mut accepted = Vec::new();
    for (what, body) in cases {
        let r = s.register(body).await;
        let status = r.status();
        if status == StatusCode::CREATED {
            accepted.push(what);
            continue;
        }
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::PAYLOAD_TOO_LARGE,
            "{what}: {status} {v}"
        );
        assert!(
            v["error"] == "invalid_client_metadata"
                || v["error"] == "invalid_redirect_uri"
                || v["error"] == "invalid_request",
            "{what}: {v}"
        );
    }
    assert!(accepted.is_empty(), "accepted: {accepted:?}");
}

/// A registration that never completed a grant is deleted after `[registration]
/// unused_client_ttl`; one that did is kept.
#[tokio::test]
async fn attack_anonymous_registrations_fill_the_database() {
    let s = start_with(Options {
        env: vec![
            ("MCP_OAUTH__REGISTRATION__UNUSED_CLIENT_TTL", "4s".into()),
            ("MCP_OAUTH__SERVER__PURGE_INTERVAL", "1s".into()),
        ],
        ..Default::default()
    })
    .await;
    let used = s.register_public().await;
    let code = s.obtain_code(&used).await;
    assert_eq!(s.exchange(&used, &code).await.status(), StatusCode::OK);
    let unused = s.register_public().await;
    tokio::time::sleep(std::time::Duration::from_millis(6500)).await;
    let clients = s.state.provider.clients();
    assert!(
        clients.get_client(&unused).await.unwrap().is_none(),
        "an unused anonymous registration is purged"
    );
    assert!(
        clients.get_client(&used).await.unwrap().is_some(),
        "a client with a grant is kept"
    );
}

const IAT: &str = "test-initial-access-token-0123456789abcdef";

/// RFC 7591 §3: the initial access token admits `client_credentials` registrations; a wrong one is
/// `invalid_token`, never a silent anonymous registration; with open registration off, every
/// registration needs it.
#[tokio::test]
async fn initial_access_token_gates_machine_clients_and_closed_registration() {
    let s = start_with(Options {
        env: vec![("MCP_OAUTH__REGISTRATION__INITIAL_ACCESS_TOKEN", IAT.into())],
        ..Default::default()
    })
    .await;
    let machine = json!({"client_name": "robot", "grant_types": ["client_credentials"], "scope": "mcp:tools"});
    let register_with = |token: Option<&'static str>, body: Value| {
        let mut req = http().post(s.url("/register")).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let r = register_with(Some(IAT), machine.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    let (id, secret) = (
        v["client_id"].as_str().unwrap(),
        v["client_secret"].as_str().unwrap(),
    );
    let t = http()
        .post(s.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let tok: Value = t.json().await.unwrap();
    assert_eq!(
        tok["scope"], "mcp:tools",
        "its allow-list is its default: {tok}"
    );

    let r = register_with(
        Some("test-initial-access-token-0123456789abcdeX"),
        machine.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert_eq!(error_of(r).await.1, "invalid_token");

    let closed = start_with(Options {
        env: vec![
            ("MCP_OAUTH__REGISTRATION__INITIAL_ACCESS_TOKEN", IAT.into()),
            ("MCP_OAUTH__REGISTRATION__OPEN", "false".into()),
        ],
        ..Default::default()
    })
    .await;
    let public = json!({
        "client_name": "x",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    });
    let (status, err) = error_of(closed.register(public.clone()).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );
    let r = http()
        .post(closed.url("/register"))
        .bearer_auth(IAT)
        .json(&public)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// `clients add --grant client_credentials --scope …` is how an administrator makes a machine
/// client; its token carries exactly the allow-list.
#[tokio::test]
async fn administrators_create_machine_clients_with_an_allow_list() {
    let dir = crate::processes::TempDir::new("mcp-oauth-clients-add");
    let (s, cfg) = crate::attack_grants::sqlite_server(&dir, vec![]).await;
    let (ok, out, err) = crate::processes::run_cli(
        Some(&cfg),
        &[
            "clients",
            "add",
            "--name",
            "robot",
            "--grant",
            "client_credentials",
            "--scope",
            "mcp:tools",
        ],
        &[],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .to_string()
    };
    let (id, secret) = (field("client_id:"), field("client_secret:"));
    let ask = |scope: &'static str| {
        http()
            .post(s.url("/token"))
            .basic_auth(id.clone(), Some(secret.clone()))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
    };
    let v: Value = ask("mcp:tools").await.unwrap().json().await.unwrap();
    assert_eq!(v["scope"], "mcp:tools");
    assert_eq!(
        error_of(ask("mcp:admin").await.unwrap()).await.1,
        "invalid_scope"
    );
    // The token endpoint records the use in the background: wait for it (bounded).
    let mut out = String::new();
    for _ in 0..40 {
        let (ok, listed, _) =
            crate::processes::run_cli(Some(&cfg), &["clients", "list"], &[], None).await;
        assert!(ok, "{listed}");
        out = listed;
        let row = out
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_default();
        if !row.contains("  never  ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let row = out
        .lines()
        .find(|l| l.starts_with(id.as_str()))
        .unwrap_or_default();
    assert!(
        row.contains("  administrator  ") && row.contains("  mcp:tools  "),
        "{out}"
    );
    let today = mcp_oauth::cli::admin::format_time(mcp_oauth_provider::unix_now());
    assert!(
        row.matches(&today[..10]).count() == 2,
        "created and last used today (a token was issued): {out}"
    );
}
