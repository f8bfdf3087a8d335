//! Issue 8 §8: only resource-server clients may introspect any token; a client may introspect its
//! own tokens; a refresh token is introspectable only by its own client.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn introspect_as(s: &TestServer, id: &str, secret: &str, token: &str) -> Value {
    let r = http()
        .post(s.url("/introspect"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

#[tokio::test]
async fn attack_any_confidential_client_introspects_a_victims_token() {
    let s = start().await;
    // The victim's tokens, from the browser flow.
    let victim = s.register_public().await;
    let code = s.obtain_code(&victim).await;
    let v: Value = s.exchange(&victim, &code).await.json().await.unwrap();
    let access = v["access_token"].as_str().unwrap();
    let refresh = v["refresh_token"].as_str().unwrap();
    // The attacker: an anonymous confidential registration (allowed by open registration).
    let (id, secret) = s
        .register_confidential(&["authorization_code", "refresh_token"])
        .await;
    let a = introspect_as(&s, &id, &secret, access).await;
    assert_eq!(
        a,
        json!({"active": false}),
        "a stranger introspected an access token"
    );
    let r = introspect_as(&s, &id, &secret, refresh).await;
    assert_eq!(
        r,
        json!({"active": false}),
        "a stranger introspected a refresh token"
    );
}

#[tokio::test]
async fn a_client_introspects_its_own_tokens_and_resource_servers_any_access_token() {
    let s = start().await;
    let (id, secret) = s
        .register_confidential(&["authorization_code", "refresh_token"])
        .await;
    let code = s.obtain_code(&id).await;
    let r = http()
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let access = v["access_token"].as_str().unwrap();
    let refresh = v["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect_as(&s, &id, &secret, access).await["active"],
        true
    );
    assert_eq!(
        introspect_as(&s, &id, &secret, refresh).await["active"],
        true
    );
    let rs = introspect_as_resource_server(&s, access).await;
    assert_eq!(rs["active"], true, "{rs}");
    let rs = introspect_as_resource_server(&s, refresh).await;
    assert_eq!(
        rs,
        json!({"active": false}),
        "refresh tokens: own client only"
    );
}
