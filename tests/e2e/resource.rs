//! The demo MCP server `serve` mounts at `/mcp` (co-hosted verifier) and the toolkit behaviour seen
//! through it: challenges, token checks, step-up, revocation, metadata, Origin.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::AlgorithmParameters;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp::{McpClient, challenge};
use crate::support::*;

fn prm_url(server: &TestServer) -> String {
    server.url("/.well-known/oauth-protected-resource/mcp")
}

/// Claims like the server's own tokens, for hand-made ones.
fn claims(server: &TestServer) -> Value {
    let t = mcp_oauth::state::now();
    json!({"iss": server.base, "sub": USER, "aud": server.resource, "client_id": "c",
           "scope": "mcp:tools", "exp": t + 600, "iat": t, "nbf": t, "jti": "made-up"})
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

async fn assert_invalid_token(server: &TestServer, token: &str, what: &str) {
    let resp = McpClient::new(&server.resource, Some(token))
        .initialize()
        .await
        .expect_err(what);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
    let ch = challenge(&resp);
    assert!(ch.starts_with("Bearer "), "{what}: {ch}");
    assert!(ch.contains("error=\"invalid_token\""), "{what}: {ch}");
    assert!(
        ch.contains(&format!("resource_metadata=\"{}\"", prm_url(server))),
        "{what}: {ch}"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{what}");
}

#[tokio::test]
async fn no_token_gets_the_discovery_challenge_without_error() {
    let server = start().await;
    let resp = McpClient::new(&server.resource, None)
        .initialize()
        .await
        .unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge(&resp),
        format!(
            "Bearer resource_metadata=\"{}\", scope=\"mcp:tools\"",
            prm_url(&server)
        )
    );
    assert!(!challenge(&resp).contains("error="));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["resource_metadata"], prm_url(&server));
    // GET (the SSE stream) and DELETE are protected as well.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = http()
            .request(method.clone(), &server.resource)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{method}");
    }
}

#[tokio::test]
async fn bad_tokens_are_invalid_token() {
    let server = start_with(Options {
        extra_resources: true,
        ..Default::default()
    })
    .await;
    let kid = server.state.keys.active_kid().unwrap();
    assert_invalid_token(&server, "garbage", "garbage").await;

    let mut wrong_issuer = claims(&server);
    wrong_issuer["iss"] = json!("http://127.0.0.1:1");
    let token = server.state.keys.sign("at+jwt", &wrong_issuer).unwrap();
    assert_invalid_token(&server, &token, "wrong issuer").await;

    // Correctly signed and recorded, but for the other declared resource.
    let other = server
        .access_token_for(&server.url("/other"), "other:read")
        .await;
    assert_invalid_token(&server, &other, "wrong audience").await;

    let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    let unsigned = format!("{}.{}.", b64(&header), b64(&claims(&server)));
    assert_invalid_token(&server, &unsigned, "alg none").await;

    // HS256 with the server's public key as the HMAC secret (raw key, base64url text, JWK JSON).
    let jwks = server.state.keys.jwks();
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
        .unwrap();
    let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
        panic!("EdDSA keys by default")
    };
    let jwk_json = serde_json::to_vec(jwk).unwrap();
    let raw = URL_SAFE_NO_PAD.decode(&okp.x).unwrap();
    for secret in [raw.as_slice(), okp.x.as_bytes(), jwk_json.as_slice()] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims(&server), &EncodingKey::from_secret(secret))
                .unwrap();
        assert_invalid_token(&server, &token, "HS256 with the public key").await;
    }

    // Signed by the server, right audience, but never issued (no record): refused.
    let forged = server.state.keys.sign("at+jwt", &claims(&server)).unwrap();
    assert_invalid_token(&server, &forged, "unrecorded jti").await;
}

#[tokio::test]
async fn expired_tokens_are_invalid_token() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", "1s".into())],
        ..Default::default()
    })
    .await;
    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_invalid_token(&server, &token, "expired").await;
}

#[tokio::test]
async fn a_valid_token_reaches_the_tools() {
    let server = start().await;
    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    let mut mcp = McpClient::new(&server.resource, Some(&token));
    let init = mcp.initialize().await.unwrap();
    assert_eq!(init["serverInfo"]["name"], "mcp-oauth-demo");
    assert!(mcp.session.is_some(), "a session id was issued");

    let tools = mcp.request("tools/list", json!({})).await.unwrap();
    let mut names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["admin_stats", "echo", "get_time", "whoami"]);

    let who = mcp.call("whoami", json!({})).await.unwrap();
    let who = &who["structuredContent"];
    assert_eq!(who["subject"], USER);
    assert_eq!(who["scopes"], json!(["mcp:tools"]));
    assert_eq!(who["issuer"], server.base.as_str());
    assert!(who["client_id"].as_str().is_some_and(|c| !c.is_empty()));

    let echo = mcp
        .call("echo", json!({"message": "hello <mcp>"}))
        .await
        .unwrap();
    assert_eq!(echo["content"][0]["text"], "hello <mcp>");
    let time = mcp.call("get_time", json!({})).await.unwrap();
    assert!(time["structuredContent"]["unix"].as_i64().unwrap() > 1_700_000_000);

    // The session id alone is no credential (MCP: never authenticate by session).
    let mut stolen = McpClient::new(&server.resource, None);
    stolen.session = mcp.session.clone();
    let resp = stolen.call("whoami", json!({})).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_stats_needs_mcp_admin_and_says_so() {
    let server = start().await;
    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    let mut mcp = McpClient::new(&server.resource, Some(&token));
    mcp.initialize().await.unwrap();
    let resp = mcp.call("admin_stats", json!({})).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        challenge(&resp),
        format!(
            "Bearer resource_metadata=\"{}\", scope=\"mcp:tools mcp:admin\", \
             error=\"insufficient_scope\", error_description=\"tool 'admin_stats' requires scope 'mcp:admin'\"",
            prm_url(&server)
        )
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "mcp:tools mcp:admin");

    // Step up: a new token with both scopes.
    let admin = server
        .access_token_for(&server.resource, "mcp:tools mcp:admin")
        .await;
    let mut mcp = McpClient::new(&server.resource, Some(&admin));
    mcp.initialize().await.unwrap();
    let stats = mcp.call("admin_stats", json!({})).await.unwrap();
    assert_eq!(stats["structuredContent"]["requested_by"], USER);

    // A token without even the basic scope is refused everywhere with 403.
    let admin_only = server.access_token_for(&server.resource, "mcp:admin").await;
    let resp = McpClient::new(&server.resource, Some(&admin_only))
        .initialize()
        .await
        .unwrap_err();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(challenge(&resp).contains("scope=\"mcp:admin mcp:tools\""));
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let server = start().await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let tokens: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let mut mcp = McpClient::new(&server.resource, Some(access));
    mcp.initialize().await.unwrap();
    mcp.call("whoami", json!({})).await.unwrap();

    let r = http()
        .post(server.url("/revoke"))
        .form(&[("token", access), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let resp = mcp.call("whoami", json!({})).await.unwrap_err();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(challenge(&resp).contains("error=\"invalid_token\""));
}

#[tokio::test]
async fn metadata_is_served_at_both_locations() {
    let server = start().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let r = http()
            .get(server.url(path))
            .header("origin", "https://some-browser-client.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            r.headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*"),
            "{path}"
        );
        let doc: Value = r.json().await.unwrap();
        assert_eq!(
            doc,
            json!({
                "resource": server.resource,
                "authorization_servers": [server.base],
                "scopes_supported": ["mcp:tools", "mcp:admin"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Test <MCP> server",
            }),
            "{path}"
        );
    }
}

#[tokio::test]
async fn foreign_origins_are_forbidden() {
    let server = start().await;
    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "e2e", "version": "1"}}});
    let send = |origin: &str| {
        http()
            .post(&server.resource)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("origin", origin)
            .json(&init)
            .send()
    };
    let r = send("http://evil.example.com").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.headers().get("www-authenticate").is_none());
    let r = send("http://127.0.0.1:1").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The server's own origin is fine.
    let r = send(&server.base).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // DNS rebinding: a foreign Host.
    let r = http()
        .post(&server.resource)
        .bearer_auth(&token)
        .header("host", "rebound.example.com")
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_session_cannot_be_used_with_another_clients_token() {
    let server = start().await;
    let mcp_url = server.url("/mcp");
    let mine = server.access_token_for(&server.resource, "mcp:tools").await;
    let theirs = server.access_token_for(&server.resource, "mcp:tools").await;
    let mut owner = crate::mcp::McpClient::new(&mcp_url, Some(&mine));
    owner.initialize().await.unwrap();
    let session = owner.session.clone().expect("a session id");

    // A valid token of another client presenting the owner's session: as if the session did not exist.
    let mut intruder = crate::mcp::McpClient::new(&mcp_url, Some(&theirs));
    intruder.session = Some(session.clone());
    let refused = intruder
        .call("whoami", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), reqwest::StatusCode::NOT_FOUND);

    // The owner carries on; the intruder can start a session of its own.
    let who = owner.call("whoami", serde_json::json!({})).await.unwrap();
    assert!(who.to_string().contains(USER), "{who}");
    let mut fresh = crate::mcp::McpClient::new(&mcp_url, Some(&theirs));
    fresh.initialize().await.unwrap();
    assert_ne!(fresh.session, Some(session));
}
