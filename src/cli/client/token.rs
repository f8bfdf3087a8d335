//! `mcp-oauth token URL`: prints a valid access token on stdout for scripts, refreshing it first
//! when it is about to expire (safely, when many processes do this at once). Never logs in: with no
//! usable login it fails and names `mcp-oauth login`.

use clap::Args;
use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::{ClientOptions, UrlPolicy};

use super::{StoreArgs, authorizer};

#[derive(Debug, Clone, Args)]
pub struct TokenCmd {
    /// The MCP server URL.
    pub url: String,
    /// Allow plain http to non-loopback hosts (development only).
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(cmd: TokenCmd) -> anyhow::Result<()> {
    let opts = ClientOptions {
        login: LoginMode::Never,
        policy: UrlPolicy {
            allow_insecure_http: cmd.insecure,
        },
        ..ClientOptions::default()
    };
    let auth = authorizer(&cmd.url, &cmd.store, opts)?;
    let token = auth.access_token().await?;
    // This command's one job is to print the token.
    crate::say!("{}", token.expose());
    Ok(())
}
