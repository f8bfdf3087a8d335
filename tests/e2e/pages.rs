//! The login and consent pages: CSRF and browser binding, generic failure messages, escaping,
//! anti-framing headers, and CORS only where MCP clients need it. And what the pages show (issue 12):
//! the server's name and `[ui]` branding, primary and secondary buttons, scope descriptions, the
//! unverified mark of self-registered clients, developer details on error pages, the `/` page.

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

/// `[ui]` with hostile values and scope descriptions. The first line continues the test config's
/// own `[[resources]]` table (the last one in it); then `[ui]` opens.
const BRANDED: &str = r##"scope_descriptions = { "mcp:tools" = "Use the <b>tools</b>", "mcp:admin" = "Administer" }

[ui]
title = "Acme <script>alert('t')</script> sign-in"
logo_url = "https://cdn.example.com/brand/logo.svg"
accent_color = "#FFEB3B"
"##;

fn branded() -> Options {
    Options {
        extra_toml: Some(BRANDED.into()),
        ..Default::default()
    }
}

/// A sign-in for `client_id`: the login page's CSP header, the login page and the consent page.
async fn login_and_consent(server: &TestServer, client_id: &str) -> (String, String, String) {
    let b = browser();
    let r = server.authorize(&b, &server.auth_params(client_id)).await;
    let login = b.get(server.url(&location(&r))).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let login = login.text().await.unwrap();
    let (tx, csrf) = (input_value(&login, "tx"), input_value(&login, "csrf_token"));
    let consent = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(consent.status(), StatusCode::OK);
    (csp, login, consent.text().await.unwrap())
}

#[tokio::test]
async fn without_ui_the_pages_name_the_issuer_host_and_follow_the_colour_scheme() {
    let server = start().await;
    let host = format!("127.0.0.1:{}", server.port());
    let client_id = server.register_public().await;
    let (csp, login, consent) = login_and_consent(&server, &client_id).await;
    assert!(!csp.contains("img-src"), "no image may load without a logo");
    assert!(
        login.contains(&format!("Sign in to {host}</h1>")),
        "{login}"
    );
    assert!(
        login.contains(&format!("<title>Sign in · {host}</title>")),
        "{login}"
    );
    assert!(!login.contains("<img"), "{login}");
    // Accessibility and layout: language, viewport, labelled inputs, dark scheme, focus ring.
    assert!(login.contains("<html lang=\"en\">"));
    assert!(login.contains("name=\"viewport\" content=\"width=device-width, initial-scale=1\""));
    assert!(login.contains("<label for=\"username\">") && login.contains("id=\"username\""));
    assert!(login.contains("<label for=\"password\">") && login.contains("id=\"password\""));
    assert!(
        login.contains("@media (prefers-color-scheme: dark)"),
        "{login}"
    );
    assert!(login.contains(":focus-visible"));
    assert!(
        login.contains("padding: 0 1rem"),
        "side margins on a narrow screen"
    );
    assert!(
        login.contains("<button type=\"submit\" class=\"button primary\">Sign in</button>"),
        "{login}"
    );
    // A self-registered client is unverified, on both pages.
    assert!(login.contains("class=\"badge\""), "{login}");
    assert!(consent.contains(">Unverified</span>"), "{consent}");
    assert!(consent.contains("Unverified application."), "{consent}");
    assert!(
        consent.contains(&format!("Signed in to {host} as")),
        "{consent}"
    );
    // The test resource describes no scope: the scope alone is shown.
    assert!(
        consent.contains("<li><code>mcp:tools</code></li>"),
        "{consent}"
    );
    assert!(
        consent.contains("class=\"button primary\" name=\"decision\" value=\"approve\">Allow<"),
        "{consent}"
    );
    assert!(
        consent.contains("class=\"button secondary\" name=\"decision\" value=\"deny\">Deny<"),
        "{consent}"
    );
}

#[tokio::test]
async fn ui_branding_and_scope_descriptions_are_shown_escaped() {
    let server = start_with(branded()).await;
    let client_id = server.register_public().await;
    let (csp, login, consent) = login_and_consent(&server, &client_id).await;
    assert!(
        csp.contains("img-src https://cdn.example.com; "),
        "the logo's origin may load: {csp}"
    );
    for page in [&login, &consent] {
        assert!(!page.contains("<script>"), "the title is escaped: {page}");
        assert!(page.contains("Acme &lt;script&gt;alert("), "{page}");
        assert!(page.contains("<img src=\"https:"), "{page}");
        assert!(page.contains("cdn.example.com"), "{page}");
        // A light accent gets black button text.
        assert!(
            page.contains("--accent: #ffeb3b; --accent-text: #000000;"),
            "{page}"
        );
    }
    assert!(login.contains("Sign in to Acme &lt;script&gt;"), "{login}");
    // The description is beside its scope, escaped.
    assert!(
        consent.contains(
            "<span class=\"scope-description\">Use the &lt;b&gt;tools&lt;&#x2f;b&gt;</span> <code>mcp:tools</code>"
        ),
        "{consent}"
    );
    assert!(!consent.contains("<b>"), "{consent}");
    assert!(
        !consent.contains("Administer"),
        "only requested scopes are listed"
    );
}

#[tokio::test]
async fn an_administrator_created_client_is_not_marked_unverified() {
    let server = start().await;
    let (client_id, _) = admin_client(
        &server,
        json!({
            "client_name": "Company app",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"],
        }),
    )
    .await;
    let (_, login, consent) = login_and_consent(&server, &client_id).await;
    assert!(
        consent.contains("<strong>Company app</strong>"),
        "{consent}"
    );
    for page in [&login, &consent] {
        assert!(!page.contains("Unverified"), "{page}");
        assert!(!page.contains("class=\"badge\""), "{page}");
    }
}

/// The developer details of an error page: (code, client_id).
fn details(page: &str) -> (String, Option<String>) {
    let d = page
        .split("<details class=\"developer\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no developer details: {page}"))
        .split("</details>")
        .next()
        .unwrap();
    let field = |name: &str| {
        d.split(&format!("<dt>{name}</dt><dd><code>"))
            .nth(1)
            .map(|rest| rest.split("</code>").next().unwrap().to_string())
    };
    (field("Error").unwrap(), field("client_id"))
}

#[tokio::test]
async fn error_pages_keep_the_friendly_text_and_add_developer_details() {
    let server = start().await;
    // An unknown client: the id the request named, escaped.
    let hostile = "<script>alert(1)</script>";
    let r = server
        .authorize(&http(), &server.auth_params(hostile))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("is not registered with this server"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "{page}");
    assert_eq!(
        details(&page),
        (
            "invalid_client".into(),
            Some("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;".into())
        )
    );

    // A redirect URI that is not registered, for a known client.
    let client_id = server.register_public().await;
    let params = with(
        &server.auth_params(&client_id),
        "redirect_uri",
        Some("http://127.0.0.1:9/elsewhere"),
    );
    let page = server
        .authorize(&http(), &params)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("The redirect_uri is not registered"),
        "{page}"
    );
    assert_eq!(
        details(&page),
        ("invalid_request".into(), Some(client_id.clone()))
    );

    // An error held back from an unapproved client: its own code, the client, and the link.
    let params = with(
        &server.auth_params(&client_id),
        "response_type",
        Some("token"),
    );
    let page = server
        .authorize(&http(), &params)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("only response_type=code is supported"),
        "{page}"
    );
    assert!(page.contains("Continue to 127.0.0.1"), "{page}");
    assert_eq!(
        details(&page),
        ("unsupported_response_type".into(), Some(client_id.clone()))
    );

    // A login form from another browser: the transaction's client, access_denied.
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let r = server
        .post_login(&browser(), &tx, &csrf, USER, PASSWORD)
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let page = r.text().await.unwrap();
    assert!(page.contains("This form could not be verified."), "{page}");
    assert_eq!(
        details(&page),
        ("access_denied".into(), Some(client_id.clone()))
    );

    // No transaction: no client to name.
    let page = b
        .get(server.url("/login?tx=nope"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("This sign-in request has expired"), "{page}");
    assert_eq!(details(&page), ("invalid_request".into(), None));
    assert!(
        !page.contains("csrf") && !page.contains(&tx),
        "no secret in the details"
    );
}

#[tokio::test]
async fn the_root_page_names_the_server_and_links_its_metadata() {
    for (opts, name) in [
        (Options::default(), None),
        (branded(), Some("Acme &lt;script&gt;alert(")),
    ] {
        let server = start_with(opts).await;
        let r = http().get(server.url("/")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert!(r.headers().get("access-control-allow-origin").is_none());
        let page = r.text().await.unwrap();
        let host = format!("127.0.0.1:{}", server.port());
        let name = name.map(str::to_string).unwrap_or(host);
        assert!(page.contains(&format!("<h1>{name}")), "{page}");
        assert!(
            page.contains("<a href=\"&#x2f;.well-known&#x2f;oauth-authorization-server\">")
                || page.contains("<a href=\"/.well-known/oauth-authorization-server\">"),
            "{page}"
        );
        assert!(page.contains("Test &lt;MCP&gt; server"), "{page}");
        assert!(!page.contains("<script>"), "{page}");
        // The metadata it links to is there.
        let meta = http()
            .get(server.url("/.well-known/oauth-authorization-server"))
            .send()
            .await
            .unwrap();
        assert_eq!(meta.status(), StatusCode::OK);
    }
}

/// A login transaction lives `[login] transaction_ttl` (authorize.rs `expires_at`, login.rs
/// `load`): after it, the login page and the form are an "expired" page, and no code is issued.
#[tokio::test]
async fn an_expired_sign_in_request_is_refused() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__LOGIN__TRANSACTION_TTL", "1s".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let page = b
        .get(server.url(&format!("/login?tx={tx}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(page.text().await.unwrap().contains("expired"));
    let r = server.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.headers().get("location").is_none(),
        "no code after expiry"
    );
    assert!(r.text().await.unwrap().contains("expired"));
}

/// The login and consent pages name the resource by its `[[resources]] name`, escaped (login.rs
/// `resource_name`), so the user sees what the client asks for.
#[tokio::test]
async fn the_pages_name_the_resource() {
    let server = start().await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, login_page) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let consent = server
        .post_login(&b, &tx, &csrf, USER, PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    for page in [&login_page, &consent] {
        assert!(page.contains("Test &lt;MCP&gt; server"), "{page}");
    }
}

/// The browser-binding cookie is `mcp_oauth_browser` (http), `HttpOnly`, `SameSite=Lax`, and a
/// malformed value the browser presents is replaced, never adopted (browser_binding.rs).
#[tokio::test]
async fn the_binding_cookie_is_named_and_a_malformed_one_is_replaced() {
    let server = start().await;
    let client_id = server.register_public().await;
    for planted in ["chosen-by-an-attacker", &"a".repeat(44)] {
        let r = http()
            .get(server.url("/authorize"))
            .query(&server.auth_params(&client_id))
            .header("cookie", format!("mcp_oauth_browser={planted}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.starts_with("mcp_oauth_browser="), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        assert!(
            !cookie.contains(planted),
            "a planted value was adopted: {cookie}"
        );
    }
}
