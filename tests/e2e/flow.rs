//! The whole authorization-code flow, refresh rotation and reuse detection, client credentials,
//! consent memory and denial.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn verify_jwt(server: &TestServer, token: &str) -> Value {
    let jwks: JwkSet = http()
        .get(server.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 typ");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_audience(&[&server.resource]);
    v.set_issuer(&[&server.base]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .expect("token verifies against /jwks.json")
        .claims
}

#[tokio::test]
async fn full_authorization_code_flow() {
    let server = start().await;
    let client_id = server.register_public().await;

    // authorize → login → consent → code (with state and iss).
    let loc = server
        .obtain_redirect(&server.auth_params(&client_id))
        .await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz-state"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(server.base.as_str()),
        "RFC 9207 iss"
    );
    let code = query_param(&loc, "code").unwrap();

    // code → tokens.
    let r = server.exchange(&client_id, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tokens: Value = r.json().await.unwrap();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "mcp:tools");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh1 = tokens["refresh_token"].as_str().unwrap().to_string();
    let claims = verify_jwt(&server, &access).await;
    assert_eq!(claims["aud"], server.resource.as_str());
    assert_eq!(claims["sub"], USER);
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["scope"], "mcp:tools");
    assert!(claims["jti"].is_string() && claims["exp"].is_number() && claims["iat"].is_number());
    assert_eq!(server.introspect(&access).await["active"], true);

    // refresh → rotated.
    let r = server.refresh(&client_id, &refresh1).await;
    assert_eq!(r.status(), StatusCode::OK);
    let rotated: Value = r.json().await.unwrap();
    let access2 = rotated["access_token"].as_str().unwrap().to_string();
    let refresh2 = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh2, "refresh tokens rotate on every use");
    verify_jwt(&server, &access2).await;

    // Reuse of the old refresh token after the grace window (1 s in tests) revokes the family.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, err) = error_of(server.refresh(&client_id, &refresh1).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (_, err) = error_of(server.refresh(&client_id, &refresh2).await).await;
    assert_eq!(
        err, "invalid_grant",
        "the whole family is revoked, including the newest refresh token"
    );

    // Introspection says inactive for every token of the family.
    assert_eq!(
        server.introspect(&access).await,
        serde_json::json!({"active": false})
    );
    assert_eq!(server.introspect(&access2).await["active"], false);
    assert_eq!(server.introspect(&refresh2).await["active"], false);

    // Revocation answers 200, also for an already revoked token.
    let r = http()
        .post(server.url("/revoke"))
        .form(&[
            ("token", access2.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn concurrent_refresh_inside_grace_window_keeps_the_session() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__REFRESH_REUSE_GRACE", "30s".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let tokens: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    let rt = tokens["refresh_token"].as_str().unwrap();
    let a = server.refresh(&client_id, rt).await;
    let b = server.refresh(&client_id, rt).await;
    assert_eq!(a.status(), StatusCode::OK);
    assert_eq!(
        b.status(),
        StatusCode::OK,
        "a second use inside the grace window is not treated as theft"
    );
    let a: Value = a.json().await.unwrap();
    assert_eq!(
        server.introspect(a["access_token"].as_str().unwrap()).await["active"],
        true
    );
}

#[tokio::test]
async fn refresh_can_narrow_but_not_widen_scope() {
    let server = start().await;
    let client_id = server.register_public().await;
    let params = with(
        &server.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let code = query_param(&server.obtain_redirect(&params).await, "code").unwrap();
    let tokens: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
    let rt = tokens["refresh_token"].as_str().unwrap();
    let r = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &client_id),
            ("scope", "mcp:tools"),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let narrowed: Value = r.json().await.unwrap();
    assert_eq!(narrowed["scope"], "mcp:tools");
    // The refresh token keeps the original grant: the full scope can come back.
    let rt2 = narrowed["refresh_token"].as_str().unwrap();
    let r = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt2),
            ("client_id", &client_id),
        ])
        .await;
    let full: Value = r.json().await.unwrap();
    assert_eq!(full["scope"], "mcp:tools mcp:admin");
    let rt3 = full["refresh_token"].as_str().unwrap();
    let r = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt3),
            ("client_id", &client_id),
            ("scope", "mcp:tools other"),
        ])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_scope".into())
    );
}

#[tokio::test]
async fn client_credentials_for_confidential_clients_only() {
    let server = start().await;
    let (id, secret) = admin_client(
        &server,
        json!({"grant_types": ["client_credentials"], "scope": "mcp:tools"}),
    )
    .await;
    let r = http()
        .post(server.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert!(
        v.get("refresh_token").is_none(),
        "no refresh token for client_credentials"
    );
    let claims = verify_jwt(&server, v["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["sub"], id.as_str());

    // Only the registered method (client_secret_basic) is accepted (issue 8 §8).
    let r = server
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let public = server.register_public().await;
    let r = server
        .token(&[("grant_type", "client_credentials"), ("client_id", &public)])
        .await;
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "unauthorized_client".into())
    );
}

#[tokio::test]
async fn consent_can_be_denied_and_remembered() {
    let server = start().await;
    let client_id = server.register_public().await;
    let params = server.auth_params(&client_id);

    // Deny → access_denied with state and iss.
    let b = browser();
    let (tx, csrf, _) = server.start_login(&b, &params).await;
    server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    let r = server.post_consent(&b, &tx, &csrf, "deny", false).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(&r);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz-state"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(server.base.as_str())
    );
    // The transaction is finished: posting again is refused.
    let again = server.post_consent(&b, &tx, &csrf, "approve", false).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);

    // Approve with "remember" → the next login skips the consent page.
    let (tx, csrf, _) = server.start_login(&b, &params).await;
    server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    let r = server.post_consent(&b, &tx, &csrf, "approve", true).await;
    assert!(query_param(&location(&r), "code").is_some());
    let (tx, csrf, _) = server.start_login(&b, &params).await;
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "remembered consent redirects straight back"
    );
    assert!(query_param(&location(&r), "code").is_some());

    // A wider scope than remembered asks again.
    let wider = with(&params, "scope", Some("mcp:tools mcp:admin"));
    let (tx, csrf, _) = server.start_login(&b, &wider).await;
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("mcp:admin"));
}

#[tokio::test]
async fn metadata_documents_advertise_what_mcp_clients_need() {
    let server = start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let v: Value = http()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["issuer"], server.base.as_str());
        assert_eq!(
            v["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(v["authorization_response_iss_parameter_supported"], true);
        assert_eq!(v["response_types_supported"], serde_json::json!(["code"]));
        for key in [
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
            "jwks_uri",
        ] {
            assert!(v[key].as_str().unwrap().starts_with(&server.base), "{key}");
        }
        let methods = v["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap();
        for m in ["none", "client_secret_post", "client_secret_basic"] {
            assert!(methods.iter().any(|x| x == m), "{m}");
        }
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log() {
    let server = start().await;
    let (conf_id, conf_secret) =
        admin_client(&server, json!({"grant_types": ["client_credentials"]})).await;
    let cc: Value = http()
        .post(server.url("/token"))
        .basic_auth(&conf_id, Some(&conf_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    server
        .post_login(&b, &tx, &csrf, USER, "a-wrong-password-xyz")
        .await;
    server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    let r = server.post_consent(&b, &tx, &csrf, "approve", false).await;
    let code = query_param(&location(&r), "code").unwrap();
    let tokens: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let rotated: Value = server
        .refresh(&client_id, refresh)
        .await
        .json()
        .await
        .unwrap();
    server
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    // A replay and a reuse make the server log warnings about exactly these credentials.
    server.exchange(&client_id, &code).await;

    let log = captured_log();
    assert!(
        log.contains("signed in") && log.contains("authorization code replayed"),
        "the log was captured"
    );
    let secrets = [
        PASSWORD,
        "a-wrong-password-xyz",
        VERIFIER,
        conf_secret.as_str(),
        cc["access_token"].as_str().unwrap(),
        tx.as_str(),
        csrf.as_str(),
        code.as_str(),
        tokens["access_token"].as_str().unwrap(),
        refresh,
        rotated["access_token"].as_str().unwrap(),
        rotated["refresh_token"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "a secret reached the log: {}…",
            &secret[..8]
        );
    }
}
