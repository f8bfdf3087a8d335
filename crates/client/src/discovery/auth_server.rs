//! Authorization-server metadata (RFC 8414 §3, OpenID Connect Discovery 1.0 §4; MCP 2025-11-25
//! *Authorization Server Metadata Discovery*).
//!
//! For an issuer with a path (`https://as/tenant1`): RFC 8414 path insertion, OIDC path insertion,
//! then OIDC with the path appended. Without a path: RFC 8414, then OIDC. The document's `issuer`
//! must be the issuer the URL was built from (RFC 8414 §3.3). MCP 2025-03-26 servers without
//! RFC 9728 metadata: the metadata at the server origin, else the default endpoints `/authorize`,
//! `/token`, `/register` there. A server that does not list `S256` is refused (RFC 7636, MCP
//! *Authorization Code Protection*).

use serde::{Deserialize, Serialize};
use url::Url;

use super::get_json;
use crate::error::{Error, Result};
use crate::urls::{UrlPolicy, origin, well_known_inserted};

/// The parts of RFC 8414 §2 the client uses (also what a token-store record keeps, so a refresh
/// needs no discovery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub registration_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9207 §3: the server puts `iss` in every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// True when these are the 2025-03-26 default endpoints, not a metadata document.
    #[serde(default, skip_deserializing)]
    pub defaulted: bool,
}

impl AuthServerMetadata {
    pub fn advertises_scope(&self, scope: &str) -> bool {
        self.scopes_supported
            .as_ref()
            .is_some_and(|s| s.iter().any(|x| x == scope))
    }

    /// MCP: clients MUST refuse to proceed when S256 is not advertised. The 2025-03-26 default
    /// endpoints have no document to advertise anything; that revision made PKCE mandatory, so
    /// S256 is assumed there.
    pub fn require_s256(&self) -> Result<()> {
        if self.defaulted {
            return Ok(());
        }
        let ok = self
            .code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x == "S256"));
        if ok {
            Ok(())
        } else {
            Err(Error::NoPkceS256 {
                issuer: self.issuer.clone(),
            })
        }
    }

    /// Every endpoint the client will send credentials to must pass the URL policy.
    fn check_endpoints(&self, policy: UrlPolicy) -> Result<()> {
        policy.check("the authorization endpoint", &self.authorization_endpoint)?;
        policy.check("the token endpoint", &self.token_endpoint)?;
        for e in [&self.registration_endpoint, &self.revocation_endpoint]
            .into_iter()
            .flatten()
        {
            policy.check("an authorization-server endpoint", e)?;
        }
        Ok(())
    }
}

/// The metadata URLs for `issuer`, in the MCP order.
pub fn candidates(issuer: &Url) -> Vec<String> {
    let path = issuer.path().trim_end_matches('/');
    let oauth = well_known_inserted(issuer, "oauth-authorization-server");
    let oidc = well_known_inserted(issuer, "openid-configuration");
    if path.is_empty() {
        vec![oauth, oidc]
    } else {
        vec![
            oauth,
            oidc,
            format!("{}{path}/.well-known/openid-configuration", origin(issuer)),
        ]
    }
}

/// Finds the metadata of the authorization server `issuer`.
pub async fn find(
    http: &reqwest::Client,
    issuer: &str,
    policy: UrlPolicy,
) -> Result<AuthServerMetadata> {
    let issuer_url = policy.check("the authorization server (issuer)", issuer)?;
    for url in candidates(&issuer_url) {
        let Some(json) = get_json(http, &url).await? else {
            continue;
        };
        let Ok(meta) = serde_json::from_value::<AuthServerMetadata>(json) else {
            continue;
        };
        // RFC 8414 §3.3 (simple string comparison; a root issuer may be written with or without
        // its trailing slash).
        if meta.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(Error::Discovery {
                server: issuer.to_string(),
                reason: format!(
                    "the metadata at {url} names the issuer {:?}, not {issuer:?}; refusing it \
                     (RFC 8414 §3.3)",
                    meta.issuer
                ),
            });
        }
        meta.check_endpoints(policy)?;
        tracing::debug!(metadata = %url, "found authorization-server metadata");
        return Ok(meta);
    }
    Err(Error::Discovery {
        server: issuer.to_string(),
        reason: "no authorization-server metadata at any well-known URL (RFC 8414 or OpenID \
                 Connect discovery). Check that the authorization server is running"
            .into(),
    })
}

/// The MCP 2025-03-26 fallback: the server origin is the authorization server.
pub async fn legacy(
    http: &reqwest::Client,
    server: &Url,
    policy: UrlPolicy,
) -> Result<AuthServerMetadata> {
    let base = origin(server);
    let url = format!("{base}/.well-known/oauth-authorization-server");
    if let Some(json) = get_json(http, &url).await?
        && let Ok(meta) = serde_json::from_value::<AuthServerMetadata>(json)
    {
        meta.check_endpoints(policy)?;
        return Ok(meta);
    }
    tracing::debug!(server = %base, "no metadata; using the 2025-03-26 default endpoints");
    Ok(AuthServerMetadata {
        issuer: base.clone(),
        authorization_endpoint: format!("{base}/authorize"),
        token_endpoint: format!("{base}/token"),
        registration_endpoint: Some(format!("{base}/register")),
        revocation_endpoint: None,
        scopes_supported: None,
        code_challenge_methods_supported: None,
        token_endpoint_auth_methods_supported: None,
        client_id_metadata_document_supported: false,
        authorization_response_iss_parameter_supported: false,
        defaulted: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_order_with_and_without_a_path() {
        let with = Url::parse("https://auth.example.com/tenant1").unwrap();
        assert_eq!(
            candidates(&with),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ]
        );
        let root = Url::parse("https://auth.example.com").unwrap();
        assert_eq!(
            candidates(&root),
            [
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn s256_is_required() {
        let mut m: AuthServerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://as", "authorization_endpoint": "https://as/a",
            "token_endpoint": "https://as/t"
        }))
        .unwrap();
        assert!(matches!(m.require_s256(), Err(Error::NoPkceS256 { .. })));
        m.code_challenge_methods_supported = Some(vec!["plain".into()]);
        assert!(m.require_s256().is_err());
        m.code_challenge_methods_supported = Some(vec!["plain".into(), "S256".into()]);
        m.require_s256().unwrap();
    }
}
