//! Attack (issue 8 §8 "Client authentication"): a client registered for `client_secret_basic`
//! authenticates with `client_secret_post` (or the other way round). A server that accepts any
//! method lets a secret leaked in one channel (form bodies end up in logs far more often than
//! Authorization headers) be used even though the client never uses that channel.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{REDIRECT, error_of, http, start};

async fn register(s: &crate::support::TestServer, method: &str) -> (String, String) {
    let r = s
        .register(json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": method,
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().unwrap().to_string(),
    )
}

const GRANT: [(&str, &str); 2] = [
    ("grant_type", "refresh_token"),
    ("refresh_token", "not-a-real-token"),
];

#[tokio::test]
async fn attack_basic_client_authenticating_with_post_is_refused() {
    let s = start().await;
    let (id, secret) = register(&s, "client_secret_basic").await;
    let mut form = GRANT.to_vec();
    form.push(("client_id", &id));
    form.push(("client_secret", &secret));
    let r = http()
        .post(s.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into()),
        "client_secret_post accepted for a client_secret_basic client"
    );
    // Its own method still works (the grant itself is bad: invalid_grant, not invalid_client).
    let r = http()
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&GRANT)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn attack_post_client_authenticating_with_basic_is_refused() {
    let s = start().await;
    let (id, secret) = register(&s, "client_secret_post").await;
    let r = http()
        .post(s.url("/token"))
        .basic_auth(&id, Some(&secret))
        .form(&GRANT)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::UNAUTHORIZED, "invalid_client".into()),
        "client_secret_basic accepted for a client_secret_post client"
    );
    let mut form = GRANT.to_vec();
    form.push(("client_id", &id));
    form.push(("client_secret", &secret));
    let r = http()
        .post(s.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

#[tokio::test]
async fn attack_wrong_method_is_refused_at_revocation_and_introspection_too() {
    let s = start().await;
    let (id, secret) = register(&s, "client_secret_basic").await;
    for path in ["/revoke", "/introspect"] {
        let r = http()
            .post(s.url(path))
            .form(&[
                ("token", "whatever"),
                ("client_id", id.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(r).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into()),
            "{path}"
        );
    }
}
