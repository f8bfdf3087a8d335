//! `mcp-oauth proxy URL`: a stdio ↔ streamable-HTTP bridge with OAuth, for MCP hosts that only
//! start local stdio servers (desktop apps, IDEs). stdout carries only MCP messages; the login URL
//! and logs go to stderr.

use clap::Args;

use super::{LoginArgs, StoreArgs, authorizer};

#[derive(Debug, Clone, Args)]
pub struct ProxyCmd {
    /// The MCP server URL.
    pub url: String,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(cmd: ProxyCmd) -> anyhow::Result<()> {
    if cmd.login.password_stdin || cmd.login.client_secret_stdin {
        anyhow::bail!(
            "proxy speaks MCP on stdin, so secrets cannot come from it: use MCP_OAUTH_PASSWORD / \
             MCP_OAUTH_CLIENT_SECRET, or run `mcp-oauth login URL` first"
        );
    }
    let auth = authorizer(&cmd.url, &cmd.store, cmd.login.options()?)?;
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    mcp_oauth_client::session::proxy::run(auth, stdin, tokio::io::stdout()).await?;
    Ok(())
}
