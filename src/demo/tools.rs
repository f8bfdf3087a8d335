//! The demo MCP server's tools (rmcp). The identity comes from the request extensions the bearer
//! layer filled: rmcp hands the HTTP request parts to tools as `Extension<http::request::Parts>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use axum::http::request::Parts;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::resource::scope::{identity, require_scopes};

/// The scope `admin_stats` needs, beyond the basic one.
pub const ADMIN_SCOPE: &str = "mcp:admin";
/// The tool that needs [`ADMIN_SCOPE`] (so step-up can be seen).
pub const ADMIN_TOOL: &str = "admin_stats";

/// Counters shared by every session of one mounted demo.
#[derive(Debug)]
pub struct DemoStats {
    started: Instant,
    tool_calls: AtomicU64,
}

impl Default for DemoStats {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            tool_calls: AtomicU64::new(0),
        }
    }
}

/// One MCP session's handler (rmcp builds one per session).
#[derive(Clone)]
pub struct DemoServer {
    stats: Arc<DemoStats>,
    tool_router: ToolRouter<Self>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WhoAmI {
    /// "user" when a signed-in user is behind the token, "client" for a machine token
    /// (`client_credentials`, whose subject is the client itself, RFC 9068 §2.2).
    pub kind: &'static str,
    /// The token's subject (the signed-in user, or the client id of a machine token).
    pub subject: String,
    /// The OAuth client the token was issued to.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The authorization server that issued the token.
    pub issuer: String,
    /// When the token expires (Unix seconds).
    pub expires_at: Option<i64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TimeNow {
    /// RFC 3339, UTC.
    pub utc: String,
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct EchoArgs {
    /// Text to send back.
    pub message: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AdminStats {
    /// Seconds since the demo was mounted.
    pub uptime_seconds: u64,
    /// Tool calls answered so far (all sessions).
    pub tool_calls: u64,
    /// Who asked.
    pub requested_by: String,
}

impl DemoServer {
    pub fn new(stats: Arc<DemoStats>) -> Self {
        Self {
            stats,
            tool_router: Self::tool_router(),
        }
    }

    fn count(&self) -> u64 {
        self.stats.tool_calls.fetch_add(1, Ordering::Relaxed) + 1
    }
}

#[tool_router]
impl DemoServer {
    #[tool(description = "Who is calling: the access token's subject, client id and scopes.")]
    async fn whoami(&self, Extension(parts): Extension<Parts>) -> Result<Json<WhoAmI>, ErrorData> {
        self.count();
        let id = identity(&parts.extensions)?;
        let machine = id.client_id.as_deref() == Some(id.subject.as_str());
        Ok(Json(WhoAmI {
            kind: if machine { "client" } else { "user" },
            subject: id.subject.clone(),
            client_id: id.client_id.clone(),
            scopes: id.scopes.clone(),
            issuer: id.issuer.clone(),
            expires_at: id.expires_at,
        }))
    }

    #[tool(description = "The server's current time, in RFC 3339 (UTC) and Unix seconds.")]
    async fn get_time(&self) -> Json<TimeNow> {
        self.count();
        let now = SystemTime::now();
        Json(TimeNow {
            utc: humantime::format_rfc3339_seconds(now).to_string(),
            unix: crate::state::now(),
        })
    }

    #[tool(description = "Sends the message back unchanged.")]
    async fn echo(&self, Parameters(EchoArgs { message }): Parameters<EchoArgs>) -> String {
        self.count();
        message
    }

    #[tool(
        description = "Server statistics. Requires the mcp:admin scope (the server answers 403 insufficient_scope otherwise, so a client can step up)."
    )]
    async fn admin_stats(
        &self,
        Extension(parts): Extension<Parts>,
    ) -> Result<Json<AdminStats>, ErrorData> {
        // The layer already answered 403 for tokens without the scope (declared with
        // `with_tool_scopes`); checking here too keeps the tool safe behind any layer setup.
        let id = require_scopes(&parts.extensions, &[ADMIN_SCOPE])?;
        let calls = self.count();
        Ok(Json(AdminStats {
            uptime_seconds: self.stats.started.elapsed().as_secs(),
            tool_calls: calls,
            requested_by: id.subject.clone(),
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(
                "mcp-oauth-demo",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(
                "Demo MCP server protected by mcp-oauth: whoami shows the token's identity; \
                 admin_stats needs the mcp:admin scope.",
            )
    }
}
