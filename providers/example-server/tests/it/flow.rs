//! The authorization-code flow against the example binary, through the MCP client library.

use std::sync::Arc;
use std::time::Duration;

use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::store::{FileStore, StoreKey};
use mcp_oauth_client::{Authorizer, ClientOptions, Secret, connect};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

use crate::support::{ALICE, BOB, Site, TempDir};

/// An authorizer that signs in headless as `user`, asking for both demo scopes, with its own
/// encrypted token store in `store_dir`.
fn authorizer(site: &Site, store_dir: &TempDir, user: (&str, &str)) -> Authorizer {
    let store = FileStore::with_key(store_dir.path(), StoreKey::random().unwrap()).unwrap();
    Authorizer::new(
        &site.resource(),
        Arc::new(store),
        ClientOptions {
            login: LoginMode::Headless {
                username: user.0.into(),
                password: Secret::new(user.1),
            },
            scopes: Some(vec!["mcp:tools".into(), "mcp:admin".into()]),
            callback_timeout: Duration::from_secs(20),
            // A user without mcp:admin would otherwise retry the sign-in for it.
            max_step_ups: 0,
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

/// Calls `tool` over a fresh MCP session: (is_error, the result as JSON).
async fn call(auth: &Authorizer, tool: &str) -> Result<Value, mcp_oauth_client::Error> {
    let mcp = connect(auth).await?;
    let result = mcp
        .call_tool(CallToolRequestParams::new(tool.to_string()))
        .await
        .map_err(|e| mcp_oauth_client::session::mcp_error(auth, &e));
    let _ = mcp.cancel().await;
    let result = result?;
    if let Some(s) = result.structured_content {
        return Ok(s);
    }
    let text: String = result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn granted_scopes(auth: &Authorizer) -> Vec<String> {
    auth.record()
        .await
        .unwrap()
        .and_then(|r| r.tokens)
        .expect("tokens after the login")
        .scopes
}

#[tokio::test]
async fn htpasswd_users_log_in_and_get_the_scopes_of_their_groups() {
    let site = Site::new().await;
    let server = site.serve().await;
    let run = async {
        // alice (bcrypt, group admins): discovery → registration (a loopback redirect, on the
        // allow-list) → PKCE → headless sign-in → token → whoami.
        let store = TempDir::new("mcp-oauth-example-store");
        let alice = authorizer(&site, &store, ALICE);
        let who = call(&alice, "whoami").await.unwrap();
        assert_eq!(who["subject"], ALICE.0, "{who}");
        assert_eq!(who["issuer"], site.base(), "{who}");
        let scopes = granted_scopes(&alice).await;
        assert!(
            scopes.contains(&"mcp:admin".to_string()) && scopes.contains(&"mcp:tools".to_string()),
            "admins may grant mcp:admin: {scopes:?}"
        );
        let stats = call(&alice, "admin_stats").await.unwrap();
        assert!(!stats.is_null(), "{stats}");

        // bob (argon2id, in no listed group): only the "*" scopes.
        let store = TempDir::new("mcp-oauth-example-store");
        let bob = authorizer(&site, &store, BOB);
        let who = call(&bob, "whoami").await.unwrap();
        assert_eq!(who["subject"], BOB.0, "{who}");
        assert_eq!(granted_scopes(&bob).await, ["mcp:tools"]);
        let err = call(&bob, "admin_stats").await.unwrap_err().to_string();
        assert!(err.contains("mcp:admin"), "bob cannot use mcp:admin: {err}");

        // A wrong password is refused (the headless login reports the sign-in page's error).
        let store = TempDir::new("mcp-oauth-example-store");
        let wrong = authorizer(&site, &store, (ALICE.0, "not-her-password"));
        assert!(call(&wrong, "whoami").await.is_err());
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("the flow took too long: {}", server.stderr.lock().unwrap()));
    server.stop().await;
}

#[tokio::test]
async fn a_registration_off_the_redirect_allow_list_is_refused() {
    let site = Site::new().await;
    let server = site.serve().await;
    let http = reqwest::Client::new();
    let register = |uri: &str| {
        http.post(format!("{}/register", site.base())).json(&json!({
            "client_name": "example-it",
            "redirect_uris": [uri],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }))
    };
    let refused = register("https://evil.example.net/callback")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or("")
            .contains("evil.example.net"),
        "names the host: {body}"
    );
    // A host on the list is admitted.
    let admitted = register("https://app.example.com/callback")
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status(), 201, "{}", admitted.text().await.unwrap());
    server.stop().await;
}

#[tokio::test]
async fn a_user_removed_from_the_file_loses_their_grant_at_the_next_refresh() {
    let site = Site::new().await;
    let server = site
        .serve_with(&[("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", "2s")])
        .await;
    let run = async {
        let (store_a, store_b) = (
            TempDir::new("mcp-oauth-example-store"),
            TempDir::new("mcp-oauth-example-store"),
        );
        let alice = authorizer(&site, &store_a, ALICE);
        let bob = authorizer(&site, &store_b, BOB);
        let first_alice = alice.access_token().await.unwrap();
        let first_bob = bob.access_token().await.unwrap();
        // alice leaves the file; bob stays. The plugin sees it within a second.
        let file = site.dir.path().join("users.htpasswd");
        let kept: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("alice:"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&file, kept).unwrap();
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        // bob's expired token is refreshed (check_subject: Active) ...
        let refreshed = bob.access_token().await.unwrap();
        assert_ne!(refreshed.expose(), first_bob.expose());
        assert_eq!(call(&bob, "whoami").await.unwrap()["subject"], BOB.0);
        // ... alice's is not (check_subject: Gone), so the client signs in again, which the file
        // no longer allows.
        let err = alice
            .access_token()
            .await
            .expect_err("alice's grant ended")
            .to_string();
        assert!(err.contains("password is wrong"), "{err}");
        drop(first_alice);
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .unwrap_or_else(|_| panic!("took too long: {}", server.stderr.lock().unwrap()));
    server.stop().await;
}
