//! [`CoHostedVerifier`]: for a resource served by the authorization server itself (the demo MCP
//! server at `/mcp`). The JWT is checked with the server's own keys ([`verify_own_fresh`]: signature,
//! `typ`, `iss`, `exp`, `nbf`), then the provider is asked for the token's record (by `jti`), so a
//! token revoked through RFC 7009 — or swept away with its refresh-token family — is refused on the
//! very next request, which an offline JWT check cannot do.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::oauth::tokens::{is_expired_own, verify_own_fresh};
use crate::resource::{Identity, ProtectedResource, TokenVerifier, VerifyError};
use crate::state::{AppState, now};

/// Verifies tokens against the authorization server running in the same process.
#[derive(Clone)]
pub struct CoHostedVerifier {
    state: AppState,
}

impl CoHostedVerifier {
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

#[async_trait]
impl TokenVerifier for CoHostedVerifier {
    async fn verify(
        &self,
        token: &str,
        _resource: &ProtectedResource,
    ) -> Result<Identity, VerifyError> {
        let Some(claims) = verify_own_fresh(&self.state, token).await else {
            // RFC 6750 §3.1: `invalid_token` covers "expired"; say which, so the client refreshes.
            if is_expired_own(&self.state, token) {
                return Err(VerifyError::Invalid("the token has expired"));
            }
            return Err(VerifyError::Invalid(
                "the token is not a valid access token of this server",
            ));
        };
        let record = self
            .state
            .provider
            .tokens()
            .get_access_token(&claims.jti)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "looking up an access token failed");
                VerifyError::Unavailable("the token store could not be asked".into())
            })?
            .ok_or(VerifyError::Invalid("the token is not known"))?;
        if record.revoked {
            return Err(VerifyError::Invalid("the token has been revoked"));
        }
        if record.expires_at <= now() {
            return Err(VerifyError::Invalid("the token has expired"));
        }
        let claims = match serde_json::to_value(&claims) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let mut identity = Identity::from_claims(claims, &self.state.issuer)
            .ok_or(VerifyError::Invalid("the token names no subject"))?;
        // The stored record is the authority on what was granted.
        identity.scopes = record.scopes;
        Ok(identity)
    }
}
