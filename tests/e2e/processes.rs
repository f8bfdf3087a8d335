//! Real `mcp-oauth` processes (crash and multi-server tests), Postgres schemas for tests, and a TCP
//! proxy that can cut the database connection (outage tests).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth_provider_sql::PostgresStore;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::support::{Endpoint, USER, password_hash};

/// A free loopback port (bound and released; the caller binds it right after).
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// A temp directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);
impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}",
            mcp_oauth::oauth::secrets::new_secret()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A config for a process: issuer at `issuer_port`, bound at `bind_port`, the standard test user and
/// resource, and the given `[storage]` body.
pub fn process_config(issuer_port: u16, bind_port: u16, storage: &str) -> String {
    format!(
        r#"
[server]
bind = "127.0.0.1:{bind_port}"
issuer = "http://127.0.0.1:{issuer_port}"

[storage]
{storage}

[[users.accounts]]
username = "{USER}"
password_hash = "{hash}"

[[resources]]
uri = "http://127.0.0.1:{issuer_port}/mcp"
name = "Test MCP server"
scopes = ["mcp:tools", "mcp:admin"]
"#,
        hash = password_hash()
    )
}

/// A running `mcp-oauth serve`.
pub struct ServeProcess {
    child: Child,
    pub ep: Endpoint,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

impl std::ops::Deref for ServeProcess {
    type Target = Endpoint;
    fn deref(&self) -> &Endpoint {
        &self.ep
    }
}

fn collect(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let out = Arc::clone(&buf);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut b = out.lock().unwrap();
            b.push_str(&line);
            b.push('\n');
        }
    });
    buf
}

/// Runs the binary with `args`, a config file and extra env; returns (status ok, stdout, stderr).
pub async fn run_cli(
    config: Option<&std::path::Path>,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl ServeProcess {
    /// Starts `serve` with `config` (a file path) and `env`, listening on `port`; waits until the
    /// metadata endpoint answers.
    pub async fn start(
        config: &std::path::Path,
        port: u16,
        issuer_port: u16,
        env: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-oauth"));
        cmd.arg("--config").arg(config).arg("serve");
        cmd.envs(env.iter().copied()).env("RUST_LOG", "info");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let base = format!("http://127.0.0.1:{port}");
        let mut ep = Endpoint {
            base: base.clone(),
            resource: format!("http://127.0.0.1:{issuer_port}/mcp"),
            introspector: None,
        };
        let client = crate::support::http();
        for _ in 0..200 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("serve exited with {status}: {}", stderr.lock().unwrap());
            }
            if let Ok(r) = client
                .get(format!("{base}/.well-known/oauth-authorization-server"))
                .send()
                .await
                && r.status().is_success()
            {
                ep.introspector = add_introspector(config, env).await;
                return Self {
                    child,
                    ep,
                    stdout,
                    stderr,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not come up: {}", stderr.lock().unwrap());
    }

    /// SIGKILL: no shutdown code runs.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        let _ = self.child.wait().await;
    }

    /// SIGTERM and wait for a graceful exit; returns whether it exited successfully.
    pub async fn terminate(mut self) -> bool {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(Ok(status)) => status.success(),
            _ => false,
        }
    }

    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }
}

/// The Postgres URL of the test database.
pub fn pg_url() -> String {
    std::env::var("MCP_OAUTH_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, empty schema; `None` (skip, with a note) when Postgres is unreachable and not required —
/// when `MCP_OAUTH_REQUIRE_SERVICES=1` an unreachable Postgres fails the test.
pub async fn pg_schema() -> Option<String> {
    let required = std::env::var("MCP_OAUTH_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let url = pg_url();
    let admin = PostgresStore::connect_lazy(&url, 1, None).unwrap();
    let schema = format!(
        "e2e_{}",
        mcp_oauth_provider::testkit::unique("s").replace('-', "_")
    );
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await;
    admin.pool().close().await;
    match result {
        Ok(_) => Some(schema),
        Err(e) if required => panic!(
            "Postgres is required (MCP_OAUTH_REQUIRE_SERVICES=1) but unreachable at {url}: {e}"
        ),
        Err(e) => {
            eprintln!(
                "Postgres unreachable at {url} ({e}); skipping (MCP_OAUTH_REQUIRE_SERVICES=1 makes this fail)"
            );
            None
        }
    }
}

/// Migrates a schema the way `mcp-oauth migrate` would.
pub async fn pg_migrate(url: &str, schema: &str) {
    let store = PostgresStore::connect_lazy(url, 1, Some(schema)).unwrap();
    store.migrate().await.unwrap();
    store.pool().close().await;
}

/// A TCP proxy to `target` whose traffic can be cut and restored (a database outage).
pub struct FlakyProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FlakyProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::new(Mutex::new(Vec::new()));
        let (up2, conns2) = (Arc::clone(&up), Arc::clone(&conns));
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            addr,
            up,
            conns,
            accept,
        }
    }

    /// Refuses new connections and severs open ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Creates a resource-server client with `clients add` on the server's own storage (None when the
/// storage is not shared with the CLI, e.g. memory).
async fn add_introspector(
    config: &std::path::Path,
    env: &[(&str, &str)],
) -> Option<(String, String)> {
    let (ok, out, _) = run_cli(
        Some(config),
        &[
            "clients",
            "add",
            "--name",
            "test introspector",
            "--grant",
            "client_credentials",
            "--resource-server",
        ],
        env,
        None,
    )
    .await;
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    if !ok {
        return None;
    }
    Some((field("client_id:")?, field("client_secret:")?))
}
