//! Sign-in through a real OpenID provider (`[users] kind = "oidc"`): panva's certified
//! `oidc-provider` (scripts/oidc-provider, its test profile), started on loopback by
//! `scripts/services/oidc_provider.sh`, which exports `MCP_OAUTH_TEST_OIDC_ISSUER`. With
//! `MCP_OAUTH_REQUIRE_SERVICES=1` its absence fails these tests; otherwise they say so and return.
//!
//! Each test registers its own client at the provider (RFC 7591) with the callback of a server it
//! starts on a fixed free port, then plays the browser through the provider's own login and consent
//! pages (OpenID Connect Core §3.1.2). What the small provider of [`crate::upstream_op`] cannot
//! show: discovery, keys, the ID token's signature, `iss`/`aud`/`nonce` and the RFC 9207 `iss`
//! parameter as a real, certified implementation produces them. The refusals it can produce on its
//! own: a user outside the allow-list, a tampered `state`, a replayed answer, a code redeemed by
//! another client, and a discovery document naming another issuer (`config check`).

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

use crate::federated::{AtCallback, approve_and_exchange, nothing_issued, refusal_page};
use crate::mcp::McpClient;
use crate::processes::{TempDir, free_port, run_cli};
use crate::support::*;

/// The provider's test accounts (scripts/oidc-provider/README.md): fixtures, loopback only.
const ALICE: (&str, &str) = ("alice", "alice-op-password");
const BOB: (&str, &str) = ("bob", "bob-op-password");
const MALLORY: (&str, &str) = ("mallory", "mallory-op-password");

/// The upstream's name here (the callback is `/login/callback/op`, subjects `op:<sub>`).
const NAME: &str = "op";

/// Redirects followed in one go at the provider; more is a loop.
const MAX_HOPS: usize = 12;

/// The provider's issuer, or `None` when it is not running and not required.
fn issuer() -> Option<String> {
    let required = std::env::var("MCP_OAUTH_REQUIRE_SERVICES").as_deref() == Ok("1");
    match std::env::var("MCP_OAUTH_TEST_OIDC_ISSUER") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                !required,
                "MCP_OAUTH_REQUIRE_SERVICES=1 but MCP_OAUTH_TEST_OIDC_ISSUER is not set \
                 (scripts/services/oidc_provider.sh sets it)"
            );
            eprintln!("skipped: no test OpenID provider (run scripts/test.sh)");
            None
        }
    }
}

/// Our client at the provider, registered for `redirect_uri`: (client_id, client_secret).
async fn register(issuer: &str, redirect_uri: &str) -> (String, String) {
    let r = http()
        .post(format!("{issuer}/reg"))
        .json(&json!({
            "client_name": "mcp-oauth e2e",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "client_secret_basic",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    )
}

/// `[users]` for the provider: allowed group `mcp-users`, `mcp-admins` → `mcp:admin`.
fn users_toml(issuer: &str, client_id: &str, secret_file: &std::path::Path) -> String {
    format!(
        r#"[users]
kind = "oidc"

[users.oidc]
issuer = "{issuer}"
client_id = "{client_id}"
client_secret_file = "{secret}"
name = "{NAME}"
label = "Real OP"
scopes = ["openid", "email", "profile", "groups"]
default_scopes = ["mcp:tools"]
allowed_groups = ["mcp-users"]
scope_map = [{{ group = "mcp-admins", scopes = ["mcp:admin"] }}]
"#,
        secret = secret_file.display()
    )
}

/// A server on a free port whose users sign in at the provider, with its own registration there.
struct Federated {
    s: TestServer,
    issuer: String,
    client_id: String,
    _dir: TempDir,
}

async fn start(issuer: &str) -> Federated {
    let port = free_port().await;
    let (client_id, client_secret) = register(
        issuer,
        &format!("http://127.0.0.1:{port}/login/callback/{NAME}"),
    )
    .await;
    let dir = TempDir::new("mcp-oauth-real-op");
    let file = dir.path().join("client-secret");
    std::fs::write(&file, format!("{client_secret}\n")).unwrap();
    let s = start_with(Options {
        users_toml: Some(users_toml(issuer, &client_id, &file)),
        port: Some(port),
        ..Default::default()
    })
    .await;
    Federated {
        s,
        issuer: issuer.to_string(),
        client_id,
        _dir: dir,
    }
}

/// Follows redirects (GET) from `r` until a page; a redirect to `stop_at…` is returned unfollowed.
async fn follow(b: &Client, mut r: Response, stop_at: &str) -> Response {
    for _ in 0..MAX_HOPS {
        if !r.status().is_redirection() {
            return r;
        }
        let next = r.url().join(&location(&r)).unwrap().to_string();
        if next.starts_with(stop_at) {
            return r;
        }
        r = b.get(&next).send().await.unwrap();
    }
    panic!("more than {MAX_HOPS} redirects");
}

/// The `action` of the provider's form whose action ends with `suffix`.
fn form_action(html: &str, suffix: &str) -> String {
    html.split("action=\"")
        .skip(1)
        .map(|rest| &rest[..rest.find('"').unwrap()])
        .find(|a| a.ends_with(suffix))
        .unwrap_or_else(|| panic!("no form posting to …{suffix} in {html}"))
        .to_string()
}

/// Our `/authorize` → our login page → "Sign in with Real OP" → the provider's login page (the
/// user's password) → its consent page (approved) → its redirect to our callback (not followed).
async fn to_callback(f: &Federated, (user, password): (&str, &str)) -> Started {
    let s = &f.s;
    let b = browser();
    let client_id = s.register_public().await;
    let params = with(
        &s.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let (tx, csrf, html) = s.start_login(&b, &params).await;
    assert!(html.contains("Sign in with Real OP"), "{html}");
    let r = b
        .post(s.url(&format!("/login/upstream/{NAME}")))
        .form(&[("tx", tx.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let callback_prefix = s.url(&format!("/login/callback/{NAME}?"));
    // The provider's login page.
    let page = follow(&b, r, &callback_prefix).await;
    assert_eq!(page.status(), StatusCode::OK);
    let login_url = page.url().clone();
    let html = page.text().await.unwrap();
    assert!(
        html.contains("type=\"password\"") && html.contains("name=\"login\""),
        "{html}"
    );
    let action = login_url.join(&form_action(&html, "/login")).unwrap();
    let r = b
        .post(action)
        .form(&[("login", user), ("password", password)])
        .send()
        .await
        .unwrap();
    // Its consent page, unless it already has this user's grant.
    let mut r = follow(&b, r, &callback_prefix).await;
    if r.status() == StatusCode::OK {
        let url = r.url().clone();
        let html = r.text().await.unwrap();
        let action = url.join(&form_action(&html, "/confirm")).unwrap();
        let confirmed = b
            .post(action)
            .form(&[("confirm", "yes")])
            .send()
            .await
            .unwrap();
        r = follow(&b, confirmed, &callback_prefix).await;
    }
    assert!(r.status().is_redirection(), "{:?}", r.text().await);
    let callback = r.url().join(&location(&r)).unwrap().to_string();
    assert!(callback.starts_with(&callback_prefix), "{callback}");
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(f.issuer.as_str()),
        "the provider names itself on its answer (RFC 9207)"
    );
    Started {
        at: AtCallback {
            browser: b,
            tx,
            csrf,
            callback,
        },
        client_id,
    }
}

/// A sign-in at the provider's callback, and the MCP client it was started for.
struct Started {
    at: AtCallback,
    client_id: String,
}

async fn whoami(s: &TestServer, token: &str) -> Value {
    let mut mcp = McpClient::new(&s.resource, Some(token));
    mcp.initialize().await.unwrap();
    mcp.call("whoami", json!({})).await.unwrap()["structuredContent"].clone()
}

#[tokio::test]
async fn a_real_provider_signs_users_in_with_their_group_scopes() {
    let Some(issuer) = issuer() else { return };
    let f = start(&issuer).await;
    let s = &f.s;

    // alice, in mcp-admins: her upstream identity, mcp:admin through the scope map.
    let Started { at, client_id } = to_callback(&f, ALICE).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Allow access?"), "consent follows: {html}");
    assert!(
        html.contains("Alice Admin"),
        "the provider's name claim: {html}"
    );
    let tokens = approve_and_exchange(s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
    let who = whoami(s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        who["subject"], "op:alice",
        "namespaced by the upstream name"
    );
    assert_eq!(who["scopes"], json!(["mcp:tools", "mcp:admin"]));
    assert_eq!(who["issuer"], s.base, "our token, from our issuer");

    // bob, in mcp-users only: asked for the same, he gets the default scope.
    let Started { at, client_id } = to_callback(&f, BOB).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(!html.contains("mcp:admin"), "never offered: {html}");
    let tokens = approve_and_exchange(s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools");
    let who = whoami(s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(who["subject"], "op:bob");
    assert_eq!(who["scopes"], json!(["mcp:tools"]));

    // No token of the provider's reached the MCP client: ours are JWTs from our issuer.
    let access = tokens["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["iss"], s.base);
    assert_ne!(claims["iss"], issuer);
}

#[tokio::test]
async fn a_user_outside_the_allowed_groups_is_refused_after_the_provider_signs_them_in() {
    let Some(issuer) = issuer() else { return };
    let f = start(&issuer).await;
    let Started { at, .. } = to_callback(&f, MALLORY).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(html.contains("not allowed to sign in here"), "{html}");
    nothing_issued(&f.s, &at).await;
}

#[tokio::test]
async fn a_tampered_or_replayed_answer_of_the_real_provider_is_refused() {
    let Some(issuer) = issuer() else { return };
    let f = start(&issuer).await;
    let s = &f.s;

    // A tampered state: not this browser's sign-in.
    let Started { at, .. } = to_callback(&f, ALICE).await;
    let state = query_param(&at.callback, "state").unwrap();
    let tampered = at.callback.replace(&state, &format!("{state}x"));
    let r = at.browser.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(refusal_page(r).await.contains("not recognised"));
    nothing_issued(s, &at).await;

    // The real answer, once; then replayed: refused, and only the first one counts.
    let Started { at, client_id } = to_callback(&f, ALICE).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(refusal_page(r).await.contains("not recognised"));
    let tokens = approve_and_exchange(s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
}

#[tokio::test]
async fn a_code_issued_to_another_client_is_refused_by_the_real_provider() {
    let Some(issuer) = issuer() else { return };
    let f = start(&issuer).await;
    // A second server, registered as another client at the same provider, is handed the first
    // server's (unused) code inside its own sign-in's answer (code injection): the provider will
    // not redeem a code issued to another client, and our page says so.
    let Started { at, .. } = to_callback(&f, BOB).await;
    let other = start(&issuer).await;
    let Started { at: other_at, .. } = to_callback(&other, BOB).await;
    // The other server's own sign-in, but carrying the first server's code.
    let code = query_param(&at.callback, "code").unwrap();
    let theirs = query_param(&other_at.callback, "code").unwrap();
    let swapped = other_at.callback.replace(&theirs, &code);
    let r = other_at.browser.get(&swapped).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(html.contains("refused to redeem"), "{html}");
    nothing_issued(&other.s, &other_at).await;
    assert_ne!(f.client_id, other.client_id);
}

#[tokio::test]
async fn config_check_validates_the_real_providers_discovery() {
    let Some(issuer) = issuer() else { return };
    let dir = TempDir::new("mcp-oauth-real-op-check");
    let secret_file = dir.path().join("client-secret");
    let port = free_port().await;
    let (client_id, client_secret) = register(
        &issuer,
        &format!("http://127.0.0.1:{port}/login/callback/{NAME}"),
    )
    .await;
    std::fs::write(&secret_file, format!("{client_secret}\n")).unwrap();
    let write = |issuer: &str| {
        let cfg = dir.path().join("oidc.toml");
        std::fs::write(
            &cfg,
            format!(
                "[server]\nbind = \"127.0.0.1:{port}\"\nissuer = \"http://127.0.0.1:{port}\"\n\n\
                 [storage]\nkind = \"memory\"\n\n{}",
                users_toml(issuer, &client_id, &secret_file)
            ),
        )
        .unwrap();
        cfg
    };
    let (ok, out, err) = run_cli(Some(&write(&issuer)), &["config", "check"], &[], None).await;
    assert!(ok && out.contains("configuration OK"), "{out}\n{err}");
    assert!(!out.contains(&client_secret) && !err.contains(&client_secret));

    // The issuer written with a trailing slash: the provider's discovery names the issuer without
    // one, and an issuer must match exactly (OpenID Connect Discovery §4.3).
    let (ok, _, err) = run_cli(
        Some(&write(&format!("{issuer}/"))),
        &["config", "check"],
        &[],
        None,
    )
    .await;
    assert!(!ok && err.contains("§4.3"), "{err}");
}
