//! Temp directories, the htpasswd fixture, and the example binary as a child process.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_mcp-oauth-example");

/// An admin (bcrypt entry, group `admins`) and a user in no listed group (argon2id entry).
pub const ALICE: (&str, &str) = ("alice", "Alice-example-pw");
pub const BOB: (&str, &str) = ("bob", "Bob-example-pw");

/// The shipped example configuration.
pub fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml")
}

/// A temp directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "{prefix}-{}",
            mcp_oauth_client::secret::random_urlsafe().unwrap()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback port (bound and released; the server binds it right after).
pub async fn free_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// The files one server reads: `users.htpasswd`, `users.groups`, and its data directory.
pub struct Site {
    pub dir: TempDir,
    pub port: u16,
}

impl Site {
    pub async fn new() -> Self {
        // reqwest without a TLS provider of its own (the workspace uses ring everywhere).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = TempDir::new("mcp-oauth-example-it");
        let alice = bcrypt::hash(ALICE.1, 4).unwrap();
        let bob = {
            use argon2::password_hash::PasswordHasher;
            argon2::Argon2::default()
                .hash_password(BOB.1.as_bytes())
                .unwrap()
                .to_string()
        };
        std::fs::write(
            dir.path().join("users.htpasswd"),
            format!("{}:{alice}\n{}:{bob}\n", ALICE.0, BOB.0),
        )
        .unwrap();
        std::fs::write(dir.path().join("users.groups"), "admins: alice\n").unwrap();
        Site {
            dir,
            port: free_port().await,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The demo MCP server's URL (the resource the example configuration assumes).
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.base())
    }

    /// What the example configuration leaves to the site: where to listen, the files, the data.
    pub fn env(&self) -> Vec<(String, String)> {
        let p = |name: &str| self.dir.path().join(name).display().to_string();
        vec![
            (
                "MCP_OAUTH__SERVER__BIND".into(),
                format!("127.0.0.1:{}", self.port),
            ),
            ("MCP_OAUTH__SERVER__ISSUER".into(), self.base()),
            ("MCP_OAUTH__STORAGE__DATA_DIR".into(), p("data")),
            (
                "MCP_OAUTH__USERS__HTPASSWD__FILE".into(),
                p("users.htpasswd"),
            ),
            (
                "MCP_OAUTH__USERS__HTPASSWD__GROUPS_FILE".into(),
                p("users.groups"),
            ),
        ]
    }

    fn command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(example_config())
            .args(args)
            .current_dir(self.dir.path())
            .envs(self.env())
            .envs(extra_env.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs a command to its end: (exit code, stdout, stderr).
    pub async fn run(
        &self,
        args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> (Option<i32>, String, String) {
        let child = self.command(args, extra_env).spawn().unwrap();
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("the command ends within a minute")
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Starts `serve` and waits until the authorization server's metadata answers.
    pub async fn serve(&self) -> Served {
        self.serve_with(&[]).await
    }

    /// [`Site::serve`] with extra environment (settings overrides).
    pub async fn serve_with(&self, extra_env: &[(&str, &str)]) -> Served {
        let mut child = self.command(&["serve"], extra_env).spawn().unwrap();
        let stderr = collect(child.stderr.take().unwrap());
        let _stdout = collect(child.stdout.take().unwrap());
        let http = reqwest::Client::new();
        let url = format!("{}/.well-known/oauth-authorization-server", self.base());
        for _ in 0..300 {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("serve exited with {status}: {}", stderr.lock().unwrap());
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return Served { child, stderr };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("serve did not come up: {}", stderr.lock().unwrap());
    }
}

/// A running `serve`; killed on drop.
pub struct Served {
    child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl Served {
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
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
