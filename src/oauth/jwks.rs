//! `GET /jwks.json`: the JWK Set (RFC 7517 §5) of every public key that may have signed a live access
//! token, so resource servers can verify RFC 9068 tokens offline.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn jwks_get(State(state): State<AppState>) -> Response {
    let mut resp = Json(state.keys.jwks()).into_response();
    // Short caching: verifiers refetch on an unknown `kid` anyway.
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}
