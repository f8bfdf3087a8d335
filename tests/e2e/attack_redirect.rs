//! Issue 8 §5: the authorization endpoint is not an open redirector (RFC 9700 §4.11.2). Errors found
//! before any user interaction are shown on a page, not redirected, for clients that no user has
//! approved and no administrator created.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

const PHISH: &str = "https://evil.example/phish";

#[tokio::test]
async fn attack_open_redirect_through_error_response() {
    let s = start().await;
    let r = s
        .register(json!({
            "client_name": "Totally legit",
            "redirect_uris": [PHISH],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<serde_json::Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = http()
        .get(s.url("/authorize"))
        .query(&[("client_id", id.as_str()), ("response_type", "x")])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let loc = location(&r);
    assert!(
        !loc.starts_with("https://evil.example"),
        "the server redirected to an unapproved client's URI: {status} {loc}"
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("evil.example"),
        "the page names the redirect host: {html}"
    );
    // minijinja escapes "/" in attributes as &#x2f;, which browsers decode.
    assert!(
        html.contains("href=\"https://evil.example/phish")
            || html.contains("href=\"https:&#x2f;&#x2f;evil.example&#x2f;phish"),
        "and offers a link: {html}"
    );
}

#[tokio::test]
async fn approved_and_admin_clients_keep_the_error_redirect() {
    let s = start().await;
    // Approved by a user: after one completed sign-in and consent.
    let client = s.register_public().await;
    s.obtain_code(&client).await;
    let r = http()
        .get(s.url("/authorize"))
        .query(&with(&s.auth_params(&client), "response_type", Some("x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with(REDIRECT), "{}", location(&r));
    // Created by an administrator.
    let (admin, _) = admin_client(
        &s,
        json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code"]}),
    )
    .await;
    let r = http()
        .get(s.url("/authorize"))
        .query(&with(&s.auth_params(&admin), "response_type", Some("x")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).contains("error=unsupported_response_type"));
}
