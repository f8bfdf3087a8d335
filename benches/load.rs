//! Load driver for the authorization server: measures the token endpoint (client_credentials,
//! refresh rotation), introspection, full authorization-code flows (sign-in with argon2id, consent,
//! code exchange) against the raw argon2id rate, and the token endpoint's latency while a storm of
//! password logins runs.
//!
//! By default it starts a server in this process on 127.0.0.1:
//!
//!   cargo bench --bench load                          # in-memory storage
//!   BENCH_STORAGE=sqlite cargo bench --bench load     # SQLite (temp dir, synchronous=full)
//!   BENCH_SECONDS=10 BENCH_CONCURRENCY=32 cargo bench --bench load
//!
//! With `BENCH_URL` it drives a server running as its own process instead (`scripts/bench` does
//! this), which must have rate limits off, the initial access token `BENCH_INITIAL_ACCESS_TOKEN`,
//! and the accounts `alice` and `storm-0` … `storm-31` with the password `bench password`.
//! `BENCH_PHASES` picks phases (comma-separated; default all): `cc`, `introspect`, `refresh`,
//! `flows`, `storm`. `BENCH_HASH_CONCURRENCY` is the server's `[login] password_hash_concurrency`
//! (default as the server's: cores minus one, at least 1), used for the raw argon2id reference.
//! Each figure is also printed as a machine-readable line `#result NAME RATE P50_MS P99_MS`.
//!
//! Server and load share the machine's cores, so compare figures from one run as ratios.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_oauth::config::Settings;
use mcp_oauth::oauth::pkce::s256_challenge;
use mcp_oauth::registry::Registry;
use serde_json::{Value, json};

const PASSWORD: &str = "bench password";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const REDIRECT: &str = "http://127.0.0.1:4567/callback";

/// Concurrent sign-ins of the login storm, each as its own user.
const STORM_USERS: usize = 32;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    base: String,
    http: reqwest::Client,
    initial_access_token: String,
}

impl Bench {
    async fn register(&self, body: Value) -> Value {
        self.http
            .post(format!("{}/register", self.base))
            .bearer_auth(&self.initial_access_token)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Runs `op` from `concurrency` workers for `seconds`; returns (ops/s, latencies in µs sorted).
    async fn run<F, Fut>(&self, seconds: u64, concurrency: u64, op: F) -> (f64, Vec<u64>)
    where
        F: Fn(u64) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let op = Arc::new(op);
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for worker in 0..concurrency {
            let (op, stop, done) = (Arc::clone(&op), Arc::clone(&stop), Arc::clone(&done));
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    assert!(op(worker).await, "operation failed");
                    lat.push(t.elapsed().as_micros() as u64);
                    done.fetch_add(1, Ordering::Relaxed);
                }
                lat
            }));
        }
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_unstable();
        (done.load(Ordering::Relaxed) as f64 / elapsed, all)
    }
}

fn pct(lat: &[u64], p: f64) -> f64 {
    if lat.is_empty() {
        return 0.0;
    }
    lat[((lat.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

fn report(key: &str, name: &str, (rate, lat): &(f64, Vec<u64>)) {
    let (p50, p99) = (pct(lat, 0.5), pct(lat, 0.99));
    println!("{name:<44} {rate:>9.0} req/s   p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
    println!("#result {key} {rate:.1} {p50:.3} {p99:.3}");
}

/// Verifications per second of `hash` by `concurrency` threads for `seconds` (the raw argon2id
/// rate a login can at best reach with that many hashing slots).
async fn raw_argon2_rate(hash: &str, concurrency: u64, seconds: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (stop, done, hash) = (Arc::clone(&stop), Arc::clone(&done), hash.to_string());
            tokio::task::spawn_blocking(move || {
                while !stop.load(Ordering::Relaxed) {
                    assert!(mcp_oauth::users::password::verify_password(PASSWORD, &hash));
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds = env_num("BENCH_SECONDS", 5);
    let concurrency = env_num("BENCH_CONCURRENCY", 32);
    let storage = std::env::var("BENCH_STORAGE").unwrap_or_else(|_| "memory".into());
    let phases = std::env::var("BENCH_PHASES")
        .unwrap_or_else(|_| "cc,introspect,refresh,flows,storm".into());
    let phase = |name: &str| phases.split(',').any(|p| p.trim() == name);
    let hash_concurrency = env_num(
        "BENCH_HASH_CONCURRENCY",
        std::thread::available_parallelism()
            .map(|n| n.get() as u64)
            .unwrap_or(1)
            .saturating_sub(1)
            .max(1),
    );
    let dir = std::env::temp_dir().join(format!("mcp-oauth-bench-{}", std::process::id()));
    let hash = mcp_oauth::users::password::hash_password(PASSWORD).unwrap();
    let (base, initial_access_token) = match std::env::var("BENCH_URL") {
        Ok(url) => (
            url.trim_end_matches('/').to_string(),
            std::env::var("BENCH_INITIAL_ACCESS_TOKEN")
                .expect("BENCH_URL needs BENCH_INITIAL_ACCESS_TOKEN"),
        ),
        Err(_) => {
            std::fs::create_dir_all(&dir).unwrap();
            start_server(&dir, &storage, &hash).await
        }
    };
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let bench = Arc::new(Bench {
        base: base.clone(),
        http,
        initial_access_token,
    });
    let whose = if std::env::var("BENCH_URL").is_ok() {
        "server in its own process".to_string()
    } else {
        format!("storage={storage}, server in this process")
    };
    println!("mcp-oauth load: {whose}, concurrency={concurrency} seconds={seconds}");

    // A machine client for the client_credentials and introspection loads.
    let robot = bench
        .register(json!({"grant_types": ["client_credentials"], "scope": "mcp:tools"}))
        .await;
    let (id, secret) = (
        robot["client_id"].as_str().unwrap().to_string(),
        robot["client_secret"].as_str().unwrap().to_string(),
    );
    let cc_op = {
        let b = Arc::clone(&bench);
        let (id, secret) = (id.clone(), secret.clone());
        Arc::new(move |_: u64| {
            let (b, id, secret) = (Arc::clone(&b), id.clone(), secret.clone());
            async move {
                b.http
                    .post(format!("{}/token", b.base))
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools")])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .is_success()
            }
        })
    };

    if phase("cc") {
        let op = Arc::clone(&cc_op);
        let cc = bench.run(seconds, concurrency, move |w| op(w)).await;
        report(
            "client_credentials",
            "token: client_credentials (EdDSA JWT)",
            &cc,
        );
    }

    if phase("introspect") {
        // introspection of one active token.
        let token: Value = bench
            .http
            .post(format!("{base}/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = token["access_token"].as_str().unwrap().to_string();
        let b = Arc::clone(&bench);
        let (cid, csec) = (id.clone(), secret.clone());
        let intro = bench
            .run(seconds, concurrency, move |_| {
                let (b, id, secret, access) =
                    (Arc::clone(&b), cid.clone(), csec.clone(), access.clone());
                async move {
                    let r = b
                        .http
                        .post(format!("{}/introspect", b.base))
                        .basic_auth(id, Some(secret))
                        .form(&[("token", access.as_str())])
                        .send()
                        .await
                        .unwrap();
                    r.status().is_success()
                }
            })
            .await;
        report("introspect", "introspect: active access token", &intro);
    }

    let public = bench.register(json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]})).await;
    let public_id = public["client_id"].as_str().unwrap().to_string();

    if phase("refresh") {
        // Refresh rotation: each worker follows its own chain.
        let mut chains = Vec::new();
        for _ in 0..concurrency {
            chains.push(tokio::sync::Mutex::new(
                login_flow(&bench, &public_id, "alice").await,
            ));
        }
        let chains = Arc::new(chains);
        let b = Arc::clone(&bench);
        let pid = public_id.clone();
        let refresh = bench
            .run(seconds, concurrency, move |worker| {
                let (b, chains, pid) = (Arc::clone(&b), Arc::clone(&chains), pid.clone());
                async move {
                    let mut rt = chains[worker as usize].lock().await;
                    let r = b
                        .http
                        .post(format!("{}/token", b.base))
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", rt.as_str()),
                            ("client_id", pid.as_str()),
                        ])
                        .send()
                        .await
                        .unwrap();
                    let ok = r.status().is_success();
                    let v: Value = r.json().await.unwrap();
                    *rt = v["refresh_token"].as_str().unwrap_or_default().to_string();
                    ok
                }
            })
            .await;
        report("refresh", "token: refresh_token with rotation", &refresh);
    }

    if phase("flows") {
        // Whole authorization-code flows (authorize, sign-in, consent, code exchange), 32 users at
        // once, against the raw argon2id rate with the server's number of hashing slots.
        let raw = raw_argon2_rate(&hash, hash_concurrency, seconds).await;
        println!(
            "{:<44} {raw:>9.0} verifications/s ({hash_concurrency} threads)",
            "raw argon2id"
        );
        println!("#result argon2_raw {raw:.1} 0 0");
        let b = Arc::clone(&bench);
        let pid = public_id.clone();
        let flows = bench
            .run(seconds, STORM_USERS as u64, move |worker| {
                let (b, pid) = (Arc::clone(&b), pid.clone());
                async move {
                    !login_flow(&b, &pid, &format!("storm-{worker}"))
                        .await
                        .is_empty()
                }
            })
            .await;
        report("flows", "authorization-code flows (32 users)", &flows);
    }

    if phase("storm") {
        // Token latency alone, then during a login storm (argon2id on the bounded pool).
        let op = Arc::clone(&cc_op);
        let quiet = bench.run(seconds, 4, move |w| op(w)).await;
        report("token_quiet", "token (4 clients), no logins", &quiet);
        let storm_stop = Arc::new(AtomicBool::new(false));
        let logins = Arc::new(AtomicU64::new(0));
        let mut storm = Vec::new();
        for i in 0..STORM_USERS {
            let (b, stop, logins, pid) = (
                Arc::clone(&bench),
                Arc::clone(&storm_stop),
                Arc::clone(&logins),
                public_id.clone(),
            );
            storm.push(tokio::spawn(async move {
                let user = format!("storm-{i}");
                while !stop.load(Ordering::Relaxed) {
                    login_flow(&b, &pid, &user).await;
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let t0 = Instant::now();
        let op = Arc::clone(&cc_op);
        let stormy = bench.run(seconds, 4, move |w| op(w)).await;
        storm_stop.store(true, Ordering::Relaxed);
        let login_rate = logins.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
        for t in storm {
            let _ = t.await;
        }
        report(
            "token_storm",
            "token (4 clients), during 32-way login storm",
            &stormy,
        );
        println!(
            "{:<44} {login_rate:>9.0} logins/s (full flow incl. argon2id)",
            "login storm"
        );
        println!("#result storm_logins {login_rate:.1} 0 0");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a server in this process with `storage` in `dir`; returns its URL and initial access token.
async fn start_server(dir: &std::path::Path, storage: &str, hash: &str) -> (String, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    // Machine clients need the RFC 7591 initial access token (open registration refuses them).
    let initial_access_token = mcp_oauth::oauth::secrets::new_secret();
    let config = dir.join("bench.toml");
    // All load comes from 127.0.0.1: the per-address limits are off, as for any load test.
    // The login storm signs in as many users: the sign-in throttle runs one check per username at a
    // time, and all of the bench comes from one address (hence max_concurrent_per_address).
    let storm_accounts: String = (0..STORM_USERS)
        .map(|i| {
            format!("[[users.accounts]]\nusername = \"storm-{i}\"\npassword_hash = \"{hash}\"\n")
        })
        .collect();
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nissuer = \"{base}\"\n[storage]\nkind = \"{storage}\"\ndata_dir = \"{}\"\n\
             [users]\ncreate_admin = false\n[[users.accounts]]\nusername = \"alice\"\npassword_hash = \"{hash}\"\n\
             {storm_accounts}\
             [registration]\ninitial_access_token = \"{initial_access_token}\"\n\
             [limits]\nrate_limits = false\nmax_connections_per_address = 0\n\
             [login]\nmax_concurrent_per_address = 64\n",
            dir.display()
        ),
    )
    .unwrap();
    let settings = Settings::load_with_env(Some(&config), std::env::vars()).unwrap();
    let server = mcp_oauth::server::Server::build(&settings, &Registry::builtin())
        .await
        .unwrap();
    tokio::spawn(server.run(listener, std::future::pending()));
    (base, initial_access_token)
}

/// register-free authorization-code flow for `client_id`; returns a refresh token.
async fn login_flow(b: &Bench, client_id: &str, username: &str) -> String {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let challenge = s256_challenge(VERIFIER);
    let r = browser
        .get(format!("{}/authorize", b.base))
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_string();
    let page = browser
        .get(format!("{}{login}", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let field = |name: &str| {
        let marker = format!("name=\"{name}\" value=\"");
        let Some(at) = page.find(&marker) else {
            let snippet: String = page.chars().take(600).collect();
            panic!("the sign-in page for {username} has no {name} field:\n{snippet}");
        };
        let start = at + marker.len();
        page[start..start + page[start..].find('"').unwrap()].to_string()
    };
    let (tx, csrf) = (field("tx"), field("csrf_token"));
    browser
        .post(format!("{}/login", b.base))
        .form(&[
            ("tx", tx.as_str()),
            ("csrf_token", csrf.as_str()),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let r = browser
        .post(format!("{}/consent", b.base))
        .form(&[
            ("tx", tx.as_str()),
            ("csrf_token", csrf.as_str()),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    let loc = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let code = loc
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let v: Value = b
        .http
        .post(format!("{}/token", b.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    match v["refresh_token"].as_str() {
        Some(t) => t.to_string(),
        None => panic!("the code exchange for {username} gave no refresh token: {v}"),
    }
}
