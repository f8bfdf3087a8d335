//! Issue 8 §8: only resource-server clients may introspect any token; a client may introspect its
//! own tokens; a refresh token is introspectable only by its own client.

use serde_json::{Value, json};

use crate::support::*;

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
    let a = s.introspect_as(&id, &secret, access).await;
    assert_eq!(
        a,
        json!({"active": false}),
        "a stranger introspected an access token"
    );
    let r = s.introspect_as(&id, &secret, refresh).await;
    assert_eq!(
        r,
        json!({"active": false}),
        "a stranger introspected a refresh token"
    );
}

#[tokio::test]
async fn a_client_introspects_its_own_tokens_and_resource_servers_any_access_token() {
    let s = start().await;
    let (id, secret, access, refresh) = s.confidential_tokens().await;
    let (access, refresh) = (access.as_str(), refresh.as_str());
    assert_eq!(s.introspect_as(&id, &secret, access).await["active"], true);
    assert_eq!(s.introspect_as(&id, &secret, refresh).await["active"], true);
    let rs = introspect_as_resource_server(&s, access).await;
    assert_eq!(rs["active"], true, "{rs}");
    let rs = introspect_as_resource_server(&s, refresh).await;
    assert_eq!(
        rs,
        json!({"active": false}),
        "refresh tokens: own client only"
    );
}
