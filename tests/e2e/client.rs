//! The MCP client commands (issue 9) against our own server, as real `mcp-oauth` processes:
//! headless login, tools, call, refresh after expiry, logout with revocation, the stdio proxy,
//! step-up, and eight processes refreshing one stored login at once.
//!
//! Every test has its own server, token-store directory and store key; the client registers as a
//! native public client (authorization_code + refresh_token), which every registration policy of
//! the server admits. Introspection goes through the resource-server client every test server has.

use std::process::Stdio;
use std::time::Duration;

use mcp_oauth_client::store::{FileStore, RecordKey, StoreKey, TokenStore};
use mcp_oauth_provider::RefreshTokenState;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::processes::{TempDir, run_cli};
use crate::support::{Options, PASSWORD, TestServer, USER, http, start, start_with};

/// A private token store for one test: its directory and key, passed to every process.
struct ClientEnv {
    dir: std::path::PathBuf,
    key: StoreKey,
    _owned: Option<TempDir>,
}

impl ClientEnv {
    fn new() -> Self {
        let owned = TempDir::new("mcp-oauth-client-store");
        ClientEnv {
            dir: owned.path().to_path_buf(),
            key: StoreKey::random().unwrap(),
            _owned: Some(owned),
        }
    }

    /// The same store directory opened with another key.
    fn with_other_key(&self) -> Self {
        ClientEnv {
            dir: self.dir.clone(),
            key: StoreKey::random().unwrap(),
            _owned: None,
        }
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MCP_OAUTH_CLIENT_STORE", self.dir.display().to_string()),
            ("MCP_OAUTH_STORE_KEY", self.key.to_base64()),
            ("MCP_OAUTH_STORE_KEYRING", "0".into()),
            // No browser may ever open from a test.
            ("DISPLAY", String::new()),
        ]
    }

    fn store(&self) -> FileStore {
        FileStore::with_key(&self.dir, self.key.clone()).unwrap()
    }

    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let env = self.env();
        let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_cli(None, args, &refs, stdin).await
    }

    async fn login(&self, server: &TestServer) {
        let (ok, out, err) = self
            .run(
                &[
                    "login",
                    &server.resource,
                    "--username",
                    USER,
                    "--password-stdin",
                ],
                Some(&format!("{PASSWORD}\n")),
            )
            .await;
        assert!(ok, "login failed: {err}");
        assert!(out.contains("Logged in to"), "{out}");
    }

    fn record(&self, server: &TestServer) -> mcp_oauth_client::Record {
        let key = RecordKey {
            server: server.resource.clone(),
            issuer: server.base.clone(),
        };
        self.store().load(&key).unwrap().expect("a stored record")
    }
}

/// The server's own view of a refresh token (RFC 7662 lets only its own client introspect it, and
/// ours is public): `None` when unknown.
async fn refresh_state(server: &TestServer, token: &str) -> Option<RefreshTokenState> {
    server
        .state
        .provider
        .tokens()
        .get_refresh_token(&mcp_oauth::oauth::secrets::hash_secret(token))
        .await
        .unwrap()
        .map(|r| r.state)
}

fn ttl(secs: u64) -> Options {
    Options {
        env: vec![("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", format!("{secs}s"))],
        ..Options::default()
    }
}

#[tokio::test]
async fn headless_login_then_tools_and_call_whoami() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;

    let (ok, out, err) = c.run(&["tools", &server.resource], None).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("whoami") && out.contains("admin_stats"),
        "{out}"
    );
    assert!(
        out.contains("Who is calling"),
        "descriptions are listed: {out}"
    );

    let (ok, out, err) = c.run(&["call", &server.resource, "whoami"], None).await;
    assert!(ok, "{err}");
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["subject"], USER);
    assert_eq!(who["issuer"], server.base);

    let (ok, out, _) = c
        .run(
            &[
                "call",
                &server.resource,
                "echo",
                "--args",
                r#"{"message": "hi <there>"}"#,
            ],
            None,
        )
        .await;
    assert!(ok && out.trim() == "hi <there>", "{out}");
    let (ok, _, err) = c
        .run(&["call", &server.resource, "echo", "--args", "[1]"], None)
        .await;
    assert!(!ok && err.contains("JSON object"), "{err}");

    // status shows the login but never a token.
    let record = c.record(&server);
    let tokens = record.tokens.clone().unwrap();
    let (ok, out, _) = c.run(&["status"], None).await;
    assert!(
        ok && out.contains(&server.resource) && out.contains("mcp:tools"),
        "{out}"
    );
    assert!(!out.contains(tokens.access_token.expose()));
    assert!(!out.contains(tokens.refresh_token.as_ref().unwrap().expose()));

    // `token` prints exactly the stored (still fresh) access token.
    let (ok, out, _) = c.run(&["token", &server.resource], None).await;
    assert!(ok);
    assert_eq!(out.trim(), tokens.access_token.expose());
}

#[tokio::test]
async fn a_later_call_refreshes_a_five_second_token_by_itself() {
    let server = start_with(ttl(5)).await;
    let c = ClientEnv::new();
    c.login(&server).await;
    let before = c.record(&server).tokens.unwrap();
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    // No login flags: only a refresh can make this work.
    let (ok, out, err) = c.run(&["call", &server.resource, "whoami"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains(USER), "{out}");
    let after = c.record(&server).tokens.unwrap();
    assert_ne!(
        after.access_token, before.access_token,
        "a new access token"
    );
    assert_ne!(
        after.refresh_token, before.refresh_token,
        "the refresh token rotated"
    );
    assert!(after.expires_at.unwrap() > before.expires_at.unwrap());
}

#[tokio::test]
async fn logout_revokes_and_deletes_the_record() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;
    let tokens = c.record(&server).tokens.unwrap();
    let refresh = tokens.refresh_token.clone().unwrap();
    assert_eq!(
        server.introspect(tokens.access_token.expose()).await["active"],
        true
    );
    assert_eq!(
        refresh_state(&server, refresh.expose()).await,
        Some(RefreshTokenState::Active)
    );

    let (ok, out, err) = c.run(&["logout", &server.resource], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("revoked 2 token(s)"), "{out}");
    assert_eq!(
        server.introspect(tokens.access_token.expose()).await["active"],
        false
    );
    assert!(
        !matches!(
            refresh_state(&server, refresh.expose()).await,
            Some(RefreshTokenState::Active)
        ),
        "the refresh token is revoked"
    );
    assert!(
        c.store().find(&server.resource).unwrap().is_empty(),
        "record deleted"
    );

    let (ok, _, err) = c.run(&["token", &server.resource], None).await;
    assert!(!ok && err.contains("mcp-oauth login"), "{err}");
}

#[tokio::test]
async fn proxy_relays_initialize_tools_list_and_tools_call() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(["proxy", &server.resource])
        .envs(c.env())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = async || -> Value {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the proxy answers in time")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line).unwrap()
    };
    let send = |v: Value| format!("{v}\n");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "stdio-harness", "version": "1"}}});
    stdin.write_all(send(init).as_bytes()).await.unwrap();
    let r = next().await;
    assert_eq!(r["id"], 1);
    assert_eq!(r["result"]["serverInfo"]["name"], "mcp-oauth-demo", "{r}");
    for m in [
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": "two", "method": "tools/list"}),
    ] {
        stdin.write_all(send(m).as_bytes()).await.unwrap();
    }
    let r = next().await;
    assert_eq!(r["id"], "two", "the id comes back unchanged: {r}");
    let names: Vec<&str> = r["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"whoami"), "{names:?}");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}}});
    stdin.write_all(send(call).as_bytes()).await.unwrap();
    let r = next().await;
    assert_eq!(r["id"], 3);
    assert_eq!(r["result"]["structuredContent"]["subject"], USER, "{r}");
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the proxy exits cleanly when stdin closes"
    );
}

#[tokio::test]
async fn call_admin_stats_steps_up_to_mcp_admin() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;
    assert_eq!(c.record(&server).tokens.unwrap().scopes, ["mcp:tools"]);
    let (ok, out, err) = c
        .run(
            &[
                "call",
                &server.resource,
                "admin_stats",
                "--username",
                USER,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert!(ok, "{err}");
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["requested_by"], USER);
    let scopes = c.record(&server).tokens.unwrap().scopes;
    assert!(
        scopes.contains(&"mcp:admin".to_string()) && scopes.contains(&"mcp:tools".to_string()),
        "held ∪ required: {scopes:?}"
    );
}

#[tokio::test]
async fn eight_processes_refresh_an_expired_token_once() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;
    // Expire the stored access token.
    let store = c.store();
    let mut record = c.record(&server);
    let old = record.tokens.clone().unwrap();
    let tokens = record.tokens.as_mut().unwrap();
    tokens.issued_at -= 3600;
    tokens.expires_at = Some(mcp_oauth_client::secret::unix_now() - 10);
    store.save(&record).unwrap();

    let mut runs = Vec::new();
    for _ in 0..8 {
        let env = c.env();
        let url = server.resource.clone();
        runs.push(tokio::spawn(async move {
            let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            run_cli(None, &["token", &url], &refs, None).await
        }));
    }
    let mut printed = Vec::new();
    for r in runs {
        let (ok, out, err) = r.await.unwrap();
        assert!(ok, "every process succeeds: {err}");
        printed.push(out.trim().to_string());
    }
    printed.sort();
    printed.dedup();
    assert_eq!(printed.len(), 1, "all eight print the one refreshed token");
    let new = c.record(&server).tokens.unwrap();
    assert_eq!(printed[0], new.access_token.expose());
    assert_ne!(new.access_token, old.access_token);
    // Exactly one rotation: the old refresh token is spent, the new one lives (a reuse would
    // have revoked the family, the new one included).
    let old_refresh = old.refresh_token.unwrap();
    let new_refresh = new.refresh_token.unwrap();
    assert_ne!(old_refresh, new_refresh);
    assert!(
        matches!(
            refresh_state(&server, old_refresh.expose()).await,
            Some(RefreshTokenState::Rotated { .. })
        ),
        "the old refresh token was rotated once"
    );
    assert_eq!(
        refresh_state(&server, new_refresh.expose()).await,
        Some(RefreshTokenState::Active),
        "no reuse: the family was not revoked"
    );
    // The server answers a replay inside its grace window with the same successor (so the tokens
    // alone cannot show a race) but logs it: none may be logged for this client.
    let client_id = c.record(&server).registration.unwrap().client_id;
    let replays: Vec<String> = crate::support::captured_log()
        .lines()
        .filter(|l| l.contains(&client_id) && (l.contains("replayed") || l.contains("reused")))
        .map(str::to_string)
        .collect();
    assert!(
        replays.is_empty(),
        "the refresh token was presented more than once: {replays:?}"
    );
    assert_eq!(
        server.introspect(new.access_token.expose()).await["active"],
        true
    );
}

#[tokio::test]
async fn the_token_file_holds_no_secret_in_plain_text() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;
    let record = c.record(&server);
    let tokens = record.tokens.unwrap();
    let mut secrets = vec![
        tokens.access_token.expose().to_string(),
        tokens.refresh_token.unwrap().expose().to_string(),
    ];
    if let Some(s) = record.registration.unwrap().client_secret {
        secrets.push(s.expose().to_string());
    }
    for entry in std::fs::read_dir(&c.dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "a secret is in plain text in the store"
            );
        }
        assert!(!String::from_utf8_lossy(&bytes).contains(USER));
    }
}

#[tokio::test]
async fn browser_login_prints_the_url_and_takes_the_callback() {
    let server = start().await;
    let c = ClientEnv::new();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(["login", &server.resource, "--no-browser"])
        .envs(c.env())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line.trim().starts_with("http://") {
                return line.trim().to_string();
            }
        }
        panic!("no URL printed");
    })
    .await
    .unwrap();
    let parsed = url::Url::parse(&url).unwrap();
    assert_eq!(parsed.path(), "/authorize");
    let params: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    // The user signs in and approves in "the browser"; the browser follows the redirect.
    let redirect = server.obtain_redirect(&params).await;
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    let page = http().get(&redirect).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Login complete"));
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Logged in to"));
    assert!(c.record(&server).tokens.is_some());
}

#[tokio::test]
async fn a_wrong_key_or_a_truncated_file_is_a_clear_error_and_changes_nothing() {
    let server = start().await;
    let c = ClientEnv::new();
    c.login(&server).await;
    let key = RecordKey {
        server: server.resource.clone(),
        issuer: server.base.clone(),
    };
    let path = c.store().record_path(&key);
    let before = std::fs::read(&path).unwrap();

    let wrong = c.with_other_key();
    for args in [
        vec!["token", server.resource.as_str()],
        vec!["call", server.resource.as_str(), "whoami"],
    ] {
        let (ok, _, err) = wrong.run(&args, None).await;
        assert!(!ok, "{args:?}");
        assert!(
            err.contains(&path.display().to_string()),
            "names the file: {err}"
        );
        assert!(
            err.contains("key") && err.contains("logout"),
            "says what to do: {err}"
        );
    }
    let (ok, _, err) = wrong
        .run(
            &[
                "login",
                &server.resource,
                "--username",
                USER,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        )
        .await;
    assert!(
        !ok && err.contains("cannot be read"),
        "login does not overwrite: {err}"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "byte-for-byte unchanged"
    );

    std::fs::write(&path, &before[..before.len() / 3]).unwrap();
    let (ok, _, err) = c.run(&["token", &server.resource], None).await;
    assert!(!ok && err.contains("truncated"), "{err}");
    let (ok, out, _) = c.run(&["status"], None).await;
    assert!(ok && out.contains("cannot be read"), "{out}");
    assert_eq!(std::fs::read(&path).unwrap(), &before[..before.len() / 3]);
}

#[tokio::test]
async fn without_a_key_in_the_environment_a_private_key_file_is_used() {
    let server = start().await;
    let dir = TempDir::new("mcp-oauth-client-keyfile");
    let store = dir.path().display().to_string();
    let env = [
        ("MCP_OAUTH_CLIENT_STORE", store.as_str()),
        ("MCP_OAUTH_STORE_KEYRING", "0"),
    ];
    let (ok, _, err) = run_cli(
        None,
        &[
            "login",
            &server.resource,
            "--username",
            USER,
            "--password-stdin",
        ],
        &env,
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(ok, "{err}");
    let key_file = dir.path().join("store.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o077, 0, "the store directory is private");
    }
    let (ok, out, _) = run_cli(None, &["status"], &env, None).await;
    assert!(
        ok && out.contains("key file") && out.contains(&server.resource),
        "{out}"
    );
    let (ok, out, _) = run_cli(None, &["token", &server.resource], &env, None).await;
    assert!(ok && out.trim().len() > 20);
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error() {
    let server = start().await;
    let c = ClientEnv::new();
    let (ok, _, err) = c
        .run(
            &[
                "login",
                &server.resource,
                "--username",
                USER,
                "--password-stdin",
            ],
            Some("not the password\n"),
        )
        .await;
    assert!(!ok);
    assert!(err.contains("password is wrong"), "{err}");
    assert!(
        !err.contains("not the password"),
        "the password is never printed: {err}"
    );
    let (ok, _, err) = c
        .run(
            &[
                "login",
                &server.resource,
                "--username",
                USER,
                "--password-stdin",
            ],
            Some(""),
        )
        .await;
    assert!(!ok && err.contains("no password on stdin"), "{err}");
}

// Linux: the opener is `xdg-open` and the keyring is reached through `secret-tool` there.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_os_keyring_holds_the_key_when_one_is_reachable() {
    // A stand-in for libsecret's `secret-tool` (this machine has no Secret Service): it keeps the
    // secret in a file and answers `lookup` and `store` as the real one does.
    let server = start().await;
    let dir = TempDir::new("mcp-oauth-client-keyring");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("secret-tool");
    std::fs::write(
        &tool,
        "#!/bin/sh\ncase \"$1\" in\n  lookup) [ -f \"$FAKE_KEYRING\" ] && cat \"$FAKE_KEYRING\" || exit 1 ;;\n  store) cat > \"$FAKE_KEYRING\" ;;\n  *) exit 2 ;;\nesac\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let store = dir.path().join("store").display().to_string();
    let keyring = dir.path().join("keyring").display().to_string();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("MCP_OAUTH_CLIENT_STORE", store.as_str()),
        ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent"),
        ("FAKE_KEYRING", keyring.as_str()),
        ("PATH", path.as_str()),
    ];
    let (ok, _, err) = run_cli(
        None,
        &[
            "login",
            &server.resource,
            "--username",
            USER,
            "--password-stdin",
        ],
        &env,
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert!(ok, "{err}");
    let key = StoreKey::parse(&std::fs::read_to_string(&keyring).unwrap()).unwrap();
    assert!(
        !dir.path().join("store/store.key").exists(),
        "no key file when the keyring has the key"
    );
    let (ok, out, _) = run_cli(None, &["status"], &env, None).await;
    assert!(ok && out.contains("OS keyring"), "{out}");
    let (ok, _, err) = run_cli(None, &["token", &server.resource], &env, None).await;
    assert!(ok, "the key comes back from the keyring: {err}");
    // The records are sealed under the keyring's key.
    let records = FileStore::with_key(&dir.path().join("store"), key)
        .unwrap()
        .find(&server.resource)
        .unwrap();
    assert_eq!(records.len(), 1);
}

#[tokio::test]
async fn a_pre_registered_confidential_client_logs_in_with_its_secret_from_stdin() {
    let server = start().await;
    let (id, secret) = crate::support::admin_client(
        &server,
        json!({
            "redirect_uris": ["http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic",
        }),
    )
    .await;
    let c = ClientEnv::new();
    let args = [
        "login",
        &server.resource,
        "--username",
        USER,
        "--password-stdin",
        "--client-id",
        &id,
        "--client-secret-stdin",
    ];
    // The password is the first line, the client secret the second.
    let (ok, _, err) = c.run(&args, Some(&format!("{PASSWORD}\n{secret}\n"))).await;
    assert!(ok, "{err}");
    let record = c.record(&server);
    let reg = record.registration.unwrap();
    assert_eq!(reg.client_id, id);
    assert_eq!(reg.client_secret.unwrap().expose(), secret);
    let (ok, out, err) = c.run(&["call", &server.resource, "whoami"], None).await;
    assert!(ok, "{err}");
    let who: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(who["client_id"], id);
    // A wrong secret is refused by the token endpoint, with its error named.
    let other = ClientEnv::new();
    let (ok, _, err) = other
        .run(&args, Some(&format!("{PASSWORD}\nnot-the-secret\n")))
        .await;
    assert!(!ok && err.contains("invalid_client"), "{err}");
    assert!(!err.contains("not-the-secret"), "{err}");
}

// Linux: the opener is `xdg-open` and the keyring is reached through `secret-tool` there.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn browser_login_starts_the_system_opener_without_a_shell() {
    // A stand-in `xdg-open` that records its arguments, one per line.
    let server = start().await;
    let c = ClientEnv::new();
    let dir = TempDir::new("mcp-oauth-client-opener");
    let opener = dir.path().join("xdg-open");
    let args_file = dir.path().join("args");
    std::fs::write(
        &opener,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> '{}'; done\n",
            args_file.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    cmd.args(["login", &server.resource])
        .envs(c.env())
        .env("DISPLAY", ":99")
        .env("PATH", path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().unwrap();
    let recorded = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&args_file)
                && text.ends_with('\n')
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the opener was started");
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one argument, the URL: {lines:?}");
    let parsed = url::Url::parse(lines[0]).unwrap();
    assert_eq!(parsed.path(), "/authorize");
    let params: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let redirect = server.obtain_redirect(&params).await;
    assert_eq!(http().get(&redirect).send().await.unwrap().status(), 200);
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("A browser window was opened"));
}
