//! The login and consent pages: CSRF and browser binding, generic failure messages, escaping,
//! anti-framing headers, and CORS only where MCP clients need it.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn login_without_csrf_token_or_from_another_browser_is_refused() {
    let server = start().await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;

    // No CSRF token.
    let r = b
        .post(server.url("/login"))
        .form(&[
            ("tx", tx.as_str()),
            ("username", USER),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Wrong CSRF token.
    let r = server.post_login(&b, &tx, "forged", USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Right token, but another browser (no binding cookie): login CSRF is refused.
    let r = server
        .post_login(&browser(), &tx, &csrf, USER, PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The login page itself is not shown to another browser either.
    let r = browser()
        .get(server.url(&format!("/login?tx={tx}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Consent before login is refused.
    let r = server.post_consent(&b, &tx, &csrf, "approve", false).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The legitimate browser still completes.
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Unknown transaction.
    let r = b.get(server.url("/login?tx=nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let server = start().await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let wrong_pw = server.post_login(&b, &tx, &csrf, USER, "nope").await;
    assert_eq!(wrong_pw.status(), StatusCode::OK);
    let wrong_pw = wrong_pw.text().await.unwrap();
    let unknown = server
        .post_login(&b, &tx, &csrf, "mallory", "nope")
        .await
        .text()
        .await
        .unwrap();
    let empty = server
        .post_login(&b, &tx, &csrf, USER, "")
        .await
        .text()
        .await
        .unwrap();
    for page in [&wrong_pw, &unknown, &empty] {
        assert!(page.contains("Invalid username or password."), "{page}");
        assert!(
            page.contains("name=\"password\""),
            "the form is shown again"
        );
    }
    assert_eq!(
        wrong_pw.replace(USER, "mallory"),
        unknown,
        "only the echoed username differs"
    );
    // After failures the right password still works.
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert!(r.text().await.unwrap().contains("Allow access?"));
}

#[tokio::test]
async fn client_name_and_state_with_script_are_escaped_everywhere() {
    let server = start().await;
    let r = server
        .register(json!({
            "client_name": "<script>alert('name')</script>",
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let client_id = r.json::<serde_json::Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let params = with(
        &server.auth_params(&client_id),
        "state",
        Some("\"><script>alert('state')</script>"),
    );
    let b = browser();
    let (tx, csrf, login_page) = server.start_login(&b, &params).await;
    let failed_login = server
        .post_login(&b, &tx, &csrf, "<script>u</script>", "x")
        .await
        .text()
        .await
        .unwrap();
    let consent = server
        .post_login(&b, &tx, &csrf, USER, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let error_page = b
        .get(server.url("/login?tx=%3Cscript%3E"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for page in [&login_page, &failed_login, &consent, &error_page] {
        assert!(
            !page.contains("<script>"),
            "unescaped script in page: {page}"
        );
    }
    assert!(
        login_page.contains("&lt;script&gt;"),
        "the name is shown, escaped"
    );
    assert!(consent.contains("&lt;script&gt;"));
    // The state reaches the client intact (URL-encoded) in the redirect.
    let r = server.post_consent(&b, &tx, &csrf, "approve", false).await;
    assert_eq!(
        query_param(&location(&r), "state").as_deref(),
        Some("\"><script>alert('state')</script>")
    );
}

#[tokio::test]
async fn pages_cannot_be_framed_or_cached() {
    let server = start().await;
    let client_id = server.register_public().await;
    let b = browser();
    let r = server.authorize(&b, &server.auth_params(&client_id)).await;
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let page = b.get(server.url(&location(&r))).send().await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers()["cache-control"], "no-store");
    let error_page = server
        .authorize(&http(), &server.auth_params("nobody"))
        .await;
    assert_eq!(error_page.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn cors_on_api_endpoints_only() {
    let server = start().await;
    for path in [
        "/token",
        "/register",
        "/revoke",
        "/introspect",
        "/.well-known/oauth-authorization-server",
    ] {
        let r = http()
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "http://localhost:6274")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, mcp-protocol-version",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
        let allowed = r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(
            allowed.contains("mcp-protocol-version") && allowed.contains("authorization"),
            "{path}: {allowed}"
        );
    }
    for path in ["/authorize", "/login", "/consent"] {
        let r = http()
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "http://localhost:6274")
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{path} must not allow CORS"
        );
    }
}

#[tokio::test]
async fn unknown_paths_answer_json() {
    let server = start().await;
    let r = http().get(server.url("/nope")).send().await.unwrap();
    assert_eq!(
        error_of(r).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_username_for_a_while() {
    let server = start_with(Options {
        env: vec![
            ("MCP_OAUTH__LOGIN__MAX_FAILED_ATTEMPTS", "3".into()),
            ("MCP_OAUTH__LOGIN__LOCKOUT", "2s".into()),
        ],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    for _ in 0..3 {
        let page = server
            .post_login(&b, &tx, &csrf, USER, "guess")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Invalid username or password."));
    }
    // Locked: even the right password is not checked.
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Too many failed sign-in attempts")
    );
    // Unknown usernames are throttled the same way (nothing about existence leaks).
    for _ in 0..3 {
        server.post_login(&b, &tx, &csrf, "nobody", "guess").await;
    }
    let r = server.post_login(&b, &tx, &csrf, "nobody", "guess").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // After the lockout the right password works again.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert!(r.text().await.unwrap().contains("Allow access?"));
}
