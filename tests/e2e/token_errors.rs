//! Token-endpoint error paths: PKCE, redirect URI, resource binding, code replay, client
//! authentication, malformed bodies.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn wrong_verifier_is_invalid_grant() {
    let server = start().await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let wrong = "A".repeat(43);
    let r = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &wrong),
        ])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    // The code was consumed by the failed attempt.
    let (_, err) = error_of(server.exchange(&client_id, &code).await).await;
    assert_eq!(err, "invalid_grant");
}

#[tokio::test]
async fn missing_verifier_is_invalid_request() {
    let server = start().await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let r = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
        ])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    // The code survives a request refused before redemption.
    assert_eq!(
        server.exchange(&client_id, &code).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn resource_mismatch_between_authorize_and_token() {
    let server = start_with(Options {
        extra_resources: true,
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let other = server.url("/other");
    let r = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &other),
        ])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_target".into())
    );
    let unknown = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
            ("resource", "https://nowhere.example/mcp"),
        ])
        .await;
    assert_eq!(error_of(unknown).await.1, "invalid_target");
}

#[tokio::test]
async fn redirect_uri_must_repeat_the_authorization_request() {
    let server = start().await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let r = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(error_of(r).await.1, "invalid_grant");
    let code = server.obtain_code(&client_id).await;
    let r = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("redirect_uri", "http://127.0.0.1:4567/other"),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(error_of(r).await.1, "invalid_grant");
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_its_tokens() {
    let server = start().await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let first: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    let access = first["access_token"].as_str().unwrap();
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(server.introspect(access).await["active"], true);

    let r = server.exchange(&client_id, &code).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(
        server.introspect(access).await["active"],
        false,
        "tokens issued from a replayed code are revoked"
    );
    assert_eq!(
        error_of(server.refresh(&client_id, refresh).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn code_of_another_client_is_refused() {
    let server = start().await;
    let a = server.register_public().await;
    let b = server.register_public().await;
    let code = server.obtain_code(&a).await;
    assert_eq!(
        error_of(server.exchange(&b, &code).await).await.1,
        "invalid_grant"
    );
}

/// A code lives `[tokens] code_ttl` (login.rs `expires_at = t + code_ttl`). 2 s, not 1 s: with 1 s a
/// wrong `t * code_ttl` gives the same end.
#[tokio::test]
async fn expired_code_is_refused() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__CODE_TTL", "2s".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        error_of(server.exchange(&client_id, &code).await).await.1,
        "invalid_grant"
    );
}

#[tokio::test]
async fn bad_client_secret_is_401_invalid_client() {
    let server = start().await;
    let (id, secret) = admin_client(
        &server,
        serde_json::json!({"grant_types": ["authorization_code", "client_credentials"], "redirect_uris": [REDIRECT]}),
    )
    .await;
    let r = http()
        .post(server.url("/token"))
        .basic_auth(&id, Some("wrong-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("www-authenticate").is_some(),
        "RFC 6749 §5.2: 401 carries WWW-Authenticate"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );

    // Missing secret for a confidential client, unknown client, two methods at once.
    let r = server
        .token(&[("grant_type", "client_credentials"), ("client_id", &id)])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let r = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "nobody"),
            ("client_secret", "x"),
        ])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let r = http()
        .post(server.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_secret", secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request_json() {
    let server = start().await;
    for (content_type, body) in [
        ("application/json", r#"{"grant_type":"client_credentials"}"#),
        ("text/plain", "grant_type=client_credentials"),
        (
            "application/x-www-form-urlencoded",
            "grant_type=authorization_code&grant_type=refresh_token&client_id=x",
        ),
    ] {
        let r = http()
            .post(server.url("/token"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(
            error_of(r).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into()),
            "{content_type}: {body}"
        );
    }
    let big = "a=".to_string() + &"x".repeat(100_000);
    let r = http()
        .post(server.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );

    let public = server.register_public().await;
    let r = server.token(&[("client_id", &public)]).await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into()),
        "missing grant_type"
    );
    let r = server
        .token(&[("client_id", &public), ("grant_type", "password")])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
    );
}

/// RFC 7591 §3.2.1 `client_secret_expires_at`: an expired secret no longer authenticates; `0`
/// (or none) never expires.
#[tokio::test]
async fn an_expired_client_secret_is_refused() {
    let server = start().await;
    let t = mcp_oauth::state::now();
    let mut outcomes = Vec::new();
    for expires_at in [Some(t - 10), Some(t), Some(t + 3600), Some(0), None] {
        let (mut client, secret) = mcp_oauth::oauth::register::client_from_metadata(
            &server.state.resources,
            &server.state.registration,
            mcp_oauth_provider::ClientOrigin::Administrator,
            &serde_json::json!({"client_name": "expiring", "grant_types": ["client_credentials"]}),
            t,
        )
        .unwrap();
        client.client_secret_expires_at = expires_at;
        server
            .state
            .provider
            .clients()
            .insert_client(client.clone())
            .await
            .unwrap();
        let r = http()
            .post(server.url("/token"))
            .basic_auth(&client.client_id, secret)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        outcomes.push((expires_at.map(|e| e - t), r.status().as_u16()));
    }
    assert_eq!(
        outcomes,
        vec![
            (Some(-10), 401),
            (Some(0), 401),
            (Some(3600), 200),
            (Some(-t), 200),
            (None, 200)
        ],
        "(expires_at - now, status)"
    );
}

/// RFC 6749 §5.2 `unauthorized_client`: a client uses only the grants it registered (token.rs
/// `require_grant`): a machine client cannot redeem codes or refresh, a code-flow client cannot
/// mint `client_credentials` tokens.
#[tokio::test]
async fn a_grant_the_client_did_not_register_is_unauthorized_client() {
    let server = start().await;
    let (machine, machine_secret) = admin_client(
        &server,
        serde_json::json!({"grant_types": ["client_credentials"], "scope": "mcp:tools"}),
    )
    .await;
    for form in [
        vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", "some-token"),
        ],
        vec![
            ("grant_type", "authorization_code"),
            ("code", "some-code"),
            ("code_verifier", VERIFIER),
            ("redirect_uri", REDIRECT),
        ],
    ] {
        let r = http()
            .post(server.url("/token"))
            .basic_auth(&machine, Some(&machine_secret))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r).await,
            (StatusCode::BAD_REQUEST, "unauthorized_client".into()),
            "{form:?}"
        );
    }
    let (web, web_secret) = server
        .register_confidential(&["authorization_code", "refresh_token"])
        .await;
    let r = http()
        .post(server.url("/token"))
        .basic_auth(&web, Some(&web_secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "unauthorized_client".into())
    );
}
