//! Crash safety: a load of registrations and token grants runs against a real `serve` process, which
//! is killed with SIGKILL; after a restart every acknowledged registration and token is still valid
//! (introspection active, refresh works) and the store is sound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth::oauth::pkce::s256_challenge;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::processes::*;
use crate::support::*;

/// What the server acknowledged before it died.
#[derive(Default)]
struct Acked {
    clients: Vec<String>,
    /// (client_id, access token, refresh token)
    tokens: Vec<(String, String, String)>,
}

/// One full flow without panicking: `None` as soon as anything fails (the server is being killed).
async fn flow(ep: &Endpoint, acked: &Mutex<Acked>) -> Option<()> {
    let http = http();
    let r = http
        .post(ep.url("/register"))
        .json(&json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]}))
        .send()
        .await
        .ok()?;
    if r.status() != StatusCode::CREATED {
        return None;
    }
    let client_id = r.json::<Value>().await.ok()?["client_id"]
        .as_str()?
        .to_string();
    acked.lock().unwrap().clients.push(client_id.clone());

    let b = browser();
    let params = [
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &s256_challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
        ("resource", ep.resource.as_str()),
    ];
    let r = b
        .get(ep.url("/authorize"))
        .query(&params)
        .send()
        .await
        .ok()?;
    let page = b
        .get(ep.url(&location(&r)))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    if !page.contains("csrf_token") {
        return None;
    }
    let (tx, csrf) = (input_value(&page, "tx"), input_value(&page, "csrf_token"));
    let form = [
        ("tx", tx.as_str()),
        ("csrf_token", csrf.as_str()),
        ("username", USER),
        ("password", PASSWORD),
    ];
    b.post(ep.url("/login")).form(&form).send().await.ok()?;
    let form = [
        ("tx", tx.as_str()),
        ("csrf_token", csrf.as_str()),
        ("decision", "approve"),
    ];
    let r = b.post(ep.url("/consent")).form(&form).send().await.ok()?;
    let code = query_param(&location(&r), "code")?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let r = http.post(ep.url("/token")).form(&form).send().await.ok()?;
    if r.status() != StatusCode::OK {
        return None;
    }
    let t: Value = r.json().await.ok()?;
    let entry = (
        client_id,
        t["access_token"].as_str()?.to_string(),
        t["refresh_token"].as_str()?.to_string(),
    );
    acked.lock().unwrap().tokens.push(entry);
    Some(())
}

/// Runs the load, kills the server mid-flight, restarts it and checks every acknowledged record.
async fn crash_and_check(storage: &str, env: &[(&str, &str)]) -> Endpoint {
    let dir = TempDir::new("mcp-oauth-crash");
    let port = free_port().await;
    let config = dir.path().join("config.toml");
    std::fs::write(&config, process_config(port, port, storage)).unwrap();
    let server = ServeProcess::start(&config, port, port, env).await;
    let ep = server.ep.clone();

    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (ep, acked, stop) = (ep.clone(), Arc::clone(&acked), Arc::clone(&stop));
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if flow(&ep, &acked).await.is_none() && stop.load(Ordering::SeqCst) {
                    break;
                }
            }
        }));
    }
    // Let the load acknowledge a fair amount of work (bounded, so a slow machine waits longer
    // instead of failing), then kill while requests are still in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (clients, tokens) = {
            let a = acked.lock().unwrap();
            (a.clients.len(), a.tokens.len())
        };
        if (clients >= 12 && tokens >= 6) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.kill().await; // SIGKILL while requests are in flight
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }

    let server = ServeProcess::start(&config, port, port, env).await;
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    assert!(
        acked.clients.len() >= 12 && acked.tokens.len() >= 6,
        "the load did work before the kill: {} clients, {} token sets",
        acked.clients.len(),
        acked.tokens.len()
    );
    for client_id in &acked.clients {
        let params = server.auth_params(client_id);
        let r = server.authorize(&browser(), &params).await;
        assert_eq!(
            r.status(),
            StatusCode::FOUND,
            "acknowledged client {client_id} survived"
        );
        assert!(location(&r).starts_with("/login"));
    }
    for (client_id, access, refresh) in &acked.tokens {
        assert_eq!(
            server.introspect(access).await["active"],
            true,
            "acknowledged access token survived"
        );
        assert_eq!(
            server.refresh(client_id, refresh).await.status(),
            StatusCode::OK,
            "acknowledged refresh token works"
        );
    }
    let ep = server.ep.clone();
    assert!(server.terminate().await, "graceful shutdown on SIGTERM");
    drop(dir);
    ep
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_survives_sigkill_under_load() {
    let data = TempDir::new("mcp-oauth-crash-data");
    let storage = format!(
        "kind = \"sqlite\"\ndata_dir = \"{}\"",
        data.path().display()
    );
    crash_and_check(&storage, &[]).await;
    let url = format!("sqlite://{}", data.path().join("mcp-oauth.db").display());
    let store = mcp_oauth_provider_sql::SqliteStore::connect(
        &url,
        mcp_oauth_provider_sql::settings::SqliteSynchronous::Full,
        1,
    )
    .await
    .unwrap();
    assert_eq!(
        store.integrity_check().await.unwrap(),
        "ok",
        "the database file is sound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_survives_sigkill_under_load() {
    let Some(schema) = pg_schema().await else {
        return;
    };
    let url = pg_url();
    pg_migrate(&url, &schema).await;
    let storage = format!("kind = \"postgres\"\nurl = \"{url}\"\nsearch_path = \"{schema}\"");
    crash_and_check(
        &storage,
        &[(
            "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
            "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M=",
        )],
    )
    .await;
}
