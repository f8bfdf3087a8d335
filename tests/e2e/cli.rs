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
        Some("pw-one\n"),
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
        Some("pw"),
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
    assert!(out.contains("bob\tsub=bob"), "{out}");
    let (ok, _, _) = run_cli(None, &["users", "passwd", "bob"], &env, Some("pw-two")).await;
    assert!(ok);
    let (ok, _, err) = run_cli(None, &["users", "passwd", "nobody"], &env, Some("pw")).await;
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
        out.contains(&client_id) && out.contains("Robot") && out.contains("client_credentials"),
        "{out}"
    );
    let (ok, _, _) = run_cli(None, &["clients", "delete", &client_id], &env, None).await;
    assert!(ok);
    let (ok, _, err) = run_cli(None, &["clients", "delete", &client_id], &env, None).await;
    assert!(!ok && err.contains("no client"), "{err}");

    // keys
    let (ok, out, _) = run_cli(None, &["keys", "rotate"], &env, None).await;
    assert!(ok && out.contains("new active signing key"), "{out}");
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
