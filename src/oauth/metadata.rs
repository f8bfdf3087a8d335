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
    // Document clients may authenticate with private_key_jwt (RFC 7523 §2.2); RFC 8414 §2 then
    // requires the signing algorithms to be listed.
    let mut client_auth = vec!["client_secret_post", "client_secret_basic", "none"];
    let mut introspection_auth = vec!["client_secret_post", "client_secret_basic"];
    if state.cimd.enabled() {
        client_auth.push("private_key_jwt");
        introspection_auth.push("private_key_jwt");
    }
    let assertion_algorithms: Vec<String> = crate::oauth::cimd::private_key_jwt::ALGORITHMS
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let mut doc = serde_json::json!({
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
        "token_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        "introspection_endpoint_auth_methods_supported": introspection_auth,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": state.cimd.enabled(),
        // No ID token is issued (this is not an OpenID Provider), so no ID-token algorithms are
        // advertised; the document is served at the OIDC discovery path only because MCP clients
        // look there too.
        "resource_indicators_supported": true,
    });
    if state.cimd.enabled() {
        for key in [
            "token_endpoint_auth_signing_alg_values_supported",
            "revocation_endpoint_auth_signing_alg_values_supported",
            "introspection_endpoint_auth_signing_alg_values_supported",
        ] {
            doc[key] = serde_json::json!(assertion_algorithms);
        }
    }
    doc
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn metadata_get(State(state): State<AppState>) -> Response {
    Json(document(&state)).into_response()
}
