//! The authorization request (OAuth 2.1 §4.1.1 with RFC 7636 and RFC 8707 `resource`) and the
//! checks on its response: `state` compared in constant time (MCP: discard mismatches), `iss`
//! compared exactly when the server says it sends it (RFC 9207 §2.4), `error` reported
//! (RFC 6749 §4.1.2.1).

use subtle::ConstantTimeEq;
use url::Url;

use super::pkce::Pkce;
use crate::callback::CallbackResult;
use crate::discovery::AuthServerMetadata;
use crate::error::{Error, Result};
use crate::secret::{Secret, random_urlsafe};
use crate::urls::UrlPolicy;

/// One authorization attempt: what must be remembered until the callback arrives.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: Url,
    pub state: Secret,
    pub pkce: Pkce,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub issuer: String,
    pub expects_iss: bool,
}

impl AuthorizationRequest {
    /// Builds the URL and checks it with `policy` before anything opens it.
    pub fn new(
        as_meta: &AuthServerMetadata,
        client_id: &str,
        redirect_uri: &str,
        resource: &str,
        scopes: &[String],
        policy: UrlPolicy,
    ) -> Result<Self> {
        let mut url = policy.check("the authorization URL", &as_meta.authorization_endpoint)?;
        let state = random_urlsafe().map_err(|e| Error::Usage(format!("no randomness: {e}")))?;
        let pkce = Pkce::new().map_err(|e| Error::Usage(format!("no randomness: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("code_challenge", &pkce.challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", &state)
                .append_pair("resource", resource);
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(" "));
            }
        }
        Ok(AuthorizationRequest {
            url,
            state: Secret::new(state),
            pkce,
            redirect_uri: redirect_uri.to_string(),
            scopes: scopes.to_vec(),
            resource: resource.to_string(),
            issuer: as_meta.issuer.clone(),
            expects_iss: as_meta.authorization_response_iss_parameter_supported,
        })
    }

    /// True when `state` is this request's, compared in constant time.
    pub fn state_matches(&self, state: &str) -> bool {
        state_eq(self.state.expose(), state)
    }

    /// Checks the callback and returns the code.
    pub fn accept(&self, cb: &CallbackResult) -> Result<Secret> {
        if !self.state_matches(cb.state.as_deref().unwrap_or("")) {
            return Err(Error::BadAuthorizationResponse(
                "its state does not match the request".into(),
            ));
        }
        // RFC 9207 §2.4: compare when present; required when the server advertises it.
        match (&cb.iss, self.expects_iss) {
            (Some(iss), _) if iss != &self.issuer => {
                return Err(Error::BadAuthorizationResponse(format!(
                    "it comes from the issuer {iss:?}, not {:?} (a mix-up attack or a \
                     misconfigured server)",
                    self.issuer
                )));
            }
            (None, true) => {
                return Err(Error::BadAuthorizationResponse(
                    "the server advertises RFC 9207 iss but the response has none".into(),
                ));
            }
            _ => {}
        }
        if let Some(error) = &cb.error {
            return Err(Error::OAuth {
                step: "authorization",
                code: error.clone(),
                description: cb.error_description.clone(),
            });
        }
        cb.code
            .clone()
            .map(Secret::new)
            .ok_or_else(|| Error::BadAuthorizationResponse("it carries no code".into()))
    }
}

/// Constant-time string equality (lengths may differ: then false, in time independent of content).
pub fn state_eq(expected: &str, got: &str) -> bool {
    expected.len() == got.len() && bool::from(expected.as_bytes().ct_eq(got.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(iss: bool) -> AuthServerMetadata {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://as.example/t1",
            "authorization_endpoint": "https://as.example/t1/auth",
            "token_endpoint": "https://as.example/t1/token",
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": iss,
        }))
        .unwrap()
    }

    fn cb(state: &str, iss: Option<&str>) -> CallbackResult {
        CallbackResult {
            code: Some("the-code".into()),
            state: Some(state.into()),
            iss: iss.map(str::to_string),
            error: None,
            error_description: None,
        }
    }

    #[test]
    fn url_carries_pkce_resource_scope_and_state() {
        let r = AuthorizationRequest::new(
            &meta(false),
            "cid",
            "http://127.0.0.1:5/callback",
            "https://mcp.example/mcp",
            &["a".into(), "b".into()],
            UrlPolicy::STRICT,
        )
        .unwrap();
        let q: std::collections::HashMap<_, _> = r.url.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["resource"], "https://mcp.example/mcp");
        assert_eq!(q["scope"], "a b");
        assert_eq!(q["state"], r.state.expose());
        assert_eq!(q["code_challenge"], r.pkce.challenge);
    }

    #[test]
    fn state_and_iss_are_checked() {
        let r = AuthorizationRequest::new(
            &meta(true),
            "cid",
            "http://127.0.0.1:5/callback",
            "https://mcp.example/mcp",
            &[],
            UrlPolicy::STRICT,
        )
        .unwrap();
        let good = r.state.expose().to_string();
        assert_eq!(
            r.accept(&cb(&good, Some("https://as.example/t1")))
                .unwrap()
                .expose(),
            "the-code"
        );
        assert!(
            r.accept(&cb("other", Some("https://as.example/t1")))
                .is_err()
        );
        assert!(r.accept(&cb(&good, None)).is_err(), "iss advertised");
        assert!(r.accept(&cb(&good, Some("https://evil.example"))).is_err());
        assert!(state_eq("abc", "abc") && !state_eq("abc", "abd") && !state_eq("abc", "ab"));
    }
}
