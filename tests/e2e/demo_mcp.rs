//! `mcp-oauth demo-mcp`: the demo MCP server on its own port, trusting the authorization server
//! (started in the same process on another port) through its JWKS or through introspection.

use std::time::Duration;

use mcp_oauth::cli::demo_mcp::{DemoMcpOptions, VerifierChoice, serve_on};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::mcp::{McpClient, challenge};
use crate::support::*;

/// The authorization server, declaring the demo's URL as a resource, and the demo's listener.
struct Pair {
    server: TestServer,
    demo_url: String,
    demo_base: String,
    listener: Option<TcpListener>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

async fn start_pair() -> Pair {
    install_crypto_provider();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let demo_base = format!("http://{}", listener.local_addr().unwrap());
    let demo_url = format!("{demo_base}/mcp");
    let server = start_with(Options {
        extra_resource: Some(demo_url.clone()),
        ..Default::default()
    })
    .await;
    Pair {
        server,
        demo_url,
        demo_base,
        listener: Some(listener),
        stop: None,
    }
}

impl Pair {
    /// Runs the standalone demo with `verifier` until the pair is dropped.
    async fn run_demo(&mut self, verifier: VerifierChoice) {
        let options = DemoMcpOptions {
            issuer: self.server.base.clone(),
            resource: self.demo_url.clone(),
            scopes: vec!["mcp:tools".into(), "mcp:admin".into()],
            verifier,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        };
        let listener = self.listener.take().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        tokio::spawn(async move {
            serve_on(listener, options, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        // The demo reads the authorization server's metadata before it answers.
        for _ in 0..100 {
            if http()
                .get(format!(
                    "{}/.well-known/oauth-protected-resource",
                    self.demo_base
                ))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the demo did not start");
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

async fn whoami(url: &str, token: &str) -> Result<Value, reqwest::Response> {
    let mut mcp = McpClient::new(url, Some(token));
    mcp.initialize().await?;
    Ok(mcp.call("whoami", json!({})).await?["structuredContent"].clone())
}

#[tokio::test]
async fn jwks_verifier_accepts_tokens_for_the_demo_only() {
    let mut pair = start_pair().await;
    pair.run_demo(VerifierChoice::Jwks {
        verified_cache_entries: mcp_oauth::resource::verifier::DEFAULT_VERIFIED_CACHE_MAX_ENTRIES,
    })
    .await;
    let no_token = McpClient::new(&pair.demo_url, None)
        .initialize()
        .await
        .unwrap_err();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&no_token),
        format!(
            "Bearer resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\"",
            pair.demo_base
        )
    );
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let doc: Value = http()
            .get(format!("{}{path}", pair.demo_base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["resource"], pair.demo_url.as_str(), "{path}");
        assert_eq!(doc["authorization_servers"], json!([pair.server.base]));
    }

    let token = pair
        .server
        .access_token_for(&pair.demo_url, "mcp:tools")
        .await;
    let who = whoami(&pair.demo_url, &token).await.unwrap();
    assert_eq!(who["subject"], USER);
    assert_eq!(who["scopes"], json!(["mcp:tools"]));

    // A token for the authorization server's own /mcp is not for this server.
    let other = pair
        .server
        .access_token_for(&pair.server.resource, "mcp:tools")
        .await;
    let resp = whoami(&pair.demo_url, &other).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("error=\"invalid_token\""));
    assert!(challenge(&resp).contains("not issued for this resource"));

    // Step-up works the same way remotely.
    let mut mcp = McpClient::new(&pair.demo_url, Some(&token));
    mcp.initialize().await.unwrap();
    let resp = mcp.call("admin_stats", json!({})).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&resp).contains("error=\"insufficient_scope\""));
}

#[tokio::test]
async fn introspection_verifier_sees_revocation_at_once() {
    let mut pair = start_pair().await;
    let (client_id, client_secret) = admin_client_with(
        &pair.server,
        json!({"grant_types": ["client_credentials"]}),
        true,
    )
    .await;
    pair.run_demo(VerifierChoice::Introspection {
        client_id,
        client_secret,
        cache_ttl: Duration::ZERO,
    })
    .await;

    let user_client = pair.server.register_public().await;
    let params = with(
        &pair.server.auth_params(&user_client),
        "resource",
        Some(&pair.demo_url),
    );
    let loc = pair.server.obtain_redirect(&params).await;
    let code = query_param(&loc, "code").unwrap();
    let tokens: Value = pair
        .server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &user_client),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &pair.demo_url),
        ])
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let mut mcp = McpClient::new(&pair.demo_url, Some(access));
    mcp.initialize().await.unwrap();
    let who = mcp.call("whoami", json!({})).await.unwrap();
    assert_eq!(who["structuredContent"]["subject"], USER);

    // A refresh token is "active" at the introspection endpoint, but it is no access token.
    let resp = whoami(&pair.demo_url, refresh).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("error=\"invalid_token\""));
    // Garbage is asked about and refused.
    let resp = whoami(&pair.demo_url, "garbage").await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let r = http()
        .post(pair.server.url("/revoke"))
        .form(&[("token", access), ("client_id", user_client.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let resp = mcp.call("whoami", json!({})).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn introspection_with_wrong_credentials_is_unavailable_not_invalid() {
    let mut pair = start_pair().await;
    pair.run_demo(VerifierChoice::Introspection {
        client_id: "nobody".into(),
        client_secret: "wrong".into(),
        cache_ttl: Duration::ZERO,
    })
    .await;
    let token = pair
        .server
        .access_token_for(&pair.demo_url, "mcp:tools")
        .await;
    let resp = whoami(&pair.demo_url, &token).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(resp.headers().get("www-authenticate").is_none());
}
