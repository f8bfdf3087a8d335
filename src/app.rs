//! Builds the axum router and runs it on a listener (tests bind `127.0.0.1:0`).
//!
//! With `[demo_mcp]` enabled (and declared), the demo MCP server is mounted on the same origin,
//! protected by the co-hosted verifier, with its RFC 9728 metadata beside it.
//!
//! CORS (MCP-AUTH AS-17): metadata, JWKS, register, token, revoke and introspect allow any origin and
//! the `Authorization` and `MCP-Protocol-Version` headers, so browser-based MCP clients work. The
//! browser-facing `/authorize`, `/login` and `/consent` get no CORS at all.

use std::future::Future;
use std::time::Duration;

use axum::http::{HeaderName, Method, Request, header};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{Any, CorsLayer};
use tower_http::trace::TraceLayer;

use crate::demo::{self, DemoMount};
use crate::error::{ErrorCode, OAuthError};
use crate::listener::ConnectionLimits;
use crate::oauth::{
    authorize, introspect, jwks, login, metadata, rate_limit, register, revoke, token, upstream,
};
use crate::observability::{access_log, admin, health, metrics};
use crate::request_timeouts;
use crate::resource::CoHostedVerifier;
use crate::state::{AppState, now};

/// The whole HTTP surface, with the demo MCP server when `demo` is given; cancelling `cancel` ends
/// the demo's sessions.
pub fn router(state: AppState, demo: Option<&DemoMount>, cancel: CancellationToken) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("mcp-protocol-version"),
        ])
        .max_age(Duration::from_secs(600));
    let api = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata_get),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::metadata_get),
        )
        .route("/jwks.json", get(jwks::jwks_get))
        .route("/register", post(register::register_post))
        .route("/token", post(token::token_post))
        .route("/revoke", post(revoke::revoke_post))
        .route("/introspect", post(introspect::introspect_post))
        .layer(cors);
    let browser = Router::new()
        .route("/", get(crate::oauth::pages::home_get))
        .route(
            "/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/login", get(login::login_get).post(login::login_post))
        .route("/consent", post(login::consent_post))
        .route("/login/upstream/{name}", post(upstream::start_post))
        .route("/login/callback/{name}", get(upstream::callback_get));
    // Probes and metrics (metrics only to loopback clients unless an admin listener takes them).
    let ops = Router::new()
        .route("/healthz", get(health::healthz_get))
        .route("/readyz", get(health::readyz_get))
        .route("/metrics", get(metrics::metrics_get));
    let mut routes = api.merge(browser).merge(ops);
    if let Some(mount) = demo {
        tracing::info!(resource = %mount.resource.uri(), path = %mount.path(), "demo MCP server mounted");
        routes = routes.merge(demo::router(
            mount,
            CoHostedVerifier::new(state.clone()),
            cancel,
        ));
    }
    routes
        .fallback(|| async { OAuthError::new(ErrorCode::NotFound, "no such endpoint") })
        // Outermost first: rates are checked before the clock for the body and handler starts.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeouts::limit_request_time,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::limit_requests,
        ))
        // Outermost: the access log and request metrics see every answer, refusals included.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access_log::record,
        ))
        .with_state(state)
        // Spans name the method and path only: query strings carry login-transaction ids and
        // client state, which must not reach logs.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
        }))
}

/// Serves until `shutdown` resolves, purging expired records in the background. Connections are
/// accepted by [`crate::listener::serve`] (header read timeout, connection limits, peer address).
/// `admin`, when given, serves [`admin::router`] with the same limits until the same shutdown.
pub async fn run(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: AppState,
    demo: Option<DemoMount>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let purger = tokio::spawn(purge_loop(state.clone()));
    let cancel = CancellationToken::new();
    let limits = ConnectionLimits::resolve(
        state.limits.header_read_timeout,
        state.limits.max_connections,
        state.limits.max_connections_per_address,
        state.trusted_proxies.clone(),
    );
    tracing::debug!(max_connections = limits.max_connections, per_address = ?limits.max_per_address, "connection limits");
    let admin_server = admin.map(|l| {
        let app = admin::router(state.clone());
        let stop = cancel.clone().cancelled_owned();
        tokio::spawn(crate::listener::serve(l, app, limits.clone(), stop))
    });
    let app = router(state, demo.as_ref(), cancel.clone());
    // Open MCP event streams would hold a graceful shutdown forever: end them first.
    let shutdown = async move {
        shutdown.await;
        cancel.cancel();
    };
    let result = crate::listener::serve(listener, app, limits, shutdown).await;
    if let Some(task) = admin_server {
        match task.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "admin listener ended with an error"),
            Err(e) => tracing::warn!(error = %e, "admin listener task failed"),
            Ok(Ok(())) => {}
        }
    }
    purger.abort();
    result
}

/// Periodically removes expired records. Failures are logged and retried next round; a purge never
/// blocks requests (each store operation is short).
async fn purge_loop(state: AppState) {
    // The first round is one interval after start: keys were just loaded, nothing has expired yet.
    let every = state.purge_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        purge_once(&state).await;
    }
}

/// One round of upkeep: expired codes, tokens, consents and login transactions, single-use claims
/// and cached client metadata documents, anonymous
/// registrations no user approved within `[registration] unused_client_ttl`, refresh successors
/// kept past the grace window, and the signing keys.
pub async fn purge_once(state: &AppState) {
    let t = now();
    match state.provider.tokens().purge_expired(t).await {
        Ok(c) if c.codes + c.access_tokens + c.refresh_tokens > 0 => {
            tracing::debug!(
                codes = c.codes,
                access = c.access_tokens,
                refresh = c.refresh_tokens,
                "purged expired tokens"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging expired tokens failed"),
    }
    if let Err(e) = state.keys.maintain(state.provider.keys(), t).await {
        tracing::warn!(error = %e, "signing-key upkeep failed");
    }
    if let Err(e) = state.provider.interactions().purge_expired(t).await {
        tracing::warn!(error = %e, "purging expired login transactions failed");
    }
    if let Err(e) = state.provider.throttle().purge_expired(t).await {
        tracing::warn!(error = %e, "purging expired sign-in throttle counters failed");
    }
    if let Err(e) = state.provider.shared_state().purge_expired(t).await {
        tracing::warn!(error = %e, "purging expired single-use claims and cached documents failed");
    }
    let unused_before = t.saturating_sub(state.registration.unused_client_ttl);
    match state
        .provider
        .clients()
        .purge_unused_clients(unused_before)
        .await
    {
        Ok(n) if n > 0 => tracing::info!(clients = n, "deleted unused anonymous registrations"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "purging unused registrations failed"),
    }
    let grace_ended = t.saturating_sub(state.refresh_reuse_grace);
    if let Err(e) = state.provider.tokens().clear_successors(grace_ended).await {
        tracing::warn!(error = %e, "clearing kept refresh successors failed");
    }
    state.rate_limits.purge();
}
