//! The demo MCP server: rmcp's streamable-HTTP service with four tools ([`tools`]), behind the
//! [`BearerAuthLayer`], with its RFC 9728 metadata beside it.
//!
//! `serve` mounts it on the authorization server's own origin at `[demo_mcp] path` (default
//! `/mcp`) with the [`CoHostedVerifier`](crate::resource::CoHostedVerifier); `mcp-oauth demo-mcp`
//! runs it alone against a remote authorization server (JWKS or introspection).
//!
//! `admin_stats` needs `mcp:admin` on top of the basic scope: a token without it gets 403
//! `insufficient_scope` naming both scopes, the MCP step-up flow.

pub mod tools;

use std::sync::Arc;

use axum::Router;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tower::Layer;

use crate::config::Settings;
use crate::resource::layer::BearerAuthLayer;
use crate::resource::metadata::metadata_router;
use crate::resource::origin::OriginPolicy;
use crate::resource::protected::ProtectedResource;
use crate::resource::verifier::TokenVerifier;
use tools::{ADMIN_SCOPE, ADMIN_TOOL, DemoServer, DemoStats};

/// What is mounted where.
#[derive(Debug, Clone)]
pub struct DemoMount {
    pub resource: ProtectedResource,
    pub origins: OriginPolicy,
}

impl DemoMount {
    /// The demo as `resource` (its URI path is the mount point), with the default origin policy.
    pub fn new(resource: ProtectedResource) -> Self {
        let resource = with_admin_tool(resource);
        Self {
            origins: OriginPolicy::for_resource(&resource),
            resource,
        }
    }

    /// The mount `serve` uses, from `[demo_mcp]` and the matching `[[resources]]` entry; `None`
    /// when disabled or undeclared (logged).
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Self>> {
        if !settings.demo_mcp.enabled {
            return Ok(None);
        }
        let Some(declared) = settings.demo_mcp_resource()? else {
            tracing::warn!(
                uri = %settings.demo_mcp_uri()?,
                "the demo MCP server is enabled but no [[resources]] entry has this uri: not \
                 mounting it (declare the resource, or set [demo_mcp] enabled = false)"
            );
            return Ok(None);
        };
        let resource = ProtectedResource::from_declared(&declared, &settings.issuer_url()?)?;
        let mut mount = Self::new(resource);
        for host in &settings.demo_mcp.allowed_hosts {
            mount.origins = mount.origins.allow_host(host);
        }
        for origin in &settings.demo_mcp.allowed_origins {
            mount.origins = mount.origins.allow_origin(origin);
        }
        Ok(Some(mount))
    }

    /// The path the MCP endpoint is mounted at.
    pub fn path(&self) -> &str {
        self.resource.path()
    }
}

/// `admin_stats` needs `mcp:admin` when the resource offers it; otherwise the tool's own check
/// refuses every call and the warning says why.
fn with_admin_tool(resource: ProtectedResource) -> ProtectedResource {
    match resource.clone().with_tool_scopes(ADMIN_TOOL, [ADMIN_SCOPE]) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(resource = %resource.uri(), error = %e, "admin_stats will refuse every call");
            resource
        }
    }
}

/// rmcp's streamable-HTTP service for the demo. Its own `Host`/`Origin` lists are the same as the
/// layer's, so both agree on what is served.
pub fn mcp_service(
    origins: &OriginPolicy,
    cancel: CancellationToken,
) -> StreamableHttpService<DemoServer, LocalSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(origins.allowed_hosts())
        .with_allowed_origins(origins.allowed_origins())
        .with_cancellation_token(cancel);
    let stats = Arc::new(DemoStats::default());
    StreamableHttpService::new(
        move || Ok(DemoServer::new(stats.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// The demo's routes: the protected MCP endpoint and its metadata (both locations). `cancel` ends
/// every MCP session (open SSE streams would otherwise hold a graceful shutdown forever).
pub fn router<S: Clone + Send + Sync + 'static>(
    mount: &DemoMount,
    verifier: impl TokenVerifier,
    cancel: CancellationToken,
) -> Router<S> {
    let layer = BearerAuthLayer::new(mount.resource.clone(), verifier)
        .with_origin_policy(mount.origins.clone());
    let protected = layer.layer(mcp_service(&mount.origins, cancel));
    Router::new()
        .nest_service(mount.path(), protected)
        .merge(metadata_router(&mount.resource))
}
