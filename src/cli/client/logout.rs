//! `mcp-oauth logout URL`: revokes the refresh and access tokens at the authorization server
//! (RFC 7009) where it offers revocation, then deletes the stored records of that server (also
//! ones that can no longer be read).

use clap::Args;
use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::{ClientOptions, UrlPolicy};

use super::{StoreArgs, authorizer};

#[derive(Debug, Clone, Args)]
pub struct LogoutCmd {
    /// The MCP server URL.
    pub url: String,
    /// Allow plain http to non-loopback hosts (development only).
    #[arg(long)]
    pub insecure: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(cmd: LogoutCmd) -> anyhow::Result<()> {
    let opts = ClientOptions {
        login: LoginMode::Never,
        policy: UrlPolicy {
            allow_insecure_http: cmd.insecure,
        },
        ..ClientOptions::default()
    };
    let auth = authorizer(&cmd.url, &cmd.store, opts)?;
    let report = auth.logout().await?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if report.deleted == 0 {
        crate::say!("Not logged in to {}: nothing to do.", auth.server());
    } else {
        crate::say!(
            "Logged out of {}: revoked {} token(s), deleted {} stored login(s).",
            auth.server(),
            report.revoked,
            report.deleted
        );
    }
    Ok(())
}
