//! Bench only: the demo MCP server with NO authorization at all (no bearer layer, no `Host`/`Origin`
//! layer of ours; rmcp's own loopback `Host` check stays), so `scripts/bench` can measure what the
//! resource layer costs per `tools/call`: the same call through `mcp-oauth demo-mcp` (the layer,
//! JWKS verification) against this. It is an example, never part of the `mcp-oauth` binary, and
//! listens on loopback only.
//!
//!   cargo run --release --example bench_mcp_open -- 127.0.0.1:8100
//!
//! Prints `listening http://127.0.0.1:PORT/mcp` once it accepts connections.

use mcp_oauth::demo::mcp_service;
use mcp_oauth::resource::ProtectedResource;
use mcp_oauth::resource::origin::OriginPolicy;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        anyhow::bail!("bench_mcp_open serves loopback only (got {addr})");
    }
    let uri = format!("http://{addr}/mcp");
    // Only for the Host/Origin lists rmcp's service is given; no token is ever asked for.
    let resource = ProtectedResource::new(&uri, &format!("http://{addr}"))?;
    let origins = OriginPolicy::for_resource(&resource);
    let app =
        axum::Router::new().nest_service("/mcp", mcp_service(&origins, CancellationToken::new()));
    println!("listening {uri}");
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
