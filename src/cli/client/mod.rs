//! The client commands (issue 9): `login`, `tools`, `call`, `token`, `logout`, `status`, `proxy`.
//! They use the `mcp-oauth-client` crate and read no server configuration. One file per command;
//! this file holds the flags they share and builds the [`Authorizer`].
//!
//! Secrets never come from the command line: the password from stdin (`--password-stdin`, first
//! line) or `MCP_OAUTH_PASSWORD`; a client secret from stdin (`--client-secret-stdin`, the next
//! line), `MCP_OAUTH_CLIENT_SECRET` or `--client-secret-file`.

pub mod call;
pub mod login;
pub mod logout;
pub mod proxy;
pub mod status;
pub mod token;
pub mod tools;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::registration::RegistrationOptions;
use mcp_oauth_client::{Authorizer, ClientOptions, FileStore, Secret, UrlPolicy};

pub const PASSWORD_ENV: &str = "MCP_OAUTH_PASSWORD";
pub const CLIENT_SECRET_ENV: &str = "MCP_OAUTH_CLIENT_SECRET";

/// Where the tokens are kept.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Token store directory (default: $XDG_DATA_HOME/mcp-oauth/client or
    /// ~/.local/share/mcp-oauth/client).
    #[arg(long, value_name = "DIR", env = "MCP_OAUTH_CLIENT_STORE")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    pub fn open(&self) -> anyhow::Result<FileStore> {
        let dir = match &self.store {
            Some(d) => d.clone(),
            None => FileStore::default_dir()?,
        };
        Ok(FileStore::open(&dir)?)
    }
}

/// How to log in when a login is needed.
#[derive(Debug, Clone, Default, Args)]
pub struct LoginArgs {
    /// Log in without a browser as this user (the password from --password-stdin or
    /// $MCP_OAUTH_PASSWORD). Works with mcp-oauth servers and any server whose sign-in form this
    /// client can read.
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Read the password from the first line of stdin.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Scope to ask for (repeatable, or space-separated); default: what the server asks for.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,
    /// Use this pre-registered client id instead of registering.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Read the pre-registered client's secret from stdin (the line after the password, if any).
    #[arg(long, requires = "client_id")]
    pub client_secret_stdin: bool,
    /// Read the pre-registered client's secret from this file.
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_id",
        conflicts_with = "client_secret_stdin"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// Use this client ID metadata document URL as the client id, where the server supports it.
    #[arg(long, value_name = "URL")]
    pub client_metadata_url: Option<String>,
    /// Port of the local callback server (default: any free port).
    #[arg(long, value_name = "PORT")]
    pub callback_port: Option<u16>,
    /// Do not start a browser; print the URL to open.
    #[arg(long)]
    pub no_browser: bool,
    /// Allow plain http to non-loopback hosts (development only: tokens travel in clear text).
    #[arg(long)]
    pub insecure: bool,
}

impl LoginArgs {
    /// The authorizer options, reading secrets from stdin, env or file as the flags say.
    pub fn options(&self) -> anyhow::Result<ClientOptions> {
        let mut stdin_lines = None;
        let mut next_stdin_line = |what: &str| -> anyhow::Result<String> {
            let lines = stdin_lines.get_or_insert_with(|| std::io::stdin().lines());
            match lines.next() {
                Some(Ok(l)) if !l.is_empty() => Ok(l),
                _ => anyhow::bail!("no {what} on stdin: pipe it in, one line"),
            }
        };
        let login = match &self.username {
            Some(username) => {
                let password = if self.password_stdin {
                    next_stdin_line("password")?
                } else {
                    std::env::var(PASSWORD_ENV).map_err(|_| {
                        anyhow::anyhow!(
                            "--username needs a password: pass --password-stdin and pipe it in, \
                             or set {PASSWORD_ENV}"
                        )
                    })?
                };
                LoginMode::Headless {
                    username: username.clone(),
                    password: Secret::new(password),
                }
            }
            None => LoginMode::Browser {
                open: !self.no_browser,
            },
        };
        let client_secret = if self.client_secret_stdin {
            Some(next_stdin_line("client secret")?)
        } else if let Some(f) = &self.client_secret_file {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading the client secret from {}", f.display()))?;
            Some(text.trim().to_string())
        } else if self.client_id.is_some() {
            std::env::var(CLIENT_SECRET_ENV).ok()
        } else {
            None
        };
        let scopes: Vec<String> = self
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace().map(str::to_string))
            .collect();
        Ok(ClientOptions {
            login,
            scopes: (!scopes.is_empty()).then_some(scopes),
            registration: RegistrationOptions {
                client_id: self.client_id.clone(),
                client_secret: client_secret.map(Secret::new),
                client_metadata_url: self.client_metadata_url.clone(),
                client_name: Some("mcp-oauth CLI".into()),
            },
            callback_port: self.callback_port.unwrap_or(0),
            policy: UrlPolicy {
                allow_insecure_http: self.insecure,
            },
            ..ClientOptions::default()
        })
    }
}

/// An authorizer for `url` over the store.
pub fn authorizer(url: &str, store: &StoreArgs, opts: ClientOptions) -> anyhow::Result<Authorizer> {
    let store = Arc::new(store.open()?);
    Ok(Authorizer::new(url, store, opts)?)
}

/// "in 4m 10s" / "3s ago".
pub fn relative(secs_from_now: i64) -> String {
    let abs = secs_from_now.unsigned_abs();
    let text = if abs >= 86_400 {
        format!("{}d {}h", abs / 86_400, abs % 86_400 / 3600)
    } else if abs >= 3600 {
        format!("{}h {}m", abs / 3600, abs % 3600 / 60)
    } else if abs >= 60 {
        format!("{}m {}s", abs / 60, abs % 60)
    } else {
        format!("{abs}s")
    };
    if secs_from_now >= 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}
