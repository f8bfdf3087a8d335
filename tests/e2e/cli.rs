//! The command line against real processes: hash-password, config check, migrations, the embedded
//! default's one-time admin password, and the admin commands.

use crate::processes::*;

fn sqlite_env(dir: &TempDir) -> Vec<(&'static str, String)> {
    vec![(
        "MCP_OAUTH__STORAGE__DATA_DIR",
        dir.path().display().to_string(),
    )]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn hash_password_and_config_check() {
    let (ok, out, _) = run_cli(None, &["users", "hash-password"], &[], Some("s3cret\n")).await;
    assert!(ok);
    let phc = out.trim();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    assert!(
        mcp_oauth::users::password::verify_password("s3cret", phc),
        "the trailing newline is not part of the password"
    );
    let (ok, _, err) = run_cli(None, &["users", "hash-password"], &[], Some("")).await;
    assert!(!ok && err.contains("no password"), "{err}");

    let dir = TempDir::new("mcp-oauth-cli-config");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\nbind = \"127.0.0.1:9100\"\n").unwrap();
    let (ok, out, _) = run_cli(Some(&good), &["config", "check"], &[], None).await;
    assert!(
        ok && out.contains("configuration OK") && out.contains("storage:   sqlite"),
        "{out}"
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[tokens]\naccess_ttl = \"1m\"\n").unwrap();
    let (ok, _, err) = run_cli(Some(&bad), &["config", "check"], &[], None).await;
    assert!(
        !ok && err.contains("access_ttl"),
        "the unknown key is named: {err}"
    );
    let (ok, _, err) = run_cli(
        None,
        &["config", "check"],
        &[("MCP_OAUTH__SERVER__BINDD", "x")],
        None,
    )
    .await;
    assert!(!ok && err.contains("bindd"), "{err}");
}

#[tokio::test]
async fn embedded_default_prints_the_admin_password_once() {
    let dir = TempDir::new("mcp-oauth-embedded");
    let cfg = dir.path().join("port.toml");
    let port = free_port().await;
    std::fs::write(
        &cfg,
        format!("[server]\nbind = \"127.0.0.1:{port}\"\nissuer = \"http://127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let env = sqlite_env(&dir);
    let first = ServeProcess::start(&cfg, port, port, &as_refs(&env)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let out = first.stdout_text();
    let password = out
        .lines()
        .find_map(|l| l.split("initial password: ").nth(1))
        .expect("password printed")
        .to_string();
    assert!(first.terminate().await);
    let second = ServeProcess::start(&cfg, port, port, &as_refs(&env)).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !second.stdout_text().contains("initial password"),
        "created only on first start"
    );
    // The admin can sign in after the restart.
    let client_id = second.register_public().await;
    let b = crate::support::browser();
    let (tx, csrf, _) = second
        .start_login(&b, &second.auth_params(&client_id))
        .await;
    let page = second
        .post_login(&b, &tx, &csrf, "admin", &password)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Allow access?"),
        "admin signs in with the printed password"
    );
    assert!(
        dir.path().join("mcp-oauth.db").exists() && dir.path().join("key-encryption-key").exists()
    );
    second.terminate().await;
}

#[tokio::test]
async fn migrate_status_and_admin_commands_on_sqlite() {
    let dir = TempDir::new("mcp-oauth-admin");
    let env = sqlite_env(&dir);
    let env = as_refs(&env);
    let (ok, out, _) = run_cli(None, &["migrate", "status"], &env, None).await;
    assert!(ok && out.contains("pending  0001_initial"), "{out}");
    let (ok, out, _) = run_cli(None, &["migrate"], &env, None).await;
    assert!(ok && out.contains("applied 0001_initial"), "{out}");
    let (_, out, _) = run_cli(None, &["migrate", "status"], &env, None).await;
    assert!(
        out.contains("applied  0001_initial") && !out.contains("pending"),
        "{out}"
    );

    // users
    let (ok, out, _) = run_cli(
        None,
        &["users", "add", "bob", "--password-stdin"],
        &env,
        Some("pw-one-long-enough\n"),
    )
    .await;
    assert!(ok && out.contains("added user bob"), "{out}");
    let (ok, _, err) = run_cli(
        None,
        &["users", "add", "bob", "--password-stdin"],
        &env,
        Some("pw"),
    )
    .await;
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = run_cli(
        None,
        &["users", "add", "\u{ff22}OB", "--password-stdin"],
        &env,
        Some("pw-long-enough"),
    )
    .await;
    assert!(
        !ok && err.contains("same sign-in name"),
        "a look-alike of bob would share bob's sign-in limit: {err}"
    );
    let (ok, _, err) = run_cli(None, &["users", "add", "carol"], &env, Some("pw")).await;
    assert!(
        !ok && err.contains("--password-stdin"),
        "passwords never come from argv: {err}"
    );
    let (_, out, _) = run_cli(None, &["users", "list"], &env, None).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("bob  ") && l.contains("  bob  ")),
        "{out}"
    );
    let (ok, _, err) = run_cli(
        None,
        &["users", "passwd", "bob", "--password-stdin"],
        &env,
        Some("pw-two-long-enough"),
    )
    .await;
    assert!(ok, "{err}");
    let (ok, _, err) = run_cli(
        None,
        &["users", "passwd", "nobody", "--password-stdin"],
        &env,
        Some("pw-long-enough"),
    )
    .await;
    assert!(!ok && err.contains("no user named nobody"), "{err}");
    let (ok, _, _) = run_cli(None, &["users", "delete", "bob"], &env, None).await;
    assert!(ok);
    let (_, out, _) = run_cli(None, &["users", "list"], &env, None).await;
    assert!(!out.contains("bob"), "{out}");

    // clients
    let (ok, out, _) = run_cli(
        None,
        &["clients", "add", "--name", "Robot", "--scope", "mcp:tools"],
        &env,
        None,
    )
    .await;
    assert!(
        ok && out.contains("client_secret: "),
        "a confidential client's secret is printed once: {out}"
    );
    let client_id = out
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap()
        .to_string();
    let (ok, out, _) = run_cli(
        None,
        &[
            "clients",
            "add",
            "--name",
            "CLI",
            "--redirect-uri",
            "http://127.0.0.1/cb",
            "--public",
        ],
        &env,
        None,
    )
    .await;
    assert!(ok && !out.contains("client_secret"), "{out}");
    let (ok, _, err) = run_cli(
        None,
        &[
            "clients",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &env,
        None,
    )
    .await;
    assert!(!ok && err.contains("invalid_redirect_uri"), "{err}");
    let (_, out, _) = run_cli(None, &["clients", "list"], &env, None).await;
    assert!(
        out.starts_with("CLIENT_ID  ") && out.contains("GRANT_TYPES") && out.contains("CREATED_BY"),
        "a header: {out}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with(&client_id))
        .unwrap_or_default();
    assert!(
        row.contains("Robot")
            && row.contains("  administrator  ")
            && row.contains("client_credentials")
            && row.contains("  mcp:tools  ")
            && row.contains("  never  "),
        "no token was issued to it yet: {out}"
    );
    let (ok, _, _) = run_cli(None, &["clients", "delete", &client_id], &env, None).await;
    assert!(ok);
    let (ok, _, err) = run_cli(None, &["clients", "delete", &client_id], &env, None).await;
    assert!(!ok && err.contains("no client"), "{err}");

    // keys
    let (ok, out, _) = run_cli(None, &["keys", "rotate"], &env, None).await;
    assert!(ok && out.contains("new active signing key"), "{out}");
    assert!(
        out.contains("running servers") && out.contains("purge_interval (1m)"),
        "says when running servers sign with it: {out}"
    );
    let (ok, _, _) = run_cli(None, &["keys", "rotate"], &env, None).await;
    assert!(ok);
    let (_, out, _) = run_cli(None, &["keys", "list"], &env, None).await;
    assert_eq!(
        out.lines().filter(|l| l.contains("\tactive")).count(),
        1,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains("retiring at")).count(),
        1,
        "{out}"
    );
}

#[tokio::test]
async fn serve_refuses_a_postgres_schema_that_is_behind() {
    let Some(schema) = pg_schema().await else {
        return;
    };
    let url = pg_url();
    let dir = TempDir::new("mcp-oauth-pg-behind");
    let cfg = dir.path().join("pg.toml");
    std::fs::write(
        &cfg,
        format!("[storage]\nkind = \"postgres\"\nurl = \"{url}\"\nsearch_path = \"{schema}\"\n"),
    )
    .unwrap();
    let env = [(
        "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
        "REREREREREREREREREREREREREREREREREREREREREQ=",
    )];
    let (ok, _, err) = run_cli(Some(&cfg), &["serve"], &env, None).await;
    assert!(
        !ok && err.contains("mcp-oauth migrate") && err.contains("0001_initial"),
        "{err}"
    );
    let (ok, _, err) = run_cli(Some(&cfg), &["users", "list"], &env, None).await;
    assert!(
        !ok && err.contains("mcp-oauth migrate"),
        "admin commands refuse too: {err}"
    );
    let (ok, _, err) = run_cli(Some(&cfg), &["serve"], &[], None).await;
    assert!(
        !ok && err.contains("encryption_key"),
        "postgres needs a shared KEK: {err}"
    );
    let (ok, out, _) = run_cli(Some(&cfg), &["migrate"], &env, None).await;
    assert!(ok && out.contains("applied 0001_initial"), "{out}");
    let (ok, out, _) = run_cli(Some(&cfg), &["migrate"], &env, None).await;
    assert!(ok && out.contains("up to date"), "{out}");
    let (ok, out, _) = run_cli(Some(&cfg), &["users", "list"], &env, None).await;
    assert!(ok, "{out}");
}

/// A store-level view of the sqlite database in `dir` (to drive the sign-in throttle directly).
async fn sqlite_store(dir: &TempDir) -> mcp_oauth_provider_sql::SqliteStore {
    let url = format!("sqlite://{}", dir.path().join("mcp-oauth.db").display());
    mcp_oauth_provider_sql::SqliteStore::connect(&url, Default::default(), 1)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_port_in_use_fails_before_an_account_is_created() {
    let dir = TempDir::new("mcp-oauth-port-in-use");
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = sqlite_env(&dir);
    env.push(("MCP_OAUTH__SERVER__BIND", bind.clone()));
    let (ok, out, err) = run_cli(None, &["serve"], &as_refs(&env), None).await;
    assert!(!ok, "serve started on a port in use: {out}");
    assert!(
        err.contains("[server] bind") && err.contains(&bind),
        "the error names the key and the address: {err}"
    );
    assert!(
        !out.contains("initial password") && !dir.path().join("mcp-oauth.db").exists(),
        "nothing was created before the bind failed: {out}"
    );
    drop(taken);
}

#[tokio::test]
async fn the_issuer_follows_bind_and_the_start_says_where_everything_is() {
    let dir = TempDir::new("mcp-oauth-issuer-bind");
    let cfg = dir.path().join("empty.toml");
    std::fs::write(&cfg, "").unwrap();
    let port = free_port().await;
    let bind = format!("127.0.0.1:{port}");
    let mut env = sqlite_env(&dir);
    env.push(("MCP_OAUTH__SERVER__BIND", bind.clone()));
    let server = ServeProcess::start(&cfg, port, port, &as_refs(&env)).await;
    let meta: serde_json::Value = crate::support::http()
        .get(server.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["issuer"],
        format!("http://{bind}"),
        "only bind was set"
    );
    let prm: serde_json::Value = crate::support::http()
        .get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], format!("http://{bind}/mcp"));
    let out = server.stdout_text();
    let db = dir.path().join("mcp-oauth.db");
    for expected in [
        format!("issuer:    http://{bind}"),
        format!("listening: {bind}"),
        format!("storage:   sqlite database {}", db.display()),
        format!("data dir:  {}", dir.path().display()),
        "initial password: ".to_string(),
        "an initial password".to_string(),
        "mcp-oauth users passwd admin".to_string(),
    ] {
        assert!(out.contains(&expected), "{expected:?} not in:\n{out}");
    }
    assert!(server.terminate().await);

    // Bound elsewhere than loopback, the public URL cannot be guessed: refused, naming the key.
    let mut env = sqlite_env(&dir);
    env.push(("MCP_OAUTH__SERVER__BIND", format!("0.0.0.0:{port}")));
    let (ok, _, err) = run_cli(None, &["serve"], &as_refs(&env), None).await;
    assert!(!ok && err.contains("server.issuer"), "{err}");
}

#[tokio::test]
async fn config_check_reports_the_database_and_creates_nothing() {
    let dir = TempDir::new("mcp-oauth-check-sqlite");
    let env = sqlite_env(&dir);
    let env = as_refs(&env);
    let (ok, out, err) = run_cli(None, &["config", "check"], &env, None).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("pending migration(s)") && out.contains("`serve` applies them"),
        "{out}"
    );
    assert!(
        !dir.path().join("mcp-oauth.db").exists(),
        "config check created the database"
    );
    assert!(
        out.contains("data dir:") && out.contains("tokens:    access 15m"),
        "{out}"
    );
    let (ok, _, _) = run_cli(None, &["migrate"], &env, None).await;
    assert!(ok);
    let (ok, _, err) = run_cli(
        None,
        &["users", "add", "dana", "--password-stdin"],
        &env,
        Some("a long enough password"),
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, _) = run_cli(None, &["config", "check"], &env, None).await;
    assert!(
        ok && out.contains("schema up to date")
            && out.contains("users:     local: 1 stored account(s)")
            && out.ends_with("configuration OK\n"),
        "{out}"
    );
}

#[tokio::test]
async fn config_check_names_the_database_once_and_exits_non_zero() {
    let url = pg_url();
    let Some((base, _)) = url.rsplit_once('/') else {
        panic!("{url}")
    };
    let missing = format!("{base}/mcp_oauth_no_such_db");
    let env = [
        ("MCP_OAUTH__STORAGE__KIND", "postgres"),
        ("MCP_OAUTH__STORAGE__URL", missing.as_str()),
        (
            "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
            "REREREREREREREREREREREREREREREREREREREREREQ=",
        ),
    ];
    let (ok, out, err) = run_cli(None, &["config", "check"], &env, None).await;
    assert!(!ok, "{out}");
    let host_port = base
        .rsplit('@')
        .next()
        .unwrap()
        .trim_start_matches("postgres://");
    assert!(
        err.contains("mcp_oauth_no_such_db") && err.contains(host_port),
        "names the database, host and port: {err}"
    );
    assert_eq!(err.matches("does not exist").count(), 1, "said once: {err}");
    assert!(!err.contains("at line"), "{err}");
    assert!(
        !err.contains("postgres://"),
        "no URL (it may hold a password): {err}"
    );
    let (ok, out, err) = run_cli(None, &["config", "check", "--offline"], &env, None).await;
    assert!(ok && out.contains("not checked (--offline)"), "{out}{err}");
    // The same error stops `serve` and the admin commands, said once there too.
    let (ok, _, err) = run_cli(None, &["users", "list"], &env, None).await;
    assert!(!ok && err.matches("does not exist").count() == 1, "{err}");
    // A URL that does not parse is a settings error: offline, naming the key, said once.
    let bad = [
        ("MCP_OAUTH__STORAGE__KIND", "postgres"),
        ("MCP_OAUTH__STORAGE__URL", "not a url"),
        (
            "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
            "REREREREREREREREREREREREREREREREREREREREREQ=",
        ),
    ];
    let (ok, _, err) = run_cli(None, &["config", "check", "--offline"], &bad, None).await;
    assert!(
        !ok && err.contains("[storage.postgres]") && err.contains("url is not a Postgres URL"),
        "{err}"
    );
    let first_line = err.lines().next().unwrap_or_default();
    let cause = first_line.rsplit('(').next().unwrap_or_default();
    assert_eq!(err.matches(cause).count(), 1, "said once: {err}");
    // Without the key-encryption key, the secret is named before anything connects.
    let (ok, _, err) = run_cli(None, &["config", "check", "--offline"], &env[..2], None).await;
    assert!(!ok && err.contains("keys.encryption_key"), "{err}");
}

#[tokio::test]
async fn config_check_binds_to_the_directory_with_the_service_account() {
    let Some(url) = crate::ldap::directory_url() else {
        return;
    };
    let dir = TempDir::new("mcp-oauth-check-ldap");
    let password = crate::ldap::PasswordFile::new();
    let cfg = dir.path().join("ldap.toml");
    let write = |url: &str| {
        std::fs::write(
            &cfg,
            format!(
                "[storage]\nkind = \"memory\"\n{}",
                crate::ldap::ldap_users_toml(url, &password)
            ),
        )
        .unwrap()
    };
    write(&url);
    let (ok, out, err) = run_cli(Some(&cfg), &["config", "check"], &[], None).await;
    assert!(ok && out.contains("directory: reachable"), "{out}{err}");
    // Nobody listens there: a problem naming the directory, and a non-zero exit.
    let down = format!("ldap://127.0.0.1:{}", free_port().await);
    write(&down);
    let (ok, out, err) = run_cli(Some(&cfg), &["config", "check"], &[], None).await;
    assert!(
        !ok && err.contains("problem: directory:") && err.contains(&down),
        "{out}{err}"
    );
    assert!(!out.contains("configuration OK"), "{out}");
    let (ok, out, err) = run_cli(Some(&cfg), &["config", "check", "--offline"], &[], None).await;
    assert!(ok, "--offline does not connect: {out}{err}");
}

#[tokio::test]
async fn a_closed_stdout_ends_a_command_without_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let dir = TempDir::new("mcp-oauth-pipe");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcp-oauth"))
        .args(["config", "check", "--offline"])
        .env("MCP_OAUTH__STORAGE__DATA_DIR", dir.path())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        out.status.code(),
        Some(mcp_oauth::cli::output::BROKEN_PIPE_EXIT),
        "{err}"
    );
}

#[tokio::test]
async fn users_passwords_usernames_locks_and_unlock() {
    let dir = TempDir::new("mcp-oauth-users");
    let env = sqlite_env(&dir);
    let env = as_refs(&env);
    let env_ref = &env;
    let add = |name: &'static str, stdin: Option<&'static str>, flag: bool| {
        let mut args = vec!["users", "add", name];
        if flag {
            args.push("--password-stdin");
        }
        async move { run_cli(None, &args, env_ref, stdin).await }
    };
    // No terminal and no --password-stdin: nothing is read, the flag is named.
    let (ok, _, err) = add("erin", Some("a long enough password"), false).await;
    assert!(!ok && err.contains("--password-stdin"), "{err}");
    let (ok, _, err) = add("erin", Some("short"), true).await;
    assert!(
        !ok && err.contains("users.min_password_length") && err.contains("12"),
        "{err}"
    );
    for bad in ["er in", ".erin", "erin/x"] {
        let (ok, _, err) = run_cli(
            None,
            &["users", "add", bad, "--password-stdin"],
            &env,
            Some("a long enough password"),
        )
        .await;
        assert!(!ok && err.contains("username"), "{bad:?}: {err}");
    }
    let (ok, _, err) = add("erin", Some("a long enough password"), true).await;
    assert!(ok, "{err}");
    // passwd reads the same way, with the same rule.
    let (ok, _, err) = run_cli(None, &["users", "passwd", "erin"], &env, Some("x")).await;
    assert!(!ok && err.contains("--password-stdin"), "{err}");
    let (ok, _, err) = run_cli(
        None,
        &["users", "passwd", "erin", "--password-stdin"],
        &env,
        Some("tiny"),
    )
    .await;
    assert!(!ok && err.contains("users.min_password_length"), "{err}");
    let longer = [("MCP_OAUTH__USERS__MIN_PASSWORD_LENGTH", "30")];
    let env_longer: Vec<_> = env.iter().copied().chain(longer).collect();
    let (ok, _, err) = run_cli(
        None,
        &["users", "passwd", "erin", "--password-stdin"],
        &env_longer,
        Some("a long enough password"),
    )
    .await;
    assert!(
        !ok && err.contains("30"),
        "the minimum is configurable: {err}"
    );

    // Lock erin the way the server does (failures from one address), then unlock.
    let store = sqlite_store(&dir).await;
    let settings = mcp_oauth::config::Settings::load_with_env(None, Vec::new()).unwrap();
    let throttle = mcp_oauth::oauth::login_throttle::LoginThrottle::new(&settings.login);
    let policy = *throttle.policy();
    let attempt = mcp_oauth_provider::SignInAttempt {
        username_key: mcp_oauth::oauth::login_throttle::username_key("erin"),
        address_key: "192.0.2.7".into(),
        now: mcp_oauth_provider::unix_now(),
    };
    use mcp_oauth_provider::SignInThrottleStore;
    for _ in 0..policy.max_failures_per_address {
        store.begin_attempt(&attempt, &policy).await.unwrap();
        store.end_attempt(&attempt, false, &policy).await.unwrap();
    }
    assert!(matches!(
        store.begin_attempt(&attempt, &policy).await.unwrap(),
        mcp_oauth_provider::ThrottleDecision::Refused { .. }
    ));
    let (ok, out, _) = run_cli(None, &["users", "list"], &env, None).await;
    assert!(ok && out.starts_with("USERNAME"), "a header: {out}");
    let row = out
        .lines()
        .find(|l| l.starts_with("erin "))
        .unwrap_or_default();
    assert!(
        row.contains("locked until") && row.contains("users unlock erin"),
        "{out}"
    );
    let (ok, out, _) = run_cli(None, &["users", "unlock", "erin"], &env, None).await;
    assert!(ok && out.contains("unlocked erin"), "{out}");
    assert_eq!(
        store.begin_attempt(&attempt, &policy).await.unwrap(),
        mcp_oauth_provider::ThrottleDecision::Admitted,
        "the sign-in throttle admits erin again"
    );
    store.end_attempt(&attempt, true, &policy).await.unwrap();
    let (_, out, _) = run_cli(None, &["users", "list"], &env, None).await;
    let row = out
        .lines()
        .find(|l| l.starts_with("erin "))
        .unwrap_or_default();
    assert!(row.ends_with("  ok"), "{out}");
    let (ok, out, _) = run_cli(None, &["users", "unlock", "erin"], &env, None).await;
    assert!(ok && out.contains("was not locked"), "{out}");
}

#[tokio::test]
async fn demo_mcp_help_does_not_offer_a_configuration_file() {
    let (ok, out, _) = run_cli(None, &["demo-mcp", "--help"], &[], None).await;
    assert!(ok && out.contains("ignores --config"), "{out}");
    assert!(!out.contains("Reads no configuration\n"), "{out}");
}

#[tokio::test]
async fn an_unreachable_directory_at_start_is_a_warning_not_ready() {
    let dir = TempDir::new("mcp-oauth-ldap-down");
    let password = crate::ldap::PasswordFile::new();
    let down = format!("ldap://127.0.0.1:{}", free_port().await);
    let port = free_port().await;
    let cfg = dir.path().join("ldap.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\n[storage]\nkind = \"memory\"\n{}",
            crate::ldap::ldap_users_toml(&down, &password)
        ),
    )
    .unwrap();
    let server = ServeProcess::start(&cfg, port, port, &[]).await;
    let mut log = String::new();
    for _ in 0..50 {
        log = server.stderr.lock().unwrap().clone();
        if log.contains("unreachable") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let line = log
        .lines()
        .find(|l| l.contains("user directory unreachable at start"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(line.contains("WARN") && line.contains(&down), "{line}");
    assert!(!log.contains("ready"), "{log}");
    assert!(server.terminate().await);
}

/// Runs `args` on a pseudo-terminal (util-linux `script`), typing `lines` one after another.
async fn on_a_terminal(args: &str, env: &[(&str, &str)], lines: &[&str]) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!("{} {args}", env!("CARGO_BIN_EXE_mcp-oauth")))
        .arg("/dev/null")
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` (a pseudo-terminal for the prompt test)");
    let mut input = child.stdin.take().unwrap();
    for line in lines {
        // Typed once the prompt has turned the echo off, as a person would.
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        input
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    drop(input);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn on_a_terminal_the_password_is_asked_twice_without_echo() {
    let dir = TempDir::new("mcp-oauth-prompt");
    let env = sqlite_env(&dir);
    let env = as_refs(&env);
    let secret = "typed on a terminal";
    let (ok, out) = on_a_terminal("users add frank", &env, &[secret, secret]).await;
    assert!(ok && out.contains("added user frank"), "{out}");
    assert!(out.contains("New password for frank:"), "{out}");
    assert!(!out.contains(secret), "the password was echoed: {out}");
    let (ok, out) = on_a_terminal(
        "users passwd frank",
        &env,
        &["another long password", "a different one!!"],
    )
    .await;
    assert!(!ok && out.contains("differ"), "{out}");
    let (ok, out) = on_a_terminal("users passwd frank", &env, &["short"]).await;
    assert!(
        !ok && out.contains("users.min_password_length"),
        "checked before asking again: {out}"
    );
    let (ok, out) = on_a_terminal(
        "users passwd frank",
        &env,
        &["another long password", "another long password"],
    )
    .await;
    assert!(ok && out.contains("password of frank changed"), "{out}");
}
