//! Attacks on the per-address request limits (issue 8 §2 "Also limit per address", "Proxies"):
//! one address flooding `/register`, `/token`, `/authorize` and `/login`, and a client forging
//! `X-Forwarded-For` to look like many addresses. Every test runs on the default settings.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{REDIRECT, TestServer, http, location, start, start_with};

/// Sends up to `n` requests built by `send` (one pooled client, 32 at a time, so a slow, busy
/// machine still sends faster than any bucket refills); returns one refused with 429.
async fn flood<F, Fut>(what: &str, n: usize, send: F) -> reqwest::Response
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response, reqwest::Error>> + Send + 'static,
{
    let mut statuses = std::collections::BTreeMap::new();
    let mut sent = 0;
    while sent < n {
        let batch: Vec<_> = (sent..(sent + 32).min(n))
            .map(|i| tokio::spawn(send(i)))
            .collect();
        sent += batch.len();
        let mut refused = None;
        for task in batch {
            let r = task.await.unwrap().unwrap();
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                refused.get_or_insert(r);
            } else {
                *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
            }
        }
        if let Some(r) = refused {
            return r;
        }
    }
    panic!("{n} {what} from one address were all served (statuses: {statuses:?})");
}

fn public_client_body() -> Value {
    json!({
        "client_name": "flood",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    })
}

/// A 429 in the OAuth JSON format with a usable `Retry-After`.
async fn assert_json_slow_down(r: reqwest::Response) {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        r.headers().get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "slow_down", "{v}");
    assert!(v["error_description"].is_string(), "{v}");
}

#[tokio::test]
async fn attack_register_flood_from_one_address_is_slowed_down() {
    let s = start().await;
    let c = http();
    let refused = flood("registrations", 200, |_| {
        c.post(s.url("/register"))
            .json(&public_client_body())
            .send()
    })
    .await;
    assert_json_slow_down(refused).await;
}

#[tokio::test]
async fn attack_token_flood_from_one_address_is_slowed_down() {
    let s = start().await;
    let c = http();
    let refused = flood("token requests", 1000, |_| {
        c.post(s.url("/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "guess"),
                ("client_id", "nobody"),
            ])
            .send()
    })
    .await;
    assert_json_slow_down(refused).await;
}

#[tokio::test]
async fn attack_login_page_flood_gets_an_html_429() {
    let s = start().await;
    let c = http();
    let refused = flood("login page requests", 500, |_| {
        c.get(s.url("/login?tx=guessed-transaction")).send()
    })
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("retry-after").is_some());
    assert!(
        refused
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "a browser endpoint answers with a page"
    );
    assert_eq!(refused.headers().get("x-frame-options").unwrap(), "DENY");
    let html = refused.text().await.unwrap();
    assert!(html.contains("Too many requests"), "{html}");
}

#[tokio::test]
async fn attack_authorize_flood_from_one_address_is_slowed_down() {
    let s = start().await;
    // An unknown client: every request is answered with an error page, no login is started, so
    // only the request rate can stop it.
    let params = s.auth_params("nobody");
    let c = http();
    let refused = flood("authorization requests", 500, |_| {
        c.get(s.url("/authorize")).query(&params).send()
    })
    .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().get("retry-after").is_some());
    assert!(location(&refused).is_empty(), "never redirected");
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("<html") || html.contains("<!doctype"),
        "{html}"
    );
}

/// Without `trusted_proxies`, a client cannot pick a fresh address per request.
#[tokio::test]
async fn attack_forged_x_forwarded_for_does_not_reset_the_limit() {
    let s = start().await;
    let c = http();
    let refused = flood(
        "registrations with a forged X-Forwarded-For each",
        200,
        |i| {
            c.post(s.url("/register"))
                .header("x-forwarded-for", format!("198.51.100.{}", i % 250))
                .json(&public_client_body())
                .send()
        },
    )
    .await;
    assert_json_slow_down(refused).await;
}

async fn register_burst(s: &TestServer, n: usize, forwarded_for: Option<&str>) -> usize {
    let mut created = 0;
    for _ in 0..n {
        let mut req = http().post(s.url("/register")).json(&public_client_body());
        if let Some(x) = forwarded_for {
            req = req.header("x-forwarded-for", x);
        }
        if req.send().await.unwrap().status() == StatusCode::CREATED {
            created += 1;
        }
    }
    created
}

/// Behind a trusted proxy, each forwarded client has its own budget (refill is slow enough, one a
/// minute, that the test cannot race it).
#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget() {
    let s = start_with(crate::support::Options {
        env: vec![
            ("MCP_OAUTH__SERVER__TRUSTED_PROXIES", "127.0.0.1".into()),
            ("MCP_OAUTH__LIMITS__REGISTER_PER_MINUTE", "1".into()),
            ("MCP_OAUTH__LIMITS__REGISTER_BURST", "3".into()),
        ],
        ..Default::default()
    })
    .await;
    assert_eq!(register_burst(&s, 5, Some("198.51.100.1")).await, 3);
    assert_eq!(register_burst(&s, 5, Some("198.51.100.2")).await, 3);
    // A forged left-most entry does not help: the proxy's own entry is the right-most one.
    assert_eq!(
        register_burst(&s, 2, Some("203.0.113.50, 198.51.100.1")).await,
        0
    );
}

/// Load tests and conformance harnesses switch the limits off.
#[tokio::test]
async fn rate_limits_can_be_switched_off() {
    let s = start_with(crate::support::Options {
        env: vec![("MCP_OAUTH__LIMITS__RATE_LIMITS", "false".into())],
        ..Default::default()
    })
    .await;
    assert_eq!(register_burst(&s, 120, None).await, 120);
}
