//! The access log and the request metrics: one line per request, at info, target
//! `mcp_oauth::access`, with `method`, `path` (never the query: it carries login-transaction ids
//! and client `state`), `status`, `latency_ms` and `client` (the client address, through
//! `[server] trusted_proxies`); and the request counter and latency histogram of
//! [`super::metrics`], labelled with the matched route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::oauth::client_address::ClientAddr;
use crate::state::AppState;

/// The route label of requests no route matched (so random paths add no metric series).
pub const UNMATCHED: &str = "unmatched";

/// Middleware: times the request, then logs it and counts it.
pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_owned(), |m| m.as_str().to_owned());
    let (parts, body) = req.into_parts();
    let client = ClientAddr::of(&parts, &state.trusted_proxies).0;
    let resp = next.run(Request::from_parts(parts, body)).await;
    let latency = started.elapsed();
    let status = resp.status().as_u16();
    tracing::info!(
        target: "mcp_oauth::access",
        method = %method,
        path = %path,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        client = %client,
        "request"
    );
    state
        .observability
        .metrics
        .request(&route, &method, status, latency);
    resp
}
