//! `mcp-oauth tools URL`: the server's tools with their descriptions (logs in first when needed).

use clap::Args;
use mcp_oauth_client::session::mcp_error;

use super::{LoginArgs, StoreArgs, authorizer};

#[derive(Debug, Clone, Args)]
pub struct ToolsCmd {
    /// The MCP server URL.
    pub url: String,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(cmd: ToolsCmd) -> anyhow::Result<()> {
    let auth = authorizer(&cmd.url, &cmd.store, cmd.login.options()?)?;
    let mcp = mcp_oauth_client::connect(&auth).await?;
    let tools = mcp
        .list_all_tools()
        .await
        .map_err(|e| mcp_error(&auth, &e))?;
    for tool in &tools {
        crate::say!("{}", tool.name);
        if let Some(d) = &tool.description {
            for line in d.lines() {
                crate::say!("    {line}");
            }
        }
    }
    if tools.is_empty() {
        crate::say!("(the server offers no tools)");
    }
    let _ = mcp.cancel().await;
    Ok(())
}
