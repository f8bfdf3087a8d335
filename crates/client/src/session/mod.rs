//! An authenticated MCP session: given a server URL, an rmcp client that is already authorised
//! and re-authorises by itself.
//!
//! - [`authorizer`]: tokens: load, refresh across processes, log in, step up, log out.
//! - [`transport`]: the rmcp `StreamableHttpClient` that asks the authorizer on every request.
//! - [`proxy`]: a stdio ↔ streamable-HTTP bridge that forwards JSON-RPC messages unchanged.

pub mod authorizer;
pub mod proxy;
pub mod transport;

use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};

pub use authorizer::{Authorizer, ClientOptions, LogoutReport};
pub use transport::AuthorizedHttpClient;

use crate::error::{Error, Result, source_chain};

/// An initialised MCP client session for `auth`'s server. The login (or refresh) happens before
/// the MCP handshake, so its errors come back as they are.
pub async fn connect(auth: &Authorizer) -> Result<RunningService<RoleClient, ()>> {
    auth.access_token().await?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| Error::Usage(format!("cannot build an HTTP client: {e}")))?;
    let transport = StreamableHttpClientTransport::with_client(
        AuthorizedHttpClient::new(http, auth.clone()),
        StreamableHttpClientTransportConfig::with_uri(auth.server().to_string()),
    );
    ().serve(transport).await.map_err(|e| mcp_error(auth, &e))
}

/// An rmcp error as the crate's error; an authorization failure inside it keeps its own message.
pub fn mcp_error(auth: &Authorizer, err: &(dyn std::error::Error + 'static)) -> Error {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(ours) = e.downcast_ref::<Error>() {
            return Error::Mcp {
                server: auth.server().to_string(),
                reason: ours.to_string(),
            };
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(ours) = inner.downcast_ref::<Error>()
        {
            return Error::Mcp {
                server: auth.server().to_string(),
                reason: ours.to_string(),
            };
        }
        cur = e.source();
    }
    Error::Mcp {
        server: auth.server().to_string(),
        reason: source_chain(err),
    }
}
