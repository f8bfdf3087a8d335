//! RFC 9728 protected resource metadata, served where every client generation looks for it (MCP
//! *Authorization Server Location*, MCP-AUTH §1.6):
//!
//! - path-inserted (RFC 9728 §3.1): `/.well-known/oauth-protected-resource/<resource path>`, the URL
//!   the 401 challenge names (RFC 9728 §5.1);
//! - the root `/.well-known/oauth-protected-resource`, the fallback of 2025-11-25 clients.
//!
//! The document (RFC 9728 §2): `resource` — identical to the resource URI clients use (§3.3: a
//! client must not use metadata whose `resource` differs) — `authorization_servers`,
//! `scopes_supported`, `bearer_methods_supported: ["header"]` (never query or body) and
//! `resource_name`. Anyone may read it, from any origin.

use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_http::cors::{Any, CorsLayer};

use crate::protected::{ProtectedResource, WELL_KNOWN_PRM};

/// The metadata document of `resource`.
pub fn document(resource: &ProtectedResource) -> Value {
    let mut doc = json!({
        "resource": resource.uri(),
        "authorization_servers": resource.authorization_servers(),
        "bearer_methods_supported": ["header"],
    });
    if !resource.scopes_supported().is_empty() {
        doc["scopes_supported"] = json!(resource.scopes_supported());
    }
    if let Some(name) = resource.name() {
        doc["resource_name"] = json!(name);
    }
    doc
}

/// A router serving `resource`'s metadata at the path-inserted location and at the root. Merge it
/// *outside* the bearer layer: discovery must work without a token.
pub fn metadata_router<S: Clone + Send + Sync + 'static>(
    resource: &ProtectedResource,
) -> Router<S> {
    let body = document(resource);
    let handler = move || {
        let body = body.clone();
        async move { respond(body) }
    };
    let mut router = Router::new().route(WELL_KNOWN_PRM, get(handler.clone()));
    let inserted = resource.metadata_path();
    if inserted != WELL_KNOWN_PRM {
        router = router.route(&inserted, get(handler));
    }
    router.layer(
        CorsLayer::new()
            .allow_origin(Any)
            .allow_methods([Method::GET, Method::OPTIONS])
            .allow_headers([
                header::CONTENT_TYPE,
                header::HeaderName::from_static("mcp-protocol-version"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

fn respond(body: Value) -> Response {
    let mut resp = Json(body).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    fn resource() -> ProtectedResource {
        ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000")
            .unwrap()
            .with_name("Demo")
            .with_scopes(["mcp:tools", "mcp:admin", "offline_access"])
            .unwrap()
    }

    async fn get_json(router: Router, path: &str) -> (StatusCode, Value) {
        let resp = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn both_locations_serve_the_same_document() {
        let expected = json!({
            "resource": "http://127.0.0.1:9000/mcp",
            "authorization_servers": ["http://127.0.0.1:9000"],
            "scopes_supported": ["mcp:tools", "mcp:admin"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Demo",
        });
        for path in [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource",
        ] {
            let (status, doc) = get_json(metadata_router(&resource()), path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(doc, expected, "{path}");
        }
        let (status, _) = get_json(
            metadata_router(&resource()),
            "/.well-known/oauth-protected-resource/other",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}
