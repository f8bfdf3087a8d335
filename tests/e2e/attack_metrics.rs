//! Attack: reading `/metrics` from outside (information disclosure, CWE-200). Metrics show how the
//! server is used (sign-in failures, token rates, pool pressure); on the main listener they are
//! served only to a loopback peer whose request names no forwarded client, so a reverse proxy on
//! the same host does not pass them on, and `[metrics] enabled = false` removes them everywhere.
//! (Only loopback addresses are reachable in tests; a remote peer is covered by the unit test
//! `observability::metrics::tests::only_direct_loopback_requests_may_scrape_the_main_listener`.)

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test]
async fn metrics_are_not_served_through_a_proxy_or_when_switched_off() {
    let server = start().await;
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7"),
        ("x-real-ip", "203.0.113.7"),
    ] {
        let r = http()
            .get(server.url("/metrics"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{name}");
        assert!(!r.text().await.unwrap().contains("mcp_oauth_"), "{name}");
    }
    let off = start_with(Options {
        env: vec![("MCP_OAUTH__METRICS__ENABLED", "false".into())],
        ..Default::default()
    })
    .await;
    assert_eq!(
        http()
            .get(off.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        http()
            .get(off.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}
