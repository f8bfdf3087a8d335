//! Dynamic client registration (RFC 7591): accepted shapes, refused metadata, nothing stored on error.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

async fn client_count(server: &TestServer) -> usize {
    server
        .state
        .provider
        .clients()
        .list_clients()
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn public_and_confidential_clients() {
    let server = start().await;
    let r = server.register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "client_name": "CLI"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: Value = r.json().await.unwrap();
    assert!(v["client_id"].is_string() && v["client_id_issued_at"].is_number());
    assert!(
        v.get("client_secret").is_none(),
        "public clients get no secret"
    );
    assert_eq!(v["token_endpoint_auth_method"], "none");
    assert_eq!(v["redirect_uris"], json!([REDIRECT]));

    // Default auth method is client_secret_basic (RFC 7591 §2) → a 256-bit secret.
    let r = server.register(json!({"redirect_uris": ["https://app.example/cb"], "client_uri": "https://app.example"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(v["client_secret"].as_str().unwrap().len(), 43);
    assert_eq!(v["client_secret_expires_at"], 0);
    assert_eq!(v["client_uri"], "https://app.example");
    let stored = server
        .state
        .provider
        .clients()
        .get_client(v["client_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let hash = stored.client_secret_hash.unwrap();
    assert_ne!(
        hash.0,
        v["client_secret"].as_str().unwrap(),
        "only a hash is stored"
    );
    assert_eq!(hash.0.len(), 64);
}

#[tokio::test]
async fn bad_metadata_is_refused_and_nothing_is_stored() {
    let server = start().await;
    let before = client_count(&server).await;
    let cases = [
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb#frag"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
        ),
        (json!({"redirect_uris": []}), "invalid_redirect_uri"),
        (json!({}), "invalid_redirect_uri"),
        (
            json!({"redirect_uris": "https://app.example/cb"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "grant_types": ["password"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "response_types": ["token"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "scope": "root"}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "client_name": 5}),
            "invalid_client_metadata",
        ),
        (
            json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
        ),
        (json!([1, 2]), "invalid_request"),
    ];
    for (body, expected) in cases {
        let r = server.register(body.clone()).await;
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(
            error_of(r).await,
            (StatusCode::BAD_REQUEST, expected.to_string()),
            "{body}"
        );
    }
    let r = http()
        .post(server.url("/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_request".into())
    );
    assert_eq!(
        client_count(&server).await,
        before,
        "refused registrations store nothing"
    );
}
