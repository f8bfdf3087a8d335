//! Issue 8 §8 "Expired tokens": the resource layer must tell a client that its token has expired
//! (so it refreshes), instead of calling it "not a valid access token" (which sends clients into
//! a full new sign-in, or makes operators hunt for a forgery).

use std::time::Duration;

use reqwest::StatusCode;

use crate::support::{Options, http, start_with};

#[tokio::test]
async fn attack_expired_token_is_reported_as_expired() {
    let s = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", "1s".into())],
        ..Default::default()
    })
    .await;
    let token = s.access_token_for(&s.resource, "mcp:tools").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = http()
        .post(s.url("/mcp"))
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(
        challenge.contains("expired"),
        "the challenge does not say the token expired: {challenge}"
    );
}

/// "Expired" is said only of this server's own expired tokens (tokens.rs `is_expired_own`): a
/// forged or foreign token is "not a valid access token", so no client refreshes on a forgery.
#[tokio::test]
async fn a_forged_token_is_not_reported_as_expired() {
    let s = start_with(Options::default()).await;
    for forged in ["eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "not-a-jwt"] {
        let r = http()
            .post(s.url("/mcp"))
            .bearer_auth(forged)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let challenge = r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(
            !challenge.contains("expired"),
            "a forged token was called expired: {challenge}"
        );
    }
}
