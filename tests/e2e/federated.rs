//! Sign-in through an upstream OpenID Connect provider (`[users] kind = "oidc"`) against the small
//! provider in [`crate::upstream_op`]: the whole flow to our token and `whoami`, the login page, and
//! `config check` validating discovery. The refusals are in `attack_federated`.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::mcp::McpClient;
use crate::processes::{TempDir, run_cli};
use crate::support::*;
use crate::upstream_op::{CLIENT_ID, CLIENT_SECRET, FakeOp};

/// The default upstream user: in the allowed domain, in the `admins` group.
pub fn ann() -> Value {
    json!({
        "sub": "upstream-user-1",
        "preferred_username": "ann",
        "name": "Ann Upstream",
        "email": "ann@example.com",
        "email_verified": true,
        "groups": ["admins"],
    })
}

/// `[users.oidc]` for `op`, with the client secret in `secret_line` (a `client_secret_*` key).
pub fn oidc_toml(op: &FakeOp, secret_line: &str) -> String {
    format!(
        r#"[users]
kind = "oidc"

[users.oidc]
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
{secret_line}
label = "Test SSO"
default_scopes = ["mcp:tools"]
scope_map = [{{ group = "admins", scopes = ["mcp:admin"] }}]
allowed_email_domains = ["example.com"]
allowed_groups = ["contractors"]
"#,
        issuer = op.base
    )
}

/// A server whose users sign in at `op` (the secret comes from a file, removed once read).
pub async fn start_federated(op: &FakeOp) -> TestServer {
    start_federated_with(op, "").await
}

/// [`start_federated`] with more `[users.oidc]` keys.
pub async fn start_federated_with(op: &FakeOp, more_keys: &str) -> TestServer {
    let dir = TempDir::new("mcp-oauth-oidc-secret");
    let file = dir.path().join("client-secret");
    std::fs::write(&file, format!("{CLIENT_SECRET}\n")).unwrap();
    let secret = format!("client_secret_file = \"{}\"\n{more_keys}", file.display());
    let users = oidc_toml(op, &secret);
    op.set(|b| b.user = ann());
    start_with(Options {
        users_toml: Some(users),
        ..Default::default()
    })
    .await
}

/// A sign-in sent upstream and back: the browser, our transaction, and the callback URL the
/// upstream sent the browser to (not followed yet).
pub struct AtCallback {
    pub browser: Client,
    pub tx: String,
    pub csrf: String,
    pub callback: String,
}

/// `/authorize` → login page → the upstream button → the upstream → its redirect to our callback.
pub async fn to_callback(s: &TestServer, op: &FakeOp, params: &[(String, String)]) -> AtCallback {
    let browser = browser();
    let (tx, csrf, html) = s.start_login(&browser, params).await;
    assert!(html.contains("Sign in with Test SSO"), "{html}");
    let r = browser
        .post(s.url("/login/upstream/oidc"))
        .form(&[("tx", tx.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let upstream = location(&r);
    assert!(
        upstream.starts_with(&format!("{}/authorize?", op.base)),
        "{upstream}"
    );
    let r = browser.get(&upstream).send().await.unwrap();
    assert!(r.status().is_redirection(), "{:?}", r.text().await);
    let callback = location(&r);
    assert!(
        callback.starts_with(&s.url("/login/callback/oidc?")),
        "{callback}"
    );
    AtCallback {
        browser,
        tx,
        csrf,
        callback,
    }
}

/// A refusal page: an error status, no redirect anywhere; returns its text.
pub async fn refusal_page(r: Response) -> String {
    assert!(
        r.status().is_client_error() || r.status().is_server_error(),
        "{}: the answer was accepted (our consent page followed)",
        r.status()
    );
    assert!(
        r.headers().get("location").is_none(),
        "a refusal never redirects"
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("<html"), "an HTML page: {html}");
    html
}

/// Nothing was issued on this transaction: it has no signed-in user, so consent refuses.
pub async fn nothing_issued(s: &TestServer, at: &AtCallback) {
    let r = s
        .post_consent(&at.browser, &at.tx, &at.csrf, "approve", false)
        .await;
    assert!(r.headers().get("location").is_none(), "no code");
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Not signed in") || html.contains("expired"),
        "{html}"
    );
}

/// Consent approved → code → our tokens.
pub async fn approve_and_exchange(s: &TestServer, at: &AtCallback, client_id: &str) -> Value {
    let r = s
        .post_consent(&at.browser, &at.tx, &at.csrf, "approve", false)
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let code = query_param(&location(&r), "code").expect("a code");
    let r = s.exchange(client_id, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn upstream_sign_in_reaches_our_token_and_whoami_with_group_scopes() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    let params = with(
        &s.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let at = to_callback(&s, &op, &params).await;

    // What we asked upstream: code flow, PKCE S256, a nonce, our state and our callback.
    let asked = op.authorize_requests().pop().unwrap();
    assert_eq!(asked["redirect_uri"], s.url("/login/callback/oidc"));
    assert_eq!(asked["scope"], "openid email profile");
    assert_eq!(asked["code_challenge"].len(), 43);
    assert!(asked["nonce"].len() >= 43 && asked["state"].len() >= 43);
    assert_ne!(asked["state"], "xyz-state", "never the client's state");

    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Allow access?"), "consent follows: {html}");
    assert!(html.contains("Ann Upstream"), "{html}");
    assert_eq!(op.authenticated_token_requests(), 1, "the secret was sent");

    let tokens = approve_and_exchange(&s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
    let token = tokens["access_token"].as_str().unwrap();
    let mut mcp = McpClient::new(&s.resource, Some(token));
    mcp.initialize().await.unwrap();
    let who = mcp.call("whoami", json!({})).await.unwrap()["structuredContent"].clone();
    assert_eq!(
        who["subject"], "oidc:upstream-user-1",
        "namespaced by the upstream name"
    );
    assert_eq!(who["scopes"], json!(["mcp:tools", "mcp:admin"]));
    assert_eq!(who["issuer"], s.base, "our token, from our issuer");

    // A user outside `admins` (admitted by group `contractors`) gets only the default scope.
    op.set(|b| {
        b.user = json!({"sub": "upstream-user-2", "groups": ["contractors"]});
    });
    let at = to_callback(&s, &op, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tokens = approve_and_exchange(&s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools");
}

#[tokio::test]
async fn the_login_page_offers_the_upstream_and_no_password_form() {
    let op = FakeOp::start().await;
    let s = start_federated(&op).await;
    let client_id = s.register_public().await;
    let b = browser();
    let (tx, csrf, html) = s.start_login(&b, &s.auth_params(&client_id)).await;
    // minijinja escapes `/` in attributes.
    assert!(
        html.contains("action=\"&#x2f;login&#x2f;upstream&#x2f;oidc\""),
        "{html}"
    );
    assert!(html.contains("Sign in with Test SSO"), "{html}");
    assert!(!html.contains("type=\"password\""), "{html}");
    // A password posted anyway is refused like a wrong one, and signs nobody in.
    let r = s.post_login(&b, &tx, &csrf, "ann", "anything").await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Invalid username or password")
    );
    // Starting an upstream sign-in is a form like any other: CSRF token and browser binding.
    for (client, token) in [(&b, "wrong"), (&browser(), csrf.as_str())] {
        let r = client
            .post(s.url("/login/upstream/oidc"))
            .form(&[("tx", tx.as_str()), ("csrf_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(refusal_page(r).await.contains("Request not verified"));
    }
    // An upstream this server does not have.
    let r = b
        .post(s.url("/login/upstream/nope"))
        .form(&[("tx", tx.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(refusal_page(r).await.contains("Unknown sign-in method"));
}

#[tokio::test]
async fn config_check_validates_discovery() {
    let op = FakeOp::start().await;
    let dir = TempDir::new("mcp-oauth-oidc-check");
    let cfg = dir.path().join("oidc.toml");
    let text = format!(
        "[server]\nbind = \"127.0.0.1:9100\"\n\n[storage]\nkind = \"memory\"\n\n{}",
        oidc_toml(&op, "client_secret_env = \"TEST_OIDC_CLIENT_SECRET\"")
    );
    std::fs::write(&cfg, text).unwrap();
    let env = [("TEST_OIDC_CLIENT_SECRET", CLIENT_SECRET)];
    let (ok, out, err) = run_cli(Some(&cfg), &["config", "check"], &env, None).await;
    assert!(ok && out.contains("configuration OK"), "{out}\n{err}");
    assert!(!out.contains(CLIENT_SECRET) && !err.contains(CLIENT_SECRET));

    // Discovery naming another issuer is refused, saying why.
    op.set(|b| b.discovery_issuer = Some("https://elsewhere.example".into()));
    let (ok, _, err) = run_cli(Some(&cfg), &["config", "check"], &env, None).await;
    assert!(
        !ok && err.contains("elsewhere.example") && err.contains("§4.3"),
        "{err}"
    );

    // The secret's variable missing: named, and --offline does not need the provider.
    let (ok, _, err) = run_cli(Some(&cfg), &["config", "check", "--offline"], &[], None).await;
    assert!(
        !ok && err.contains("TEST_OIDC_CLIENT_SECRET is not set"),
        "{err}"
    );

    // The shipped example is valid as written (its provider is not reachable from the tests).
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/oidc.toml");
    let (ok, out, err) = run_cli(
        Some(&example),
        &["config", "check", "--offline"],
        &[("MCP_OAUTH_OIDC_CLIENT_SECRET", "example")],
        None,
    )
    .await;
    assert!(ok && out.contains("configuration OK"), "{out}\n{err}");

    // The provider down.
    drop(op);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (ok, _, err) = run_cli(Some(&cfg), &["config", "check"], &env, None).await;
    assert!(!ok && err.contains("upstream"), "{err}");
}

#[tokio::test]
async fn a_key_rotated_upstream_is_fetched_again() {
    let op = FakeOp::start().await;
    let s = start_federated_with(&op, "jwks_refetch_interval = \"0s\"").await;
    let client_id = s.register_public().await;
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "first sign-in caches the keys");
    // The provider now signs with a key the cached JWKS does not have.
    op.rotate_key();
    let at = to_callback(&s, &op, &s.auth_params(&client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
}
