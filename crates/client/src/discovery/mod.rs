//! Discovery: from an MCP server URL to the authorization server's endpoints (MCP-AUTH.md §5.3,
//! MCP 2025-11-25 *Authorization Server Discovery*).
//!
//! - [`challenge`]: the `WWW-Authenticate` parser (RFC 6750 §3, RFC 9728 §5.1).
//! - [`resource_metadata`]: RFC 9728 protected-resource metadata: the challenge's
//!   `resource_metadata`, else the path-inserted well-known URL, else the root one; `resource` must
//!   name the server (RFC 9728 §3.3).
//! - [`auth_server`]: RFC 8414 / OIDC metadata with path insertion, OIDC with the path appended,
//!   the 2025-03-26 fallbacks (metadata at the server origin, then `/authorize`, `/token`,
//!   `/register`), and the S256 check.

pub mod auth_server;
pub mod challenge;
pub mod resource_metadata;

pub use auth_server::AuthServerMetadata;
pub use challenge::Challenge;
pub use resource_metadata::ResourceMetadata;

use url::Url;

use crate::error::{Error, Result};
use crate::urls::{UrlPolicy, canonical_string};

/// The MCP protocol revision named on discovery requests (MCP 2025-03-26 *Protocol Version
/// Header*).
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// What discovery found for one MCP server.
#[derive(Debug, Clone)]
pub struct Discovered {
    /// The canonical server URL (the RFC 8707 `resource`).
    pub server: Url,
    /// `None` for a 2025-03-26 server without RFC 9728 metadata.
    pub resource: Option<ResourceMetadata>,
    pub auth_server: AuthServerMetadata,
    /// The challenge that started it (its `scope` is authoritative).
    pub challenge: Challenge,
}

impl Discovered {
    /// Scopes to ask for (MCP *Scope Selection Strategy*): the challenge's, else the resource
    /// metadata's `scopes_supported`, else none; plus `offline_access` where the authorization
    /// server advertises it (so it issues a refresh token).
    pub fn initial_scopes(&self) -> Vec<String> {
        let mut scopes = self
            .challenge
            .scope
            .clone()
            .or_else(|| {
                self.resource
                    .as_ref()
                    .and_then(|r| r.scopes_supported.clone())
            })
            .unwrap_or_default();
        if self.auth_server.advertises_scope("offline_access")
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".into());
        }
        scopes
    }

    pub fn server_string(&self) -> String {
        canonical_string(&self.server)
    }
}

/// Asks the server for its challenge (an unauthenticated `initialize` POST must answer 401), then
/// discovers everything from it.
pub async fn discover(
    http: &reqwest::Client,
    server: &Url,
    known_challenge: Option<Challenge>,
    policy: UrlPolicy,
) -> Result<Discovered> {
    policy.check_url(server)?;
    let challenge = match known_challenge {
        Some(c) => c,
        None => probe(http, server).await?,
    };
    let resource = resource_metadata::find(http, server, &challenge, policy).await?;
    let auth_server = match &resource {
        Some(prm) => {
            let mut last_err = None;
            let mut found = None;
            // RFC 9728 §7.6: the client picks; take the first one that answers well.
            for issuer in &prm.authorization_servers {
                match auth_server::find(http, issuer, policy).await {
                    Ok(meta) => {
                        found = Some(meta);
                        break;
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            match (found, last_err) {
                (Some(m), _) => m,
                (None, Some(e)) => return Err(e),
                (None, None) => {
                    return Err(Error::Discovery {
                        server: canonical_string(server),
                        reason: "its protected-resource metadata lists no authorization_servers"
                            .into(),
                    });
                }
            }
        }
        None => auth_server::legacy(http, server, policy).await?,
    };
    auth_server.require_s256()?;
    Ok(Discovered {
        server: server.clone(),
        resource,
        auth_server,
        challenge,
    })
}

/// An unauthenticated MCP `initialize`; the answer must be 401 with a challenge.
async fn probe(http: &reqwest::Client, server: &Url) -> Result<Challenge> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 0, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                   "clientInfo": {"name": "mcp-oauth-client", "version": env!("CARGO_PKG_VERSION")}}
    });
    let resp = http
        .post(server.clone())
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::unreachable(server.as_str(), e))?;
    let status = resp.status();
    if status != reqwest::StatusCode::UNAUTHORIZED {
        return Err(Error::Discovery {
            server: canonical_string(server),
            reason: format!(
                "it answered HTTP {status} to a request without a token instead of 401, so it does \
                 not ask for OAuth here. Check the URL (it must be the MCP endpoint itself, e.g. \
                 https://host/mcp)"
            ),
        });
    }
    let header = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Challenge::parse(&header))
}

/// GETs a JSON document for discovery. `Ok(None)` for 404/405/410 or a non-JSON body (try the
/// next candidate); an error for anything the user must hear about.
pub(crate) async fn get_json(
    http: &reqwest::Client,
    url: &str,
) -> Result<Option<serde_json::Value>> {
    let resp = http
        .get(url)
        .header("accept", "application/json")
        .header("mcp-protocol-version", PROTOCOL_VERSION)
        .send()
        .await
        .map_err(|e| Error::unreachable(url, e))?;
    if !resp.status().is_success() {
        return Ok(None);
    }
    Ok(resp.json::<serde_json::Value>().await.ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered(challenge: Option<&str>, prm: Option<&[&str]>, as_scopes: &[&str]) -> Discovered {
        let auth_server: AuthServerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://as", "authorization_endpoint": "https://as/a",
            "token_endpoint": "https://as/t", "scopes_supported": as_scopes,
        }))
        .unwrap();
        Discovered {
            server: Url::parse("https://mcp.example/mcp").unwrap(),
            resource: Some(ResourceMetadata {
                resource: "https://mcp.example/mcp".into(),
                authorization_servers: vec!["https://as".into()],
                scopes_supported: prm.map(|p| p.iter().map(|s| s.to_string()).collect()),
            }),
            auth_server,
            challenge: Challenge {
                scope: challenge.map(|c| c.split(' ').map(str::to_string).collect()),
                ..Challenge::default()
            },
        }
    }

    #[test]
    fn scopes_come_from_the_challenge_else_the_resource_metadata_else_none() {
        assert_eq!(
            discovered(Some("a"), Some(&["b", "c"]), &[]).initial_scopes(),
            ["a"]
        );
        assert_eq!(
            discovered(None, Some(&["b", "c"]), &[]).initial_scopes(),
            ["b", "c"]
        );
        assert!(discovered(None, None, &[]).initial_scopes().is_empty());
        assert_eq!(
            discovered(None, None, &["offline_access"]).initial_scopes(),
            ["offline_access"],
            "offline_access where the authorization server advertises it"
        );
    }
}
