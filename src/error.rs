//! Protocol errors: one table from [`ErrorCode`] to its RFC wire string and HTTP status, and the two
//! ways an error leaves the server: as JSON ([`OAuthError`], RFC 6749 §5.2, RFC 7591 §3.2.2,
//! RFC 7009 §2.2.1, RFC 8707 §2) or, at `/authorize`, as a redirect or an error page
//! ([`AuthorizeError`], RFC 6749 §4.1.2.1, RFC 9207).
//!
//! Internal causes are logged (without secrets) and never sent to the client.

use std::borrow::Cow;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::ProviderError;

/// Every error code the server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    InvalidTarget,
    AccessDenied,
    InvalidRedirectUri,
    InvalidClientMetadata,
    /// RFC 6750 §3.1: a bad initial access token at `/register` (RFC 7591 §3).
    InvalidToken,
    UnsupportedTokenType,
    NotFound,
    ServerError,
    TemporarilyUnavailable,
    SlowDown,
}

impl ErrorCode {
    /// The one table: code → (wire string, HTTP status when answered as JSON). An exhaustive
    /// `match`: a new code does not compile until it has its row.
    fn row(self) -> (&'static str, StatusCode) {
        use ErrorCode::*;
        match self {
            InvalidRequest => ("invalid_request", StatusCode::BAD_REQUEST),
            // RFC 6749 §5.2: failed client authentication is 401.
            InvalidClient => ("invalid_client", StatusCode::UNAUTHORIZED),
            InvalidGrant => ("invalid_grant", StatusCode::BAD_REQUEST),
            UnauthorizedClient => ("unauthorized_client", StatusCode::BAD_REQUEST),
            UnsupportedGrantType => ("unsupported_grant_type", StatusCode::BAD_REQUEST),
            UnsupportedResponseType => ("unsupported_response_type", StatusCode::BAD_REQUEST),
            InvalidScope => ("invalid_scope", StatusCode::BAD_REQUEST),
            // RFC 8707 §2.
            InvalidTarget => ("invalid_target", StatusCode::BAD_REQUEST),
            AccessDenied => ("access_denied", StatusCode::FORBIDDEN),
            // RFC 7591 §3.2.2.
            InvalidRedirectUri => ("invalid_redirect_uri", StatusCode::BAD_REQUEST),
            InvalidClientMetadata => ("invalid_client_metadata", StatusCode::BAD_REQUEST),
            // RFC 6750 §3.1.
            InvalidToken => ("invalid_token", StatusCode::UNAUTHORIZED),
            // RFC 7009 §2.2.1.
            UnsupportedTokenType => ("unsupported_token_type", StatusCode::BAD_REQUEST),
            NotFound => ("not_found", StatusCode::NOT_FOUND),
            ServerError => ("server_error", StatusCode::INTERNAL_SERVER_ERROR),
            TemporarilyUnavailable => ("temporarily_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            // Per-address request limits: the registered token-endpoint code for "too fast" (RFC
            // 8628 §3.5) with the HTTP status every client and proxy understands (RFC 6585 §4) and
            // Retry-After.
            SlowDown => ("slow_down", StatusCode::TOO_MANY_REQUESTS),
        }
    }

    /// The RFC wire string.
    pub fn as_str(self) -> &'static str {
        self.row().0
    }

    /// The HTTP status of a JSON error response with this code.
    pub fn status(self) -> StatusCode {
        self.row().1
    }
}

/// A JSON protocol error: `{"error": …, "error_description": …}` with `Cache-Control: no-store`.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: Cow<'static, str>,
    /// Sent as `WWW-Authenticate` (RFC 6749 §5.2 requires it for 401 `invalid_client`).
    pub www_authenticate: Option<&'static str>,
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E` (printable ASCII without `"`
/// and `\`). Descriptions are written for people and may quote input (`{:?}` puts `"` there, a
/// client name may hold anything), so every other character is replaced: `"` by `'`, `\` by `/`,
/// anything else by `?`.
pub fn sanitize_description(text: Cow<'static, str>) -> Cow<'static, str> {
    let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E');
    if text.chars().all(allowed) {
        return text;
    }
    Cow::Owned(
        text.chars()
            .map(|c| match c {
                c if allowed(c) => c,
                '"' => '\'',
                '\\' => '/',
                _ => '?',
            })
            .collect(),
    )
}

impl OAuthError {
    /// An error with `description`, made safe for `error_description` ([`sanitize_description`]).
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        let www_authenticate = match code {
            ErrorCode::InvalidClient => Some(r#"Basic realm="mcp-oauth", charset="UTF-8""#),
            ErrorCode::InvalidToken => Some(r#"Bearer error="invalid_token""#),
            _ => None,
        };
        Self {
            code,
            description: sanitize_description(description.into()),
            www_authenticate,
        }
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidClient, description)
    }
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }
    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }
    pub fn invalid_target(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }
    pub fn server_error() -> Self {
        Self::new(
            ErrorCode::ServerError,
            "the server failed to process the request",
        )
    }
}

impl From<ProviderError> for OAuthError {
    fn from(err: ProviderError) -> Self {
        match &err {
            ProviderError::Unavailable { .. } => {
                tracing::warn!(error = %err, cause = ?std::error::Error::source(&err), "backend unavailable");
                Self::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the service is temporarily unavailable, retry later",
                )
            }
            ProviderError::Conflict(_) => {
                Self::invalid_request("the request conflicts with existing data")
            }
            ProviderError::Unsupported(msg) => Self::invalid_request(format!("unsupported: {msg}")),
            // A plugin found its settings wrong only at request time: the operator must fix it.
            ProviderError::InvalidSettings(_) => {
                tracing::error!(error = %err, "backend misconfigured");
                Self::server_error()
            }
            ProviderError::Backend { .. } => {
                tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "backend failure");
                Self::server_error()
            }
        }
    }
}

/// Headers every token and error response carries (RFC 6749 §5.1).
pub fn no_store_headers(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": self.code.as_str(),
            "error_description": self.description,
        });
        let mut resp = (self.code.status(), axum::Json(body)).into_response();
        no_store_headers(resp.headers_mut());
        if let Some(challenge) = self.www_authenticate {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        resp
    }
}

/// An `/authorize` failure. Before the client and redirect URI are trusted it must be shown to the
/// user ([`AuthorizeError::Page`]); after, it goes back to the client ([`AuthorizeError::Redirect`]).
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client, bad redirect URI, expired login: an HTML page, never a redirect.
    Page {
        status: StatusCode,
        title: &'static str,
        message: Cow<'static, str>,
        /// The error code the page's developer details show; `None`: the one the status stands
        /// for ([`crate::oauth::pages::ErrorInfo::for_status`]).
        code: Option<ErrorCode>,
        /// The client the request named, shown in the developer details.
        client_id: Option<String>,
    },
    /// Sent to the client's redirect URI with `error`, `error_description`, `state` and `iss`.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
    /// The same error for a client no user has approved and no administrator created: shown on a
    /// page that names the redirect host and links to it, never redirected automatically (RFC 9700
    /// §4.11.2, OAuth 2.1 §7.12.2: not an open redirector).
    Held {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
        /// The client, shown in the page's developer details.
        client_id: Option<String>,
    },
}

impl AuthorizeError {
    pub fn page(
        status: StatusCode,
        title: &'static str,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Page {
            status,
            title,
            message: message.into(),
            code: None,
            client_id: None,
        }
    }

    /// Names the error code a page shows to developers.
    pub fn with_code(mut self, error_code: ErrorCode) -> Self {
        if let Self::Page { code, .. } = &mut self {
            *code = Some(error_code);
        }
        self
    }

    /// Names the client on a page's developer details (a redirect carries no client id).
    pub fn for_client(mut self, id: &str) -> Self {
        if let Self::Page { client_id, .. } | Self::Held { client_id, .. } = &mut self {
            *client_id = Some(id.to_string());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[ErrorCode] = &[
        ErrorCode::InvalidRequest,
        ErrorCode::InvalidClient,
        ErrorCode::InvalidGrant,
        ErrorCode::UnauthorizedClient,
        ErrorCode::UnsupportedGrantType,
        ErrorCode::UnsupportedResponseType,
        ErrorCode::InvalidScope,
        ErrorCode::InvalidTarget,
        ErrorCode::AccessDenied,
        ErrorCode::InvalidRedirectUri,
        ErrorCode::InvalidClientMetadata,
        ErrorCode::InvalidToken,
        ErrorCode::UnsupportedTokenType,
        ErrorCode::NotFound,
        ErrorCode::ServerError,
        ErrorCode::TemporarilyUnavailable,
        ErrorCode::SlowDown,
    ];

    #[test]
    fn every_code_has_its_own_wire_string() {
        let mut seen: Vec<&str> = ALL.iter().map(|c| c.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), ALL.len(), "two codes share a wire string");
        assert!(
            seen.iter()
                .all(|s| s.bytes().all(|b| b == b'_' || b.is_ascii_lowercase()))
        );
    }

    #[test]
    fn descriptions_hold_only_the_characters_rfc6749_allows() {
        let e = OAuthError::invalid_request(format!("bad value {:?} in \\ é\u{202e}\n", "x"));
        assert_eq!(e.description, "bad value 'x' in / ???");
        let plain = OAuthError::invalid_request("fine: [a-z] {ok} ~!");
        assert!(
            matches!(plain.description, Cow::Borrowed(_)),
            "no copy when nothing changes"
        );
    }

    #[test]
    fn statuses_follow_the_rfcs() {
        assert_eq!(ErrorCode::InvalidClient.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(ErrorCode::InvalidGrant.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ErrorCode::TemporarilyUnavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            ErrorCode::ServerError.status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(ErrorCode::InvalidTarget.as_str(), "invalid_target");
    }

    #[test]
    fn provider_errors_map_to_503_and_500() {
        let e: OAuthError = ProviderError::unavailable_msg("db down").into();
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
        let e: OAuthError = ProviderError::backend_msg("corrupt").into();
        assert_eq!(e.code, ErrorCode::ServerError);
        assert!(
            !e.description.contains("corrupt"),
            "internal causes are never sent"
        );
    }
}
