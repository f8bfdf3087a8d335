//! Protecting your own MCP server (rmcp, streamable HTTP) and a plain axum route with the
//! resource-server toolkit alone (`mcp-oauth-resource` with its `rmcp` feature): a few lines between
//! `Router::new()` and `axum::serve`.
//!
//! ```sh
//! cargo run -- --config config/examples/two-resources.toml serve          # declares 127.0.0.1:8000/mcp
//! cargo run -p mcp-oauth-resource --features rmcp --example protect_axum   # this server, 127.0.0.1:8000
//! curl -i -X POST http://127.0.0.1:8000/mcp     # 401 with the WWW-Authenticate challenge
//! MCP_RESOURCE=http://127.0.0.1:8000/mcp MCP_PASSWORD='…' scripts/quickstart.sh   # token + call
//! ```
//!
//! Environment: `ISSUER` (default `http://127.0.0.1:9000`), `RESOURCE` (default
//! `http://127.0.0.1:8000/mcp`), `BIND` (default `127.0.0.1:8000`).

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use mcp_oauth_resource::{
    BearerAuthLayer, JwksVerifier, ProtectedResource, identity, metadata_router, require_scopes,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

/// Your MCP server: one tool that greets the caller named by the verified token.
#[derive(Clone)]
struct Greeter {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl Greeter {
    #[tool(description = "Greets the signed-in user named by the access token.")]
    async fn whoami(
        &self,
        Extension(parts): Extension<axum::http::request::Parts>,
    ) -> Result<String, ErrorData> {
        // The layer put the verified identity in the request extensions.
        let who = identity(&parts.extensions)?;
        Ok(format!("hello, {}", who.subject))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Greeter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The JWKS client needs a TLS provider, even for http URLs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let issuer = env("ISSUER", "http://127.0.0.1:9000");
    let resource_uri = env("RESOURCE", "http://127.0.0.1:8000/mcp");
    let bind = env("BIND", "127.0.0.1:8000");

    // 1. Declare the resource: its URI (the token audience), the issuer it trusts, its scopes.
    let resource = ProtectedResource::new(&resource_uri, &issuer)?
        .with_scopes(["mcp:tools", "mcp:admin"])?
        .with_name("Greeter");
    // 2. Choose a verifier: JWT via the issuer's JWKS (or IntrospectionVerifier). Started together
    //    with the authorization server, this waits for it (up to 30 s) instead of failing at once.
    let mut attempt = 0;
    let verifier = loop {
        match JwksVerifier::discover(&issuer).await {
            Ok(verifier) => break verifier,
            Err(err) if attempt < 60 => {
                if attempt == 0 {
                    eprintln!("waiting for the authorization server at {issuer} ({err})");
                }
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(err) => return Err(err.into()),
        }
    };
    // 3. Your MCP server as a tower service.
    let mcp = StreamableHttpService::new(
        || {
            Ok(Greeter {
                tool_router: Greeter::tool_router(),
            })
        },
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    // 4. Routes behind the layer; the RFC 9728 metadata merged after it (no token needed).
    let app = Router::new()
        .nest_service("/mcp", mcp)
        .route(
            "/admin",
            get(|req: Request| async move {
                require_scopes(req.extensions(), &["mcp:admin"])
                    .map(|id| format!("admin {}", id.subject))
            }),
        )
        .layer(BearerAuthLayer::new(resource.clone(), verifier))
        .merge(metadata_router(&resource));

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("protected MCP server at {resource_uri} (issuer {issuer})");
    axum::serve(
        // Small MCP responses go out at once (no delayed-ACK stall of ~40 ms per request).
        axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        app,
    )
    .await?;
    Ok(())
}
