//! The stdio proxy against the server that is not ours (plain JSON answers, no sessions): messages
//! go through unchanged, ids included, and an authorization failure becomes a JSON-RPC error.

use std::time::Duration;

use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::session::proxy;
use mcp_oauth_client::{Authorizer, ClientOptions, Secret};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::fake::Config;
use crate::not_ours::setup;

async fn run_proxy(auth: Authorizer, input: &str) -> Vec<Value> {
    let (mut host_in, proxy_in) = tokio::io::duplex(64 * 1024);
    let (proxy_out, host_out) = tokio::io::duplex(64 * 1024);
    host_in.write_all(input.as_bytes()).await.unwrap();
    drop(host_in);
    tokio::time::timeout(
        Duration::from_secs(20),
        proxy::run(auth, BufReader::new(proxy_in), proxy_out),
    )
    .await
    .expect("the proxy ends when its input ends")
    .unwrap();
    let mut lines = BufReader::new(host_out).lines();
    let mut out = Vec::new();
    while let Some(l) = lines.next_line().await.unwrap() {
        out.push(serde_json::from_str(&l).unwrap());
    }
    out
}

#[tokio::test]
async fn relays_json_answers_unchanged() {
    let s = setup(Config::default()).await;
    let auth = Authorizer::new(
        &s.fake.mcp_url(),
        s.store.clone(),
        ClientOptions {
            login: LoginMode::Headless {
                username: "u".into(),
                password: Secret::new("p"),
            },
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let input = concat!(
        r#"{"jsonrpc":"2.0","id":"init-1","method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"h","version":"1"}}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        "\n\n",
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"admin_stats"}}"#,
        "\n",
        r#"{"jsonrpc":"2.0","id":8,"method":"no/such/method"}"#,
        "\n",
    );
    let mut out = run_proxy(auth, input).await;
    out.sort_by_key(|v| v["id"].to_string());
    assert_eq!(out.len(), 3, "{out:?}");
    let by_id = |id: Value| out.iter().find(|v| v["id"] == id).unwrap().clone();
    assert_eq!(
        by_id("init-1".into())["result"]["serverInfo"]["name"],
        "fake-mcp"
    );
    // The 403 was stepped up inside the proxy; the host only sees the result.
    assert_eq!(by_id(7.into())["result"]["content"][0]["text"], "stats: ok");
    assert_eq!(
        by_id(8.into())["error"]["code"],
        -32601,
        "server errors pass through"
    );
    assert_eq!(s.fake.log().authorize.len(), 2);
}

#[tokio::test]
async fn an_authorization_failure_becomes_a_json_rpc_error() {
    let s = setup(Config::default()).await;
    let auth = Authorizer::new(
        &s.fake.mcp_url(),
        s.store.clone(),
        ClientOptions {
            login: LoginMode::Never,
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let out = run_proxy(
        auth,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"}\n",
    )
    .await;
    assert_eq!(out.len(), 1, "notifications get no answer: {out:?}");
    assert_eq!(out[0]["id"], 1);
    assert!(
        out[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mcp-oauth login"),
        "{out:?}"
    );
}
