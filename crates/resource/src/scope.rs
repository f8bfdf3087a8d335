//! Scope checks after the token is accepted (RFC 6750 §3.1 `insufficient_scope`, MCP *Scope
//! Challenge Handling*): the scopes every request needs, the scopes a particular tool needs, and
//! the helper a handler calls to demand a scope itself.
//!
//! A step-up 403 asks for the scopes the token already has on this resource plus the missing ones
//! (MCP: "existing relevant + newly required"), so a client that re-authorizes with that list does
//! not lose what it had.

use std::sync::Arc;

use axum::http::Extensions;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::challenge::Rejection;
use crate::protected::ProtectedResource;
use crate::verifier::Identity;

/// The 403 `insufficient_scope` for `identity`, which lacks `missing`.
pub fn step_up(
    resource: &ProtectedResource,
    identity: &Identity,
    missing: &[&str],
    what: &str,
) -> Rejection {
    let mut scope: Vec<String> = identity
        .scopes
        .iter()
        .filter(|s| {
            resource.scopes_supported().is_empty() || resource.scopes_supported().contains(s)
        })
        .cloned()
        .collect();
    for s in resource
        .required_scopes()
        .iter()
        .map(String::as_str)
        .chain(missing.iter().copied())
    {
        if !scope.iter().any(|x| x == s) {
            scope.push(s.to_string());
        }
    }
    let quoted: Vec<String> = missing.iter().map(|s| format!("'{s}'")).collect();
    Rejection::InsufficientScope {
        scope,
        description: format!("{what} requires scope {}", quoted.join(" ")),
    }
}

/// The resource a request was checked against; the layer puts it in the request extensions next
/// to the [`Identity`], so handlers can build a complete challenge.
#[derive(Debug, Clone)]
pub struct ResourceContext(pub Arc<ProtectedResource>);

/// A handler's demand for scopes the token lacks. As an axum response it is the step-up 403; in
/// an rmcp tool it converts into a JSON-RPC error carrying the same challenge.
#[derive(Debug, Clone)]
pub struct InsufficientScope {
    resource: Arc<ProtectedResource>,
    rejection: Rejection,
}

impl InsufficientScope {
    /// The `WWW-Authenticate` value of the 403.
    pub fn challenge(&self) -> Option<String> {
        self.rejection.challenge(&self.resource)
    }
}

impl IntoResponse for InsufficientScope {
    fn into_response(self) -> Response {
        self.rejection.into_response(&self.resource)
    }
}

#[cfg(feature = "rmcp")]
impl From<InsufficientScope> for rmcp::ErrorData {
    fn from(e: InsufficientScope) -> Self {
        let challenge = e.challenge().unwrap_or_default();
        let (scope, description) = match &e.rejection {
            Rejection::InsufficientScope { scope, description } => {
                (scope.join(" "), description.clone())
            }
            other => (String::new(), format!("{other:?}")),
        };
        rmcp::ErrorData::invalid_request(
            description,
            Some(serde_json::json!({
                "error": "insufficient_scope",
                "scope": scope,
                "resource_metadata": e.resource.metadata_url(),
                "www_authenticate": challenge,
            })),
        )
    }
}

/// Why a handler could not get an identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the request did not pass through the bearer-token layer")]
    NotAuthenticated,
    #[error("insufficient scope")]
    InsufficientScope(InsufficientScope),
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        match self {
            Self::InsufficientScope(e) => e.into_response(),
            Self::NotAuthenticated => {
                tracing::error!(
                    "a handler expected a verified identity: is the layer in front of it?"
                );
                axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

#[cfg(feature = "rmcp")]
impl From<IdentityError> for rmcp::ErrorData {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::InsufficientScope(e) => e.into(),
            IdentityError::NotAuthenticated => {
                rmcp::ErrorData::internal_error("no verified identity on this request", None)
            }
        }
    }
}

/// The verified identity of a request (from its extensions), if the layer put one there.
pub fn identity(extensions: &Extensions) -> Result<&Identity, IdentityError> {
    extensions
        .get::<Identity>()
        .ok_or(IdentityError::NotAuthenticated)
}

/// The verified identity, provided it holds every scope in `needed`; otherwise the step-up error.
///
/// In an axum handler, `require_scopes(req.extensions(), &["files:write"])?` answers 403 with the
/// challenge. In an rmcp tool, read the extensions from `Extension<http::request::Parts>`; the
/// error becomes a JSON-RPC error (the HTTP status of an MCP call is already decided by then, which
/// is why tool requirements are best declared with `ProtectedResource::with_tool_scopes` so the
/// layer answers 403 first).
pub fn require_scopes<'a>(
    extensions: &'a Extensions,
    needed: &[&str],
) -> Result<&'a Identity, IdentityError> {
    let identity = identity(extensions)?;
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|s| !identity.has_scope(s))
        .collect();
    if missing.is_empty() {
        return Ok(identity);
    }
    let Some(ResourceContext(resource)) = extensions.get::<ResourceContext>() else {
        return Err(IdentityError::NotAuthenticated);
    };
    Err(IdentityError::InsufficientScope(InsufficientScope {
        rejection: step_up(resource, identity, &missing, "this operation"),
        resource: resource.clone(),
    }))
}

/// The names of the tools a JSON-RPC body calls (`tools/call`), batch or single.
pub fn called_tools(body: &Value) -> Vec<&str> {
    fn one(m: &Value) -> Option<&str> {
        if m.get("method")?.as_str()? != "tools/call" {
            return None;
        }
        m.get("params")?.get("name")?.as_str()
    }
    match body {
        Value::Array(batch) => batch.iter().filter_map(one).collect(),
        single => one(single).into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;

    fn resource() -> ProtectedResource {
        ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000")
            .unwrap()
            .with_scopes(["mcp:tools", "mcp:admin", "mcp:read"])
            .unwrap()
    }

    #[cfg(feature = "rmcp")]
    #[test]
    fn a_handler_without_an_identity_is_an_internal_error_for_rmcp() {
        let e: rmcp::ErrorData = IdentityError::NotAuthenticated.into();
        assert_eq!(e.code, rmcp::model::ErrorCode::INTERNAL_ERROR);
        assert!(e.message.contains("no verified identity"), "{}", e.message);
    }

    fn identity_with(scopes: &[&str]) -> Identity {
        Identity {
            subject: "alice".into(),
            client_id: Some("c".into()),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            issuer: "http://127.0.0.1:9000".into(),
            audiences: vec!["http://127.0.0.1:9000/mcp".into()],
            expires_at: None,
            token_id: None,
            claims: Map::new(),
        }
    }

    #[test]
    fn step_up_keeps_granted_scopes_and_adds_missing_ones() {
        let r = step_up(
            &resource(),
            &identity_with(&["mcp:read", "mcp:tools", "other:x"]),
            &["mcp:admin"],
            "admin_stats",
        );
        assert_eq!(
            r,
            Rejection::InsufficientScope {
                scope: vec!["mcp:read".into(), "mcp:tools".into(), "mcp:admin".into()],
                description: "admin_stats requires scope 'mcp:admin'".into(),
            }
        );
    }

    #[test]
    fn handlers_demand_scopes() {
        let mut ext = Extensions::new();
        assert!(matches!(
            require_scopes(&ext, &[]),
            Err(IdentityError::NotAuthenticated)
        ));
        ext.insert(identity_with(&["mcp:tools"]));
        ext.insert(ResourceContext(Arc::new(resource())));
        assert_eq!(
            require_scopes(&ext, &["mcp:tools"]).unwrap().subject,
            "alice"
        );
        let Err(IdentityError::InsufficientScope(e)) = require_scopes(&ext, &["mcp:admin"]) else {
            panic!("step-up expected")
        };
        assert!(
            e.challenge()
                .unwrap()
                .contains("scope=\"mcp:tools mcp:admin\"")
        );
        #[cfg(feature = "rmcp")]
        {
            let rpc: rmcp::ErrorData = e.clone().into();
            assert_eq!(rpc.data.unwrap()["error"], "insufficient_scope");
        }
        assert_eq!(
            e.into_response().status(),
            axum::http::StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn called_tools_are_found_in_single_and_batch_bodies() {
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "admin_stats"}});
        assert_eq!(called_tools(&call), ["admin_stats"]);
        let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
        assert!(called_tools(&list).is_empty());
        assert_eq!(called_tools(&json!([list, call])), ["admin_stats"]);
        assert!(called_tools(&json!("x")).is_empty());
    }
}
