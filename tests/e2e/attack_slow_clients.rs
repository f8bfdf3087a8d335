//! Attacks by slow and abusive clients (issue 8 §7): half-sent headers, a body trickled a byte at a
//! time, idle connections held until the server runs out of file descriptors, oversize `/authorize`
//! parameters and an address opening login transactions without end. Every test runs on the
//! default settings.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::processes::{TempDir, free_port, process_config};
use crate::support::{http, location, start, with};

/// Waits until the server closes `conn` (EOF or reset); returns how long that took, or `None`
/// when it was still open after `limit`. Whatever the server sends first (an error response) is
/// read and ignored.
async fn closed_within(conn: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + limit),
            conn.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn attack_half_sent_request_headers_are_closed_after_the_timeout() {
    let s = start().await;
    let mut conn = TcpStream::connect(("127.0.0.1", s.port())).await.unwrap();
    conn.write_all(b"GET /.well-known/oauth-authorization-server HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The default header read timeout is 10 s.
    let took = closed_within(&mut conn, Duration::from_secs(15)).await;
    assert!(
        took.is_some(),
        "a request whose headers never end was still open after 15 s"
    );
}

#[tokio::test]
async fn attack_idle_keep_alive_connections_are_closed_after_the_timeout() {
    let s = start().await;
    let mut conn = TcpStream::connect(("127.0.0.1", s.port())).await.unwrap();
    // One complete request, then nothing: the connection sits idle in keep-alive.
    conn.write_all(b"GET /jwks.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let took = closed_within(&mut conn, Duration::from_secs(15)).await;
    assert!(
        took.is_some(),
        "an idle connection was still open after 15 s"
    );
}

#[tokio::test]
async fn attack_slow_body_is_cut_off() {
    let s = start().await;
    let mut conn = TcpStream::connect(("127.0.0.1", s.port())).await.unwrap();
    conn.write_all(
        b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 1000\r\n\r\ngrant_type=",
    )
    .await
    .unwrap();
    // One byte every 500 ms: each arrives well within any per-read timeout, the whole body never.
    let started = Instant::now();
    let mut answered = None;
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(16) {
        if conn.write_all(b"x").await.is_err() {
            answered = Some(started.elapsed());
            break;
        }
        match tokio::time::timeout(Duration::from_millis(500), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                answered = Some(started.elapsed());
                break;
            }
            Ok(Ok(n)) => {
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                assert!(
                    head.starts_with("HTTP/1.1 400") || head.starts_with("HTTP/1.1 408"),
                    "{head}"
                );
                answered = Some(started.elapsed());
                break;
            }
            Err(_) => {}
        }
    }
    let took = answered.expect("a body trickled a byte at a time was still being read after 16 s");
    // The default body read timeout is 10 s.
    assert!(
        took >= Duration::from_secs(9),
        "cut off too early: {took:?}"
    );
}

/// A connection from `source` (any 127.0.0.0/8 address works on Linux loopback).
async fn connect_from(source: Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    sock.connect(SocketAddr::from(([127, 0, 0, 1], port))).await
}

/// `mcp-oauth serve` in a process allowed only 128 open files (as in the report).
async fn serve_with_128_files() -> (tokio::process::Child, u16, TempDir) {
    let dir = TempDir::new("mcp-oauth-attack-fds");
    let port = free_port().await;
    let config = dir.path().join("config.toml");
    std::fs::write(&config, process_config(port, port, "kind = \"memory\"")).unwrap();
    let child = tokio::process::Command::new("prlimit")
        .arg("--nofile=128:128")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_mcp-oauth"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server");
    for _ in 0..200 {
        if let Ok(r) = http().get(&url).send().await
            && r.status().is_success()
        {
            return (child, port, dir);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not come up");
}

/// A real client's request from 127.0.0.1; true when answered within `limit`.
async fn served_within(port: u16, limit: Duration) -> bool {
    let url = format!("http://127.0.0.1:{port}/.well-known/oauth-authorization-server");
    let client = reqwest::Client::builder().timeout(limit).build().unwrap();
    matches!(client.get(&url).send().await, Ok(r) if r.status().is_success())
}

#[tokio::test]
async fn attack_idle_connections_from_one_address_do_not_stop_real_requests() {
    let (_child, port, _dir) = serve_with_128_files().await;
    // 130 idle connections from one address: more than the process has descriptors for.
    let mut idle = Vec::new();
    for _ in 0..130 {
        if let Ok(c) = connect_from(Ipv4Addr::new(127, 0, 0, 2), port).await {
            idle.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        served_within(port, Duration::from_secs(5)).await,
        "130 idle connections from one address stopped a real request from being served"
    );
}

#[tokio::test]
async fn attack_idle_connections_from_many_addresses_do_not_stop_real_requests_for_long() {
    let (_child, port, _dir) = serve_with_128_files().await;
    // 130 idle connections from 130 addresses: the per-address limit cannot help, the connection
    // limit and the header read timeout must.
    let mut idle = Vec::new();
    for i in 0..130u8 {
        if let Ok(c) = connect_from(Ipv4Addr::new(127, 0, 1, i + 1), port).await {
            idle.push(c);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The default header read timeout is 10 s; the request waits at most that long for a slot.
    assert!(
        served_within(port, Duration::from_secs(15)).await,
        "130 idle connections from many addresses stopped a real request for more than 15 s"
    );
}

#[tokio::test]
async fn attack_oversize_state_is_refused_and_never_echoed() {
    let s = start().await;
    let client_id = s.register_public().await;
    let huge = "s".repeat(4000);
    let r = http()
        .get(s.url("/authorize"))
        .query(&with(&s.auth_params(&client_id), "state", Some(&huge)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{}", location(&r));
    assert!(location(&r).is_empty(), "an oversize state is not echoed");
    let html = r.text().await.unwrap();
    assert!(html.contains("state"), "{html}");
    // Just under the default limit of 1024 bytes: accepted.
    let ok = "s".repeat(1024);
    let r = http()
        .get(s.url("/authorize"))
        .query(&with(&s.auth_params(&client_id), "state", Some(&ok)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn attack_oversize_authorize_parameters_are_refused() {
    let s = start().await;
    let client_id = s.register_public().await;
    for name in ["scope", "resource", "code_challenge", "nonce", "prompt"] {
        let big = "a".repeat(3000);
        let r = http()
            .get(s.url("/authorize"))
            .query(&with(&s.auth_params(&client_id), name, Some(&big)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{name}");
        assert!(location(&r).is_empty(), "{name}: not redirected");
    }
    // Many small parameters add up too.
    let mut params = s.auth_params(&client_id);
    for i in 0..200 {
        params.push((format!("extra{i}"), "x".repeat(100)));
    }
    let r = http()
        .get(s.url("/authorize"))
        .query(&params)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn attack_one_address_cannot_open_login_transactions_without_end() {
    let s = start().await;
    let client_id = s.register_public().await;
    let params = s.auth_params(&client_id);
    let mut opened = 0;
    let mut refused = None;
    for _ in 0..100 {
        let r = http()
            .get(s.url("/authorize"))
            .query(&params)
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::FOUND {
            opened += 1;
        } else {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("100 open login transactions from one address were all accepted");
    // The default is 64 open transactions per address.
    assert_eq!(opened, 64);
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    assert!(location(&r).is_empty());
}
