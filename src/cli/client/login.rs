//! `mcp-oauth login URL`: discovery, registration and the authorization-code flow, then the
//! tokens go to the encrypted store.

use clap::Args;
use mcp_oauth_client::secret::unix_now;

use super::{LoginArgs, StoreArgs, authorizer, relative};

#[derive(Debug, Clone, Args)]
pub struct LoginCmd {
    /// The MCP server URL (its endpoint, e.g. https://host/mcp).
    pub url: String,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(cmd: LoginCmd) -> anyhow::Result<()> {
    let auth = authorizer(&cmd.url, &cmd.store, cmd.login.options()?)?;
    let record = auth.login().await?;
    let tokens = record.tokens.as_ref();
    let scopes = tokens.map(|t| t.scopes.join(" ")).unwrap_or_default();
    crate::say!(
        "Logged in to {} (authorization server {}).",
        record.key.server,
        record.key.issuer
    );
    crate::say!(
        "  scopes: {}",
        if scopes.is_empty() { "(none)" } else { &scopes }
    );
    if let Some(exp) = tokens.and_then(|t| t.expires_at) {
        crate::say!("  access token expires {}", relative(exp - unix_now()));
    }
    if tokens.is_some_and(|t| t.refresh_token.is_none()) {
        crate::say!("  no refresh token was issued: you will log in again when it expires");
    }
    Ok(())
}
