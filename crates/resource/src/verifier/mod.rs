//! Token verification: the [`TokenVerifier`] trait, the verified [`Identity`], and two verifiers.
//!
//! - [`JwksVerifier`]: RFC 9068 JWT access tokens checked offline with the issuer's JWK Set (RFC
//!   7517), fetched, cached and refetched on an unknown `kid` (rate-limited). Revocation is seen
//!   only when the token expires, so keep access tokens short-lived.
//! - [`IntrospectionVerifier`]: asks the authorization server (RFC 7662 §2), authenticated as a
//!   confidential client, over https or loopback only; revocation is seen at once unless a cache
//!   is turned on.
//!
//! A third, `mcp_oauth::resource::CoHostedVerifier`, lives with the authorization server: for a
//! resource served by the server itself, it checks the JWT with the server's own keys, then asks the
//! provider for the token record, so revocation is immediate.
//!
//! Every verifier checks the issuer and that the token is an access token. The layer then checks
//! the audience (RFC 8707 §2, MCP *Token Audience Binding*) and the scopes itself, so no verifier
//! can forget them.

mod introspection;
mod jwks;
mod remote;
pub mod verdict_cache;

pub use introspection::IntrospectionVerifier;
pub use jwks::{DEFAULT_VERIFIED_CACHE_MAX_ENTRIES, JwksVerifier};
pub use remote::{AuthorizationServerMetadata, RemoteError, discover, outbound_client};

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::protected::ProtectedResource;
use crate::uri::canonical_uri;

/// Who a verified token speaks for: what tool handlers read from the request extensions.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `sub`: the user (or, for `client_credentials`, the client).
    pub subject: String,
    /// `client_id` (RFC 9068 §2.2): the client the token was issued to.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// `iss`.
    pub issuer: String,
    /// `aud`: the resources the token was issued for.
    pub audiences: Vec<String>,
    /// `exp`, Unix seconds, when known.
    pub expires_at: Option<i64>,
    /// `jti`, when known.
    pub token_id: Option<String>,
    /// Every claim as the verifier saw it (JWT claims or the introspection response).
    pub claims: Map<String, Value>,
}

impl Identity {
    /// Builds an identity from a JWT claim set or an RFC 7662 response; `None` when `sub` and
    /// `client_id` are both missing (nobody to name). `scope` is the RFC 8693 §4.2 space-separated
    /// string; an `scp` array is accepted too.
    pub fn from_claims(claims: Map<String, Value>, fallback_issuer: &str) -> Option<Self> {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let client_id = text("client_id").or_else(|| text("azp"));
        let subject = text("sub")
            .or_else(|| text("username"))
            .or_else(|| client_id.clone())?;
        let scopes = match (claims.get("scope"), claims.get("scp")) {
            (Some(Value::String(s)), _) => split_scopes(s),
            (_, Some(Value::Array(a))) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            (_, Some(Value::String(s))) => split_scopes(s),
            _ => Vec::new(),
        };
        let audiences = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        Some(Self {
            subject,
            client_id,
            scopes,
            issuer: text("iss").unwrap_or_else(|| fallback_issuer.to_string()),
            audiences,
            expires_at: claims.get("exp").and_then(Value::as_i64),
            token_id: text("jti"),
            claims,
        })
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// The scopes of `needed` this identity lacks.
    pub fn missing_scopes<'a>(&self, needed: &'a [String]) -> Vec<&'a str> {
        needed
            .iter()
            .filter(|s| !self.has_scope(s))
            .map(String::as_str)
            .collect()
    }

    /// True when the token was issued for `resource` (RFC 8707 §2; compared in canonical form).
    pub fn is_for(&self, resource: &ProtectedResource) -> bool {
        self.audiences
            .iter()
            .any(|aud| canonical_uri(aud).is_ok_and(|canonical| canonical == resource.uri()))
    }

    /// True when the token comes from an issuer `resource` trusts.
    pub fn is_from_trusted_issuer(&self, resource: &ProtectedResource) -> bool {
        resource
            .authorization_servers()
            .iter()
            .any(|issuer| issuer == self.issuer.trim_end_matches('/'))
    }
}

fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why a token was not accepted. Messages never contain the token.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The token is not valid here: 401 `invalid_token`. The reason goes into `error_description`.
    #[error("invalid token: {0}")]
    Invalid(&'static str),
    /// The authorization server (JWKS or introspection endpoint, or the provider) could not be
    /// asked: 503, so a client does not throw away a token that may be fine.
    #[error("token verification unavailable: {0}")]
    Unavailable(String),
}

/// Checks a bearer token presented to `resource`.
///
/// Implementations MUST check the signature or ask the issuer, the expiry, that the token is an
/// access token (not a refresh token or an ID token) and that it comes from one of
/// `resource.authorization_servers()`. The audience and scopes are checked by the layer on the
/// returned [`Identity`]; a verifier may check them earlier.
#[async_trait]
pub trait TokenVerifier: Send + Sync + 'static {
    async fn verify(
        &self,
        token: &str,
        resource: &ProtectedResource,
    ) -> Result<Identity, VerifyError>;
}

#[async_trait]
impl<T: TokenVerifier + ?Sized> TokenVerifier for std::sync::Arc<T> {
    async fn verify(
        &self,
        token: &str,
        resource: &ProtectedResource,
    ) -> Result<Identity, VerifyError> {
        (**self).verify(token, resource).await
    }
}

/// Seconds since the Unix epoch (`exp` comparisons of introspection responses and cache entries).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_come_from_scope_or_an_scp_array_or_string() {
        let id = |v: serde_json::Value| {
            Identity::from_claims(v.as_object().cloned().unwrap(), "http://as").unwrap()
        };
        let scopes = |v| id(v).scopes;
        assert_eq!(
            scopes(serde_json::json!({"sub": "a", "scope": "x y"})),
            ["x", "y"]
        );
        assert_eq!(
            scopes(serde_json::json!({"sub": "a", "scp": ["x", "y"]})),
            ["x", "y"]
        );
        assert_eq!(
            scopes(serde_json::json!({"sub": "a", "scp": "x y"})),
            ["x", "y"]
        );
        assert!(scopes(serde_json::json!({"sub": "a", "scp": 3})).is_empty());
    }
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn identity_from_jwt_and_introspection_shapes() {
        let id = Identity::from_claims(
            map(
                json!({"sub": "alice", "client_id": "c1", "scope": "a  b", "aud": "http://x/mcp",
                        "iss": "http://as", "exp": 10, "jti": "j"}),
            ),
            "http://fallback",
        )
        .unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.client_id.as_deref(), Some("c1"));
        assert_eq!(id.scopes, ["a", "b"]);
        assert_eq!(id.audiences, ["http://x/mcp"]);
        assert_eq!(id.issuer, "http://as");
        assert_eq!(id.expires_at, Some(10));

        let id = Identity::from_claims(
            map(json!({"client_id": "robot", "scp": ["x"], "aud": ["a", "b"]})),
            "http://fallback",
        )
        .unwrap();
        assert_eq!(id.subject, "robot");
        assert_eq!(id.scopes, ["x"]);
        assert_eq!(id.audiences, ["a", "b"]);
        assert_eq!(id.issuer, "http://fallback");
        assert!(Identity::from_claims(map(json!({"scope": "x"})), "i").is_none());
    }

    #[test]
    fn audience_and_issuer_checks() {
        let r =
            ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000").unwrap();
        let mut id = Identity::from_claims(
            map(json!({"sub": "a", "aud": "HTTP://127.0.0.1:9000/mcp", "iss": "http://127.0.0.1:9000"})),
            "",
        )
        .unwrap();
        assert!(id.is_for(&r));
        assert!(id.is_from_trusted_issuer(&r));
        id.audiences = vec!["http://127.0.0.1:9000/other".into()];
        assert!(!id.is_for(&r));
        id.issuer = "http://127.0.0.1:9001".into();
        assert!(!id.is_from_trusted_issuer(&r));
    }
}
