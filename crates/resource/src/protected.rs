//! [`ProtectedResource`]: what a resource server declares about itself — the same declaration the
//! authorization server reads from `[[resources]]` (RFC 8707 resource URI, name, scopes) plus the
//! issuer it trusts, the scopes a challenge asks for and the scopes individual tools demand.
//!
//! The RFC 9728 §3.1 metadata URL is built here: the well-known suffix is inserted between the
//! resource's origin and its path, so `https://mcp.example.com/public/mcp` publishes at
//! `https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp`.

use url::Url;

use crate::uri::{Resource, canonical_uri, is_valid_scope_token};

/// RFC 9728 §3: the well-known URI suffix for protected resource metadata.
pub const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource";

/// Why a declaration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeclarationError {
    #[error("resource URI {uri:?}: {reason}")]
    ResourceUri { uri: String, reason: String },
    #[error(
        "authorization server {issuer:?} is not an absolute http(s) URL without query or fragment"
    )]
    Issuer { issuer: String },
    #[error("scope {0:?} is not a valid scope token (RFC 6749 §3.3)")]
    Scope(String),
    #[error("scope {scope:?} is required but not among the resource's scopes")]
    UnknownScope { scope: String },
}

/// A protected MCP server (or any HTTP API) as the resource-server toolkit sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedResource {
    uri: String,
    url: Url,
    authorization_servers: Vec<String>,
    name: Option<String>,
    scopes_supported: Vec<String>,
    required_scopes: Vec<String>,
    tool_scopes: Vec<(String, Vec<String>)>,
}

impl ProtectedResource {
    /// A resource at `uri` (canonicalised as the authorization server does) trusting tokens from
    /// `issuer`.
    pub fn new(uri: &str, issuer: &str) -> Result<Self, DeclarationError> {
        let uri = canonical_uri(uri).map_err(|reason| DeclarationError::ResourceUri {
            uri: uri.to_string(),
            reason,
        })?;
        let url = Url::parse(&uri).map_err(|e| DeclarationError::ResourceUri {
            uri: uri.clone(),
            reason: e.to_string(),
        })?;
        let issuer = normalise_issuer(issuer)?;
        Ok(Self {
            uri,
            url,
            authorization_servers: vec![issuer],
            name: None,
            scopes_supported: Vec::new(),
            required_scopes: Vec::new(),
            tool_scopes: Vec::new(),
        })
    }

    /// The declaration of a `[[resources]]` entry, trusting `issuer`. Every request then needs the
    /// entry's first scope (the basic-use scope; the others are asked for by step-up).
    pub fn from_declared(resource: &Resource, issuer: &str) -> Result<Self, DeclarationError> {
        Self::new(&resource.uri, issuer)?
            .with_name(&resource.name)
            .with_scopes(resource.scopes.iter().map(String::as_str))
    }

    /// Human-readable name (RFC 9728 §2 `resource_name`).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string()).filter(|n| !n.is_empty());
        self
    }

    /// Every scope this resource understands (`scopes_supported`). Unless set otherwise with
    /// [`with_required_scopes`](Self::with_required_scopes), the first one is required for basic
    /// use and is what a 401 challenge asks for. `offline_access` is never advertised (MCP
    /// 2026-07-28: it is the authorization server's business).
    pub fn with_scopes<'a>(
        mut self,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, DeclarationError> {
        let mut list: Vec<String> = Vec::new();
        for s in scopes {
            if !is_valid_scope_token(s) {
                return Err(DeclarationError::Scope(s.to_string()));
            }
            if s != "offline_access" && !list.iter().any(|l| l == s) {
                list.push(s.to_string());
            }
        }
        self.required_scopes = list.first().cloned().into_iter().collect();
        self.scopes_supported = list;
        Ok(self)
    }

    /// The scopes every request needs (may be empty: any token issued for this resource will do).
    /// They are the `scope` of the 401 challenge (RFC 6750 §3, MCP *Scope Selection*).
    pub fn with_required_scopes<'a>(
        mut self,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, DeclarationError> {
        self.required_scopes = self.checked_scopes(scopes)?;
        Ok(self)
    }

    /// Scopes a `tools/call` of `tool` needs beyond the required ones. The layer checks them before
    /// the call reaches the MCP server and answers 403 `insufficient_scope` (MCP *Runtime
    /// Insufficient Scope Errors*): the HTTP status of a streamable-HTTP call is decided before the
    /// tool runs, so the requirement is declared here rather than discovered in the handler.
    pub fn with_tool_scopes<'a>(
        mut self,
        tool: &str,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, DeclarationError> {
        let scopes = self.checked_scopes(scopes)?;
        self.tool_scopes.retain(|(t, _)| t != tool);
        self.tool_scopes.push((tool.to_string(), scopes));
        Ok(self)
    }

    fn checked_scopes<'a>(
        &self,
        scopes: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, DeclarationError> {
        let mut out: Vec<String> = Vec::new();
        for s in scopes {
            if !is_valid_scope_token(s) {
                return Err(DeclarationError::Scope(s.to_string()));
            }
            if !self.scopes_supported.is_empty() && !self.scopes_supported.iter().any(|x| x == s) {
                return Err(DeclarationError::UnknownScope {
                    scope: s.to_string(),
                });
            }
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
        }
        Ok(out)
    }

    /// The canonical resource URI: the `aud` every accepted token must carry (RFC 8707 §2).
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The issuers whose tokens are accepted (RFC 9728 §2 `authorization_servers`).
    pub fn authorization_servers(&self) -> &[String] {
        &self.authorization_servers
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn scopes_supported(&self) -> &[String] {
        &self.scopes_supported
    }

    pub fn required_scopes(&self) -> &[String] {
        &self.required_scopes
    }

    /// Extra scopes `tool` needs, if any were declared.
    pub fn tool_scopes(&self, tool: &str) -> Option<&[String]> {
        self.tool_scopes
            .iter()
            .find(|(t, _)| t == tool)
            .map(|(_, s)| s.as_slice())
    }

    /// True when some tool has its own scope requirement (the layer then reads `tools/call` bodies).
    pub fn has_tool_scopes(&self) -> bool {
        !self.tool_scopes.is_empty()
    }

    /// The resource's path ("" for a resource at the origin root).
    pub fn path(&self) -> &str {
        match self.url.path() {
            "/" => "",
            p => p,
        }
    }

    /// `scheme://host[:port]` of the resource, with the port always written (RFC 6454 §4 tuple).
    pub fn origin(&self) -> String {
        // `host_str` writes an IPv6 literal with its brackets already.
        let host = self.url.host_str().unwrap_or_default();
        let port = self.url.port_or_known_default().unwrap_or(0);
        format!("{}://{host}:{port}", self.url.scheme())
    }

    /// The path of the metadata document relative to the origin (RFC 9728 §3.1: inserted).
    pub fn metadata_path(&self) -> String {
        format!("{WELL_KNOWN_PRM}{}", self.path())
    }

    /// The absolute metadata URL, as advertised in `WWW-Authenticate: Bearer resource_metadata=…`.
    pub fn metadata_url(&self) -> String {
        let mut url = self.url.clone();
        url.set_path(&self.metadata_path());
        url.set_query(None);
        url.into()
    }

    /// The host name of the resource URI (no port, no IPv6 brackets).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }
}

/// An issuer identifier as RFC 8414 §2 requires it (http(s), no query or fragment), without a
/// trailing slash.
fn normalise_issuer(issuer: &str) -> Result<String, DeclarationError> {
    let trimmed = issuer.trim_end_matches('/');
    let ok = Url::parse(trimmed).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(DeclarationError::Issuer {
            issuer: issuer.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_origins_are_bracketed_once() {
        let r = ProtectedResource::new("http://[::1]:9000/mcp", "http://[::1]:9000").unwrap();
        assert_eq!(r.origin(), "http://[::1]:9000");
    }

    #[test]
    fn tool_scopes_are_declared_per_tool_from_the_supported_scopes() {
        let r = ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000")
            .unwrap()
            .with_scopes(["mcp:tools", "mcp:admin"])
            .unwrap();
        assert!(!r.has_tool_scopes());
        let r = r
            .with_tool_scopes("stats", ["mcp:tools"])
            .unwrap()
            .with_tool_scopes("wipe", ["mcp:admin"])
            .unwrap()
            // A second declaration of a tool replaces its first, and only its first.
            .with_tool_scopes("stats", ["mcp:admin"])
            .unwrap();
        assert!(r.has_tool_scopes());
        assert_eq!(r.tool_scopes("stats").unwrap(), ["mcp:admin"]);
        assert_eq!(r.tool_scopes("wipe").unwrap(), ["mcp:admin"]);
        assert!(r.tool_scopes("echo").is_none());
        // Every declared scope is kept once, in order.
        let r = r
            .with_tool_scopes("both", ["mcp:tools", "mcp:admin", "mcp:tools"])
            .unwrap();
        assert_eq!(r.tool_scopes("both").unwrap(), ["mcp:tools", "mcp:admin"]);
        assert!(matches!(
            r.with_tool_scopes("x", ["mcp:other"]),
            Err(DeclarationError::UnknownScope { scope }) if scope == "mcp:other"
        ));
    }

    #[test]
    fn metadata_url_is_path_inserted() {
        let r = ProtectedResource::new(
            "https://MCP.example.com/public/mcp",
            "https://auth.example.com/",
        )
        .unwrap();
        assert_eq!(r.uri(), "https://mcp.example.com/public/mcp");
        assert_eq!(
            r.metadata_url(),
            "https://mcp.example.com/.well-known/oauth-protected-resource/public/mcp"
        );
        assert_eq!(r.authorization_servers(), ["https://auth.example.com"]);
        assert_eq!(r.origin(), "https://mcp.example.com:443");

        let root =
            ProtectedResource::new("http://127.0.0.1:9000", "http://127.0.0.1:9000").unwrap();
        assert_eq!(
            root.metadata_url(),
            "http://127.0.0.1:9000/.well-known/oauth-protected-resource"
        );
        assert_eq!(root.path(), "");

        let port =
            ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000").unwrap();
        assert_eq!(
            port.metadata_url(),
            "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(port.origin(), "http://127.0.0.1:9000");
    }

    #[test]
    fn first_scope_is_required_and_offline_access_is_never_advertised() {
        let r = ProtectedResource::new("https://mcp.example.com/mcp", "https://auth.example.com")
            .unwrap()
            .with_scopes(["mcp:tools", "offline_access", "mcp:admin", "mcp:tools"])
            .unwrap();
        assert_eq!(r.scopes_supported(), ["mcp:tools", "mcp:admin"]);
        assert_eq!(r.required_scopes(), ["mcp:tools"]);
        let r = r.with_tool_scopes("admin_stats", ["mcp:admin"]).unwrap();
        assert_eq!(
            r.tool_scopes("admin_stats"),
            Some(&["mcp:admin".to_string()][..])
        );
        assert_eq!(r.tool_scopes("echo"), None);
        assert_eq!(
            r.clone().with_tool_scopes("x", ["mcp:other"]).err(),
            Some(DeclarationError::UnknownScope {
                scope: "mcp:other".into()
            })
        );
        assert!(r.with_required_scopes(["bad\"scope"]).is_err());
    }

    #[test]
    fn bad_declarations_are_refused() {
        assert!(ProtectedResource::new("mcp", "https://a.example.com").is_err());
        assert!(
            ProtectedResource::new("https://x.example.com/mcp#f", "https://a.example.com").is_err()
        );
        assert!(ProtectedResource::new("https://x.example.com/mcp", "a.example.com").is_err());
        assert!(
            ProtectedResource::new("https://x.example.com/mcp", "https://a.example.com?x=1")
                .is_err()
        );
    }
}
