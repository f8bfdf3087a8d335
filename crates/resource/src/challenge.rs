//! What a refused request gets back: the status, the `WWW-Authenticate` challenge (RFC 6750 §3,
//! RFC 9728 §5.1) and a JSON body saying the same for humans and simple clients.
//!
//! | case | status | challenge |
//! |---|---|---|
//! | no credentials | 401 | `Bearer resource_metadata="…", scope="…"`: no `error` (RFC 6750 §3.1) |
//! | malformed `Authorization` | 400 | `… error="invalid_request"` |
//! | bad / expired / foreign token | 401 | `… error="invalid_token"` |
//! | token lacks a scope | 403 | `… scope="granted + needed", error="insufficient_scope"` |
//! | issuer unreachable | 503 | none: the token may be fine |
//! | foreign `Origin`, unknown `Host` | 403 | none: no token can fix it |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::protected::ProtectedResource;

/// Why the layer refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// No `Authorization` header at all.
    MissingToken,
    /// An `Authorization` header that is not one `Bearer <token68>`, or a token in the query.
    MalformedRequest(&'static str),
    /// The token was presented and refused.
    InvalidToken(&'static str),
    /// The token is valid but lacks scopes; `scope` lists what to ask for.
    InsufficientScope {
        scope: Vec<String>,
        description: String,
    },
    /// The authorization server could not be asked.
    Unavailable,
    /// A browser request from an origin this resource does not serve (DNS-rebinding and CSRF
    /// defence, MCP transports: "MUST respond with HTTP 403").
    ForbiddenOrigin,
    /// A `Host` that is not on the allow-list (DNS rebinding).
    ForbiddenHost,
    /// A body too large to read for the per-tool scope check.
    BodyTooLarge,
}

impl Rejection {
    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::MalformedRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope { .. } | Self::ForbiddenOrigin | Self::ForbiddenHost => {
                StatusCode::FORBIDDEN
            }
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The `WWW-Authenticate` value, for the rejections a token can fix.
    pub fn challenge(&self, resource: &ProtectedResource) -> Option<String> {
        let metadata = resource.metadata_url();
        let required = resource.required_scopes().join(" ");
        let mut params: Vec<(&str, &str)> = vec![("resource_metadata", &metadata)];
        match self {
            Self::MissingToken => {
                if !required.is_empty() {
                    params.push(("scope", &required));
                }
            }
            Self::MalformedRequest(description) => {
                params.push(("error", "invalid_request"));
                params.push(("error_description", description));
            }
            Self::InvalidToken(description) => {
                if !required.is_empty() {
                    params.push(("scope", &required));
                }
                params.push(("error", "invalid_token"));
                params.push(("error_description", description));
            }
            Self::InsufficientScope { scope, description } => {
                let scope = scope.join(" ");
                return Some(bearer(&[
                    ("resource_metadata", &metadata),
                    ("scope", &scope),
                    ("error", "insufficient_scope"),
                    ("error_description", description),
                ]));
            }
            Self::Unavailable
            | Self::ForbiddenOrigin
            | Self::ForbiddenHost
            | Self::BodyTooLarge => {
                return None;
            }
        }
        Some(bearer(&params))
    }

    /// `(error, error_description)` of the JSON body.
    fn body(&self) -> (&'static str, String) {
        match self {
            Self::MissingToken => (
                "unauthorized",
                "this resource requires a bearer access token".into(),
            ),
            Self::MalformedRequest(d) => ("invalid_request", (*d).into()),
            Self::InvalidToken(d) => ("invalid_token", (*d).into()),
            Self::InsufficientScope { description, .. } => {
                ("insufficient_scope", description.clone())
            }
            Self::Unavailable => (
                "temporarily_unavailable",
                "the token could not be checked right now; retry later".into(),
            ),
            Self::ForbiddenOrigin => (
                "forbidden",
                "requests from this Origin are not accepted".into(),
            ),
            Self::ForbiddenHost => ("forbidden", "this Host is not served here".into()),
            Self::BodyTooLarge => ("invalid_request", "the request body is too large".into()),
        }
    }

    /// The full response.
    pub fn into_response(self, resource: &ProtectedResource) -> Response {
        let (error, description) = self.body();
        let mut body = json!({ "error": error, "error_description": description });
        if let Self::InsufficientScope { scope, .. } = &self {
            body["scope"] = scope.join(" ").into();
        }
        if matches!(
            self,
            Self::MissingToken | Self::InvalidToken(_) | Self::InsufficientScope { .. }
        ) {
            body["resource_metadata"] = resource.metadata_url().into();
        }
        let mut resp = (self.status(), Json(body)).into_response();
        if let Some(challenge) = self.challenge(resource)
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if self == Self::Unavailable {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }
}

/// `Bearer k="v", …` with every value reduced to the characters RFC 6750 §3 allows inside quotes
/// (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash, nothing outside printable ASCII.
pub fn bearer(params: &[(&str, &str)]) -> String {
    let rendered: Vec<String> = params
        .iter()
        .map(|(name, value)| {
            let clean: String = value
                .chars()
                .map(|c| match c {
                    ' ' | '!' | '#'..='[' | ']'..='~' => c,
                    _ => ' ',
                })
                .collect();
            format!("{name}=\"{clean}\"")
        })
        .collect();
    format!("Bearer {}", rendered.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource() -> ProtectedResource {
        ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000")
            .unwrap()
            .with_scopes(["mcp:tools", "mcp:admin"])
            .unwrap()
    }

    const PRM: &str = "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp";

    #[test]
    fn no_token_gets_metadata_and_scope_without_error() {
        let r = resource();
        assert_eq!(
            Rejection::MissingToken.challenge(&r).unwrap(),
            format!("Bearer resource_metadata=\"{PRM}\", scope=\"mcp:tools\"")
        );
        let no_scopes =
            ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000").unwrap();
        assert_eq!(
            Rejection::MissingToken.challenge(&no_scopes).unwrap(),
            format!("Bearer resource_metadata=\"{PRM}\"")
        );
    }

    #[test]
    fn refused_tokens_get_invalid_token() {
        assert_eq!(
            Rejection::InvalidToken("the token has expired")
                .challenge(&resource())
                .unwrap(),
            format!(
                "Bearer resource_metadata=\"{PRM}\", scope=\"mcp:tools\", error=\"invalid_token\", \
                 error_description=\"the token has expired\""
            )
        );
        assert_eq!(
            Rejection::MalformedRequest("two Authorization headers")
                .challenge(&resource())
                .unwrap(),
            format!(
                "Bearer resource_metadata=\"{PRM}\", error=\"invalid_request\", \
                 error_description=\"two Authorization headers\""
            )
        );
    }

    #[test]
    fn step_up_names_every_scope_to_ask_for() {
        let rejection = Rejection::InsufficientScope {
            scope: vec!["mcp:tools".into(), "mcp:admin".into()],
            description: "admin_stats needs \"mcp:admin\"\n".into(),
        };
        assert_eq!(
            rejection.challenge(&resource()).unwrap(),
            format!(
                "Bearer resource_metadata=\"{PRM}\", scope=\"mcp:tools mcp:admin\", \
                 error=\"insufficient_scope\", error_description=\"admin_stats needs  mcp:admin  \""
            )
        );
        assert_eq!(rejection.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn statuses_and_no_challenge_where_no_token_helps() {
        let r = resource();
        assert_eq!(Rejection::MissingToken.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            Rejection::MalformedRequest("x").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Rejection::Unavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        for r2 in [
            Rejection::ForbiddenOrigin,
            Rejection::ForbiddenHost,
            Rejection::Unavailable,
        ] {
            assert!(r2.challenge(&r).is_none());
        }
        let resp = Rejection::InvalidToken("x").into_response(&r);
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().get(header::WWW_AUTHENTICATE).is_some());
        assert!(resp.headers().get(header::RETRY_AFTER).is_none());
        // Only an unreachable authorization server is worth retrying, after a pause.
        let resp = Rejection::Unavailable.into_response(&r);
        assert_eq!(resp.headers().get(header::RETRY_AFTER).unwrap(), "5");
        assert_eq!(
            resp.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
    }
}
