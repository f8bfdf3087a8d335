//! Authorization server metadata: RFC 8414 §2 / §3 at `/.well-known/oauth-authorization-server`, and
//! the same document as OpenID Connect Discovery 1.0 §3 at `/.well-known/openid-configuration` (MCP
//! 2025-11-25: clients try both). Advertises PKCE S256 (MCP *Authorization Code Protection*) and
//! RFC 9207 `iss` in authorization responses.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::GrantType;

use crate::state::AppState;

/// The metadata document.
pub fn document(state: &AppState) -> serde_json::Value {
    serde_json::json!({
        "issuer": state.issuer,
        "authorization_endpoint": state.endpoint("/authorize"),
        "token_endpoint": state.endpoint("/token"),
        "registration_endpoint": state.endpoint("/register"),
        "revocation_endpoint": state.endpoint("/revoke"),
        "introspection_endpoint": state.endpoint("/introspect"),
        "jwks_uri": state.endpoint("/jwks.json"),
        "scopes_supported": state.resources.all_scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": GrantType::ALL.map(GrantType::as_str),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": state.cimd.enabled(),
        // OpenID Connect Discovery requires these three; access tokens are JWTs, subjects are public.
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA", "ES256"],
        "resource_indicators_supported": true,
    })
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn metadata_get(State(state): State<AppState>) -> Response {
    Json(document(&state)).into_response()
}
