//! Issue 8 §4: remembered consent is per (subject, client, resource), expires, and ends with the
//! user's grants.

use reqwest::StatusCode;

use crate::support::*;

/// Signs in as alice with "remember" for `resource`; returns the client.
async fn remember_for(s: &TestServer, client: &str, resource: &str) {
    let b = browser();
    let params = with(&s.auth_params(client), "resource", Some(resource));
    let (tx, csrf, _) = s.start_login(&b, &params).await;
    let r = s.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert!(r.text().await.unwrap().contains("Allow access?"));
    let r = s.post_consent(&b, &tx, &csrf, "approve", true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

/// After signing in: true when the consent page was skipped (a code came straight back).
async fn consent_skipped(s: &TestServer, client: &str, resource: &str) -> bool {
    let b = browser();
    let params = with(&s.auth_params(client), "resource", Some(resource));
    let (tx, csrf, _) = s.start_login(&b, &params).await;
    let r = s.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    r.status() == StatusCode::FOUND && location(&r).contains("code=")
}

#[tokio::test]
async fn attack_consent_for_one_resource_reused_for_another() {
    // Same scope names on both resources, as in the shipped two-resource example.
    let other = "http://127.0.0.1:9/other-mcp".to_string();
    let s = start_with(Options {
        extra_resource: Some(other.clone()),
        ..Default::default()
    })
    .await;
    let client = s.register_public().await;
    remember_for(&s, &client, &s.resource).await;
    assert!(
        consent_skipped(&s, &client, &s.resource).await,
        "remembered for A"
    );
    let params = with(&s.auth_params(&client), "resource", Some(&other));
    let b = browser();
    let (tx, csrf, _) = s.start_login(&b, &params).await;
    let r = s.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "consent given for resource A was reused for resource B: {}",
        location(&r)
    );
    assert!(r.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn attack_remembered_consent_never_expires() {
    let s = start_with(Options {
        env: vec![("MCP_OAUTH__LOGIN__CONSENT_TTL", "1s".into())],
        ..Default::default()
    })
    .await;
    let client = s.register_public().await;
    remember_for(&s, &client, &s.resource).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert!(
        !consent_skipped(&s, &client, &s.resource).await,
        "consent expired"
    );
}

#[tokio::test]
async fn attack_remembered_consent_survives_grant_revocation() {
    let dir = crate::processes::TempDir::new("mcp-oauth-attack-consent");
    let (s, cfg) = crate::attack_grants::sqlite_server(&dir, vec![]).await;
    let client = s.register_public().await;
    remember_for(&s, &client, &s.resource).await;
    let (ok, out, err) =
        crate::processes::run_cli(Some(&cfg), &["grants", "revoke", "--user", USER], &[], None)
            .await;
    assert!(ok, "{out} {err}");
    assert!(
        !consent_skipped(&s, &client, &s.resource).await,
        "revoking the user's grants forgets their remembered consent"
    );
}
