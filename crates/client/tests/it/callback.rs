//! The loopback callback server: exactly one callback whose state matches, escaped pages, 404 for
//! stray paths, a clean timeout, cancellation.

use std::time::Duration;

use mcp_oauth_client::Secret;
use mcp_oauth_client::callback::{CallbackError, CallbackServer};

fn client() -> reqwest::Client {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_mismatched_state_is_refused_and_the_right_one_accepted() {
    let mut cb = CallbackServer::start(0).await.unwrap();
    let state = Secret::new("the-right-state-0123456789");
    cb.expect_state(&state);
    let uri = cb.redirect_uri();
    assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
    let http = client();
    let wrong = http
        .get(format!("{uri}?code=stolen&state=the-wrong-state"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(wrong.text().await.unwrap().contains("does not match"));
    let missing = http.get(format!("{uri}?code=x")).send().await.unwrap();
    assert_eq!(missing.status(), 400);
    let ok = http
        .get(format!(
            "{uri}?code=good&state=the-right-state-0123456789&iss=https%3A%2F%2Fas"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().contains("Login complete"));
    let got = cb.wait(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.code.as_deref(), Some("good"));
    assert_eq!(got.iss.as_deref(), Some("https://as"));
}

#[tokio::test]
async fn an_error_response_gets_an_escaped_failure_page() {
    let mut cb = CallbackServer::start(0).await.unwrap();
    cb.expect_state(&Secret::new("s1"));
    let url = reqwest::Url::parse_with_params(
        &cb.redirect_uri(),
        &[
            ("error", "access_denied"),
            ("error_description", "<script>alert('pwned')</script>"),
            ("state", "s1"),
        ],
    )
    .unwrap();
    let resp = client().get(url).send().await.unwrap();
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("Login failed") && page.contains("access_denied"),
        "{page}"
    );
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
    let got = cb.wait(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.error.as_deref(), Some("access_denied"));
    assert_eq!(
        got.error_description.as_deref(),
        Some("<script>alert('pwned')</script>")
    );
}

#[tokio::test]
async fn stray_paths_get_404() {
    let cb = CallbackServer::start(0).await.unwrap();
    let base = format!("http://127.0.0.1:{}", cb.port());
    for path in ["/", "/favicon.ico", "/callback/extra", "/admin"] {
        let r = client().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn it_times_out_cleanly_and_can_be_cancelled() {
    let mut cb = CallbackServer::start(0).await.unwrap();
    let port = cb.port();
    let started = std::time::Instant::now();
    let err = cb.wait(Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(err, CallbackError::Timeout(_)), "{err}");
    assert!(err.to_string().contains("Start the login again"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // The server is gone afterwards (the port is free to bind again).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = CallbackServer::start(port).await.unwrap();
    assert_eq!(again.port(), port, "a given port is used");

    let mut cb = CallbackServer::start(0).await.unwrap();
    let cancel = cb.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let err = cb.wait(Duration::from_secs(30)).await.unwrap_err();
    assert!(matches!(err, CallbackError::Cancelled), "{err}");
}
