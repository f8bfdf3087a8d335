//! Revocation (RFC 7009) and introspection (RFC 7662).

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

async fn tokens_for(server: &TestServer, client_id: &str) -> (String, String) {
    let code = server.obtain_code(client_id).await;
    let v: Value = server
        .exchange(client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    (
        v["access_token"].as_str().unwrap().into(),
        v["refresh_token"].as_str().unwrap().into(),
    )
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let server = start().await;
    let client_id = server.register_public().await;
    let (access, _) = tokens_for(&server, &client_id).await;
    let r = http()
        .post(server.url("/introspect"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
    let r = http()
        .post(server.url("/introspect"))
        .form(&[
            ("token", access.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into()),
        "a public client proves nothing"
    );

    let active = server.introspect(&access).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], client_id.as_str());
    assert_eq!(active["aud"], server.resource.as_str());
    assert_eq!(active["sub"], USER);
    assert_eq!(active["iss"], server.base.as_str());
    assert_eq!(active["scope"], "mcp:tools");
    // A user's token names the user (RFC 7662 §2.2 `username`).
    assert_eq!(active["username"], USER);

    for junk in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        assert_eq!(
            server.introspect(junk).await,
            serde_json::json!({"active": false}),
            "{junk}"
        );
    }
}

#[tokio::test]
async fn expired_access_tokens_are_inactive() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", "1s".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let (access, refresh) = tokens_for(&server, &client_id).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(server.introspect(&access).await["active"], false);
    assert_eq!(
        server.refresh(&client_id, &refresh).await.status(),
        reqwest::StatusCode::OK,
        "the refresh token outlives it"
    );
}

#[tokio::test]
async fn revoking_an_access_token() {
    let server = start().await;
    let client_id = server.register_public().await;
    let (access, refresh) = tokens_for(&server, &client_id).await;
    let r = http()
        .post(server.url("/revoke"))
        .form(&[
            ("token", access.as_str()),
            ("token_type_hint", "access_token"),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(server.introspect(&access).await["active"], false);
    assert_eq!(
        server.refresh(&client_id, &refresh).await.status(),
        StatusCode::OK,
        "the refresh token stays valid"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_the_grant() {
    let server = start().await;
    let client_id = server.register_public().await;
    let (access, refresh) = tokens_for(&server, &client_id).await;
    let r = http()
        .post(server.url("/revoke"))
        .form(&[
            ("token", refresh.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        error_of(server.refresh(&client_id, &refresh).await).await.1,
        "invalid_grant"
    );
    assert_eq!(server.introspect(&access).await["active"], false);
}

#[tokio::test]
async fn other_clients_cannot_revoke_and_unknown_tokens_are_fine() {
    let server = start().await;
    let owner = server.register_public().await;
    let intruder = server.register_public().await;
    let (access, refresh) = tokens_for(&server, &owner).await;
    for token in [&access, &refresh, &"unknown-token".to_string()] {
        let r = http()
            .post(server.url("/revoke"))
            .form(&[("token", token.as_str()), ("client_id", intruder.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "RFC 7009 §2.2: always 200");
    }
    assert_eq!(
        server.introspect(&access).await["active"],
        true,
        "another client's revocation is ignored"
    );
    let r = http()
        .post(server.url("/revoke"))
        .form(&[("client_id", owner.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    let r = http()
        .post(server.url("/revoke"))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into())
    );
}

/// Protects RFC 7662 §2.2 for refresh tokens: a rotated (used) refresh token is no longer active,
/// even to its own client and before it expires (introspect.rs `state != Active || expired`).
#[tokio::test]
async fn a_rotated_refresh_token_is_inactive_to_its_own_client() {
    let server = start().await;
    let (id, secret, _, old) = server.confidential_tokens().await;
    let r = http()
        .post(server.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", old.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let new = v["refresh_token"].as_str().unwrap();
    assert_ne!(new, old, "the refresh token rotates");
    assert_eq!(
        server.introspect_as(&id, &secret, &old).await,
        serde_json::json!({"active": false}),
        "a used refresh token is not active"
    );
    let fresh = server.introspect_as(&id, &secret, new).await;
    assert_eq!(fresh["active"], true, "{fresh}");
    assert_eq!(fresh["token_type"], "refresh_token");
}

/// Each token lives its configured lifetime from issue (tokens.rs `mint`: `exp = now + ttl`; a
/// refresh token ends after `refresh_token_ttl`, capped by the grant's end, not at it).
#[tokio::test]
async fn tokens_live_their_configured_lifetimes() {
    let server = start_with(Options {
        env: vec![
            ("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", "120s".into()),
            ("MCP_OAUTH__TOKENS__REFRESH_TOKEN_TTL", "600s".into()),
        ],
        ..Default::default()
    })
    .await;
    let (id, secret, access, refresh) = server.confidential_tokens().await;
    let lifetime = |v: &Value| v["exp"].as_i64().unwrap() - v["iat"].as_i64().unwrap();
    let a = server.introspect_as(&id, &secret, &access).await;
    assert_eq!(lifetime(&a), 120, "{a}");
    let r = server.introspect_as(&id, &secret, &refresh).await;
    assert_eq!(lifetime(&r), 600, "{r}");
}
