//! `mcp-oauth call URL TOOL [--args JSON]`: calls one tool and prints its result (structured
//! content as JSON, else the text content). Logs in first when needed and steps up on 403
//! `insufficient_scope`.

use clap::Args;
use mcp_oauth_client::session::mcp_error;
use rmcp::model::CallToolRequestParams;

use super::{LoginArgs, StoreArgs, authorizer};

#[derive(Debug, Clone, Args)]
pub struct CallCmd {
    /// The MCP server URL.
    pub url: String,
    /// The tool's name.
    pub tool: String,
    /// The tool's arguments, a JSON object.
    #[arg(long = "args", value_name = "JSON")]
    pub args: Option<String>,
    #[command(flatten)]
    pub login: LoginArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn run(cmd: CallCmd) -> anyhow::Result<()> {
    let arguments = match &cmd.args {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            Ok(_) => {
                anyhow::bail!("--args must be a JSON object, e.g. --args '{{\"message\": \"hi\"}}'")
            }
            Err(e) => anyhow::bail!(
                "--args is not valid JSON ({e}); pass an object, e.g. --args '{{\"message\": \"hi\"}}'"
            ),
        },
    };
    let auth = authorizer(&cmd.url, &cmd.store, cmd.login.options()?)?;
    let mcp = mcp_oauth_client::connect(&auth).await?;
    let mut params = CallToolRequestParams::new(cmd.tool.clone());
    if let Some(a) = arguments {
        params = params.with_arguments(a);
    }
    let result = mcp
        .call_tool(params)
        .await
        .map_err(|e| mcp_error(&auth, &e));
    let _ = mcp.cancel().await;
    let result = result?;
    let mut printed = false;
    if let Some(s) = &result.structured_content {
        crate::say!("{}", serde_json::to_string_pretty(s)?);
        printed = true;
    } else {
        for c in &result.content {
            if let Some(t) = c.as_text() {
                crate::say!("{}", t.text);
                printed = true;
            }
        }
    }
    if !printed {
        crate::say!("{}", serde_json::to_string_pretty(&result.content)?);
    }
    if result.is_error == Some(true) {
        anyhow::bail!("the tool {} reported an error (shown above)", cmd.tool);
    }
    Ok(())
}
