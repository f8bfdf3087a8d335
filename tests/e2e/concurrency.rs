//! Races over real sockets.

use reqwest::StatusCode;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_redemptions_of_one_code_yield_one_token() {
    // 200 clients at once from one address: a load test, so no per-address connection limit.
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__LIMITS__MAX_CONNECTIONS_PER_ADDRESS", "0".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let code = server.obtain_code(&client_id).await;
    let client = http();
    let url = server.url("/token");
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = client.clone();
        let url = url.clone();
        let form = vec![
            ("grant_type".to_string(), "authorization_code".to_string()),
            ("code".to_string(), code.clone()),
            ("client_id".to_string(), client_id.clone()),
            ("redirect_uri".to_string(), REDIRECT.to_string()),
            ("code_verifier".to_string(), VERIFIER.to_string()),
        ];
        tasks.push(tokio::spawn(async move {
            client.post(url).form(&form).send().await.unwrap().status()
        }));
    }
    let mut ok = 0;
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 1, "exactly one redemption succeeds");
    assert_eq!(refused, 199);
}
