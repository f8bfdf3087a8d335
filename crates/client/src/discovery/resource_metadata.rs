//! RFC 9728 protected-resource metadata (MCP 2025-11-25 *Protected Resource Metadata Discovery
//! Requirements*): the URL from the challenge's `resource_metadata` when present, else
//! `/.well-known/oauth-protected-resource/<path>` (§3.1 path insertion), else the root document.
//! The document's `resource` must be the server URL (§3.3), or the client stops.

use serde::Deserialize;
use url::Url;

use super::{Challenge, get_json};
use crate::error::{Error, Result};
use crate::urls::{UrlPolicy, canonical_server_url, canonical_string, well_known_inserted};

/// The parts of RFC 9728 §2 the client uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Option<Vec<String>>,
}

/// The candidate URLs, in the order MCP requires.
pub fn candidates(server: &Url, challenge: &Challenge) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(u) = &challenge.resource_metadata {
        out.push(u.clone());
    }
    let name = "oauth-protected-resource";
    if server.path() != "/" && !server.path().is_empty() {
        out.push(well_known_inserted(server, name));
    }
    let mut root = server.clone();
    root.set_path("");
    root.set_query(None);
    out.push(well_known_inserted(&root, name));
    out.dedup();
    out
}

/// Finds and checks the document; `Ok(None)` when no candidate answers (a 2025-03-26 server).
pub async fn find(
    http: &reqwest::Client,
    server: &Url,
    challenge: &Challenge,
    policy: UrlPolicy,
) -> Result<Option<ResourceMetadata>> {
    for url in candidates(server, challenge) {
        // A metadata URL named by the server is followed only where credentials could go.
        policy.check("the resource_metadata URL", &url)?;
        let Some(json) = get_json(http, &url).await? else {
            continue;
        };
        let Ok(meta) = serde_json::from_value::<ResourceMetadata>(json) else {
            continue;
        };
        check_resource(server, &meta, &url)?;
        tracing::debug!(metadata = %url, "found protected-resource metadata");
        return Ok(Some(meta));
    }
    Ok(None)
}

/// RFC 9728 §3.3: the `resource` must be the server the client is talking to.
pub fn check_resource(server: &Url, meta: &ResourceMetadata, from: &str) -> Result<()> {
    let named = canonical_server_url(&meta.resource)
        .map(|u| canonical_string(&u))
        .unwrap_or_else(|_| meta.resource.clone());
    let ours = canonical_string(server);
    if named != ours {
        return Err(Error::Discovery {
            server: ours.clone(),
            reason: format!(
                "the protected-resource metadata at {from} is for {named:?}, not for {ours:?}, so \
                 the client stops here (RFC 9728 §3.3). Check the URL; if it is right, the server \
                 is misconfigured"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidate_order_is_header_then_path_inserted_then_root() {
        let server = Url::parse("https://mcp.example.com/tenant/mcp").unwrap();
        let c = Challenge {
            resource_metadata: Some("https://mcp.example.com/prm".into()),
            ..Challenge::default()
        };
        assert_eq!(
            candidates(&server, &c),
            [
                "https://mcp.example.com/prm",
                "https://mcp.example.com/.well-known/oauth-protected-resource/tenant/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ]
        );
        let root = Url::parse("https://mcp.example.com/").unwrap();
        assert_eq!(
            candidates(&root, &Challenge::default()),
            ["https://mcp.example.com/.well-known/oauth-protected-resource"]
        );
    }

    #[test]
    fn a_mismatched_resource_stops_discovery() {
        let server = Url::parse("https://mcp.example.com/mcp").unwrap();
        let meta = |r: &str| ResourceMetadata {
            resource: r.into(),
            authorization_servers: vec![],
            scopes_supported: None,
        };
        check_resource(&server, &meta("https://MCP.example.com/mcp/"), "x").unwrap();
        let err = check_resource(&server, &meta("https://evil.example.com/mcp"), "x").unwrap_err();
        assert!(err.to_string().contains("evil.example.com"), "{err}");
        assert!(check_resource(&server, &meta("https://mcp.example.com/other"), "x").is_err());
    }
}
