//! The operators' listener (`[server] admin_bind`): `GET /metrics`, `/healthz` and `/readyz` only,
//! with the same access log, header read timeout and connection limits as the main listener. When
//! it is configured, `/metrics` is no longer served on the main listener.

use axum::routing::get;
use axum::{Router, middleware};

use crate::error::{ErrorCode, OAuthError};
use crate::observability::{access_log, health, metrics};
use crate::state::AppState;

/// The admin router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::admin_metrics_get))
        .route("/healthz", get(health::healthz_get))
        .route("/readyz", get(health::readyz_get))
        .fallback(|| async { OAuthError::new(ErrorCode::NotFound, "no such endpoint") })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access_log::record,
        ))
        .with_state(state)
}
