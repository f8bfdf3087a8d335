//! Attacks on redirect-URI matching (issue 8 §8 "Redirect URIs"; RFC 9700 §4.1.3, OAuth 2.1
//! §4.1.1 / §7.5.3: exact string comparison). A URI whose text and normalised form differ is
//! read differently by different parsers (the server, the browser, the client's callback router),
//! the classic path-confusion route to a stolen code.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{REDIRECT, error_of, http, location, start, with};

#[tokio::test]
async fn attack_registration_of_ambiguous_redirect_uris_is_refused() {
    let s = start().await;
    for uri in [
        "https://app.example/callback/../../evil",
        "https://app.example/a/%2e%2e/callback",
        "https://app.example\\@evil.example/callback",
        "https://app.example/call\\back",
        "https://3232235777/callback",
        "https://0x7f.1/callback",
        "https://192.168.1.10/callback",
        "https://app.example./callback",
        "https://user@app.example/callback",
        "https://APP.example/callback",
        "https://app.example:443/callback",
        "http://127.0.0.1:4567/a/./callback",
        "http://localhost./callback",
    ] {
        let r = s
            .register(json!({
                "redirect_uris": [uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
            }))
            .await;
        assert_eq!(
            error_of(r).await,
            (StatusCode::BAD_REQUEST, "invalid_redirect_uri".into()),
            "{uri} was registered"
        );
    }
    // Plain ones, and the loopback literals, still register.
    for uri in [
        "https://app.example/callback",
        "https://app.example/cb?x=1",
        "http://127.0.0.1:4567/callback",
        "http://[::1]:4567/callback",
        "http://localhost:3000/callback",
    ] {
        let r = s
            .register(json!({
                "redirect_uris": [uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code"],
            }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{uri}");
    }
}

#[tokio::test]
async fn attack_loopback_redirect_with_a_different_spelling_is_refused() {
    let s = start().await;
    let client_id = s.register_public().await;
    assert_eq!(REDIRECT, "http://127.0.0.1:4567/callback");
    for requested in [
        "http://127.0.0.1:4567/x/../callback",
        "http://127.0.0.1:4567/%2e/callback",
        "http://127.0.0.1:4567\\callback",
        "http://0x7f000001:4567/callback",
        "http://127.1:4567/callback",
        "HTTP://127.0.0.1:4567/callback",
    ] {
        let r = http()
            .get(s.url("/authorize"))
            .query(&with(
                &s.auth_params(&client_id),
                "redirect_uri",
                Some(requested),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "{requested} was accepted (Location: {})",
            location(&r)
        );
        assert!(location(&r).is_empty(), "{requested}: never redirected");
    }
    // The loopback port exception holds (RFC 8252 §7.3).
    let r = http()
        .get(s.url("/authorize"))
        .query(&with(
            &s.auth_params(&client_id),
            "redirect_uri",
            Some("http://127.0.0.1:50123/callback"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("/login?tx="));
}
