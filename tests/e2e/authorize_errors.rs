//! Every `/authorize` error path of MCP-AUTH §5.1: pages before the redirect URI is trusted,
//! redirects with `error`, `state` and `iss` after.

use reqwest::StatusCode;

use crate::support::*;

/// Asserts an HTML error page without a redirect.
async fn assert_page(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none(), "must never redirect");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    r.text().await.unwrap()
}

/// Asserts a redirect to the client with `error`.
fn assert_redirect_error(server: &TestServer, r: &reqwest::Response, error: &str) {
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location(r);
    assert!(loc.starts_with(REDIRECT), "{loc}");
    assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
    assert_eq!(query_param(&loc, "state").as_deref(), Some("xyz-state"));
    assert_eq!(
        query_param(&loc, "iss").as_deref(),
        Some(server.base.as_str())
    );
    assert!(query_param(&loc, "code").is_none());
}

#[tokio::test]
async fn unknown_client_gets_a_page_not_a_redirect() {
    let server = start().await;
    let params = server.auth_params("no-such-client");
    let html = assert_page(server.authorize(&http(), &params).await).await;
    assert!(html.contains("not registered"));
    let no_client = with(&params, "client_id", None);
    assert_page(server.authorize(&http(), &no_client).await).await;
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_a_page_not_a_redirect() {
    let server = start().await;
    let client_id = server.register_public().await;
    for bad in [
        "https://evil.example/callback",
        "http://127.0.0.1:4567/other",
        "http://localhost:4567/callback",
    ] {
        let params = with(&server.auth_params(&client_id), "redirect_uri", Some(bad));
        let html = assert_page(server.authorize(&http(), &params).await).await;
        assert!(
            !html.contains("evil.example"),
            "the page does not echo the URI as a link"
        );
    }
    // Repeated redirect_uri is also a page.
    let mut params = server.auth_params(&client_id);
    params.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    assert_page(server.authorize(&http(), &params).await).await;
}

#[tokio::test]
async fn loopback_redirect_uris_match_on_any_port() {
    let server = start().await;
    let client_id = server.register_public().await;
    let params = with(
        &server.auth_params(&client_id),
        "redirect_uri",
        Some("http://127.0.0.1:61000/callback"),
    );
    let r = server.authorize(&browser(), &params).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("/login?tx="));
}

#[tokio::test]
async fn plain_pkce_is_refused() {
    let server = start().await;
    let client_id = server.register_approved().await;
    let params = with(
        &server.auth_params(&client_id),
        "code_challenge_method",
        Some("plain"),
    );
    let r = server.authorize(&http(), &params).await;
    assert_redirect_error(&server, &r, "invalid_request");
    assert!(
        query_param(&location(&r), "error_description")
            .unwrap()
            .contains("S256")
    );
}

#[tokio::test]
async fn missing_pkce_is_refused() {
    let server = start().await;
    let client_id = server.register_approved().await;
    let no_challenge = with(&server.auth_params(&client_id), "code_challenge", None);
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &no_challenge).await,
        "invalid_request",
    );
    let no_method = with(
        &server.auth_params(&client_id),
        "code_challenge_method",
        None,
    );
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &no_method).await,
        "invalid_request",
    );
    let bad_challenge = with(
        &server.auth_params(&client_id),
        "code_challenge",
        Some("too-short"),
    );
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &bad_challenge).await,
        "invalid_request",
    );
}

#[tokio::test]
async fn unknown_resource_is_invalid_target() {
    let server = start().await;
    let client_id = server.register_approved().await;
    for bad in [
        "https://elsewhere.example/mcp",
        "not a uri",
        "http://127.0.0.1:1/mcp#frag",
    ] {
        let params = with(&server.auth_params(&client_id), "resource", Some(bad));
        assert_redirect_error(
            &server,
            &server.authorize(&http(), &params).await,
            "invalid_target",
        );
    }
}

#[tokio::test]
async fn resource_may_be_omitted_only_when_one_is_declared() {
    let server = start().await;
    let client_id = server.register_approved().await;
    let params = with(&server.auth_params(&client_id), "resource", None);
    assert_eq!(
        server.authorize(&browser(), &params).await.status(),
        StatusCode::FOUND
    );
    let loc = location(&server.authorize(&browser(), &params).await);
    assert!(loc.starts_with("/login"), "{loc}");

    let two = start_with(Options {
        extra_resources: true,
        ..Default::default()
    })
    .await;
    let client_id = two.register_approved().await;
    let params = with(&two.auth_params(&client_id), "resource", None);
    assert_redirect_error(
        &two,
        &two.authorize(&http(), &params).await,
        "invalid_target",
    );
}

#[tokio::test]
async fn scopes_must_be_offered_by_the_resource() {
    let server = start_with(Options {
        extra_resources: true,
        ..Default::default()
    })
    .await;
    let client_id = server.register_approved().await;
    let params = with(
        &server.auth_params(&client_id),
        "scope",
        Some("mcp:tools other:read"),
    );
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &params).await,
        "invalid_scope",
    );
    let params = with(&server.auth_params(&client_id), "scope", Some("unknown"));
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &params).await,
        "invalid_scope",
    );
}

#[tokio::test]
async fn client_registered_scope_is_the_default_and_step_up_is_allowed() {
    let server = start().await;
    let r = server
        .register(serde_json::json!({
            "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "mcp:tools",
        }))
        .await;
    let client_id = r.json::<serde_json::Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    // No scope: the registered one.
    let loc = server
        .obtain_redirect(&with(&server.auth_params(&client_id), "scope", None))
        .await;
    let code = query_param(&loc, "code").unwrap();
    let tokens: serde_json::Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["scope"], "mcp:tools");
    // Step-up beyond the registered scope goes to the user's consent (MCP scope challenges).
    let wider = with(
        &server.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let b = browser();
    let (tx, csrf, _) = server.start_login(&b, &wider).await;
    let consent = server
        .post_login(&b, &tx, &csrf, USER, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        consent.contains("mcp:admin"),
        "the consent page names the wider scope"
    );
    // Scopes no resource offers are still refused.
    let unknown = with(&server.auth_params(&client_id), "scope", Some("root"));
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &unknown).await,
        "invalid_scope",
    );
}

#[tokio::test]
async fn client_credentials_are_limited_to_the_registered_scope() {
    let server = start().await;
    let (id, secret) = admin_client(
        &server,
        serde_json::json!({"grant_types": ["client_credentials"], "scope": "mcp:tools"}),
    )
    .await;
    let (id, secret) = (id.as_str(), secret.as_str());
    let ask = |scope: &'static str| {
        http()
            .post(server.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", scope)])
            .send()
    };
    assert_eq!(
        ask("mcp:tools").await.unwrap().status(),
        reqwest::StatusCode::OK
    );
    let (status, err) = error_of(ask("mcp:admin").await.unwrap()).await;
    assert_eq!(
        (status, err.as_str()),
        (reqwest::StatusCode::BAD_REQUEST, "invalid_scope")
    );
}

#[tokio::test]
async fn wrong_response_type_and_repeated_parameters() {
    let server = start().await;
    let client_id = server.register_approved().await;
    let token = with(
        &server.auth_params(&client_id),
        "response_type",
        Some("token"),
    );
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &token).await,
        "unsupported_response_type",
    );
    let none = with(&server.auth_params(&client_id), "response_type", None);
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &none).await,
        "invalid_request",
    );
    let mut twice = server.auth_params(&client_id);
    twice.push(("scope".into(), "mcp:admin".into()));
    assert_redirect_error(
        &server,
        &server.authorize(&http(), &twice).await,
        "invalid_request",
    );
}

#[tokio::test]
async fn authorize_accepts_post() {
    let server = start().await;
    let client_id = server.register_public().await;
    let r = browser()
        .post(server.url("/authorize"))
        .form(&server.auth_params(&client_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert!(location(&r).starts_with("/login?tx="));
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(
        r.headers().get("access-control-allow-origin").is_none(),
        "no CORS on /authorize"
    );
}

/// OAuth 2.1 §4.1.1 / RFC 6749 §4.1.3: with one registered redirect URI a client may omit
/// `redirect_uri` at /authorize and then also at /token (authorize.rs `[only]`, token.rs
/// `redirect_uri_explicit`); with several registered, omitting it is a page.
#[tokio::test]
async fn redirect_uri_may_be_omitted_only_when_one_is_registered() {
    let server = start().await;
    let client_id = server.register_public().await;
    let params = with(&server.auth_params(&client_id), "redirect_uri", None);
    let loc = server.obtain_redirect(&params).await;
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let code = query_param(&loc, "code").expect("code in redirect");
    let r = server
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);

    let r = server
        .register(serde_json::json!({
            "client_name": "Two redirects",
            "redirect_uris": [REDIRECT, "http://127.0.0.1:4567/second"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
        }))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let two: serde_json::Value = r.json().await.unwrap();
    let params = with(
        &server.auth_params(two["client_id"].as_str().unwrap()),
        "redirect_uri",
        None,
    );
    let html = assert_page(server.authorize(&http(), &params).await).await;
    assert!(html.contains("registered several"), "{html}");
}
