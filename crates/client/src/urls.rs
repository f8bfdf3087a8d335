//! URL rules: which URLs the client may follow, open or send credentials to, and the canonical
//! form of an MCP server URL.
//!
//! - MCP security best practices, *OAuth Authorization URL Validation*: only `https`, or `http` to a
//!   loopback host (`localhost`, `127.0.0.0/8`, `::1`); `javascript:`, `data:`, `file:`,
//!   `vbscript:` and everything else refused. Parsed with a real URL parser, never by prefix.
//! - MCP *Canonical Server URI* / RFC 8707 §2: lowercase scheme and host, no fragment, no trailing
//!   slash unless it is the whole path.

use std::net::IpAddr;

use url::{Host, Url};

use crate::error::{Error, Result};

/// Whether plain `http` to non-loopback hosts is allowed (`--insecure`, development only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_insecure_http: bool,
}

impl UrlPolicy {
    pub const STRICT: UrlPolicy = UrlPolicy {
        allow_insecure_http: false,
    };

    /// Parses `raw` and checks it may be fetched or opened.
    pub fn check(&self, what: &'static str, raw: &str) -> Result<Url> {
        let url = Url::parse(raw).map_err(|e| Error::BadUrl {
            what,
            url: raw.to_string(),
            reason: e.to_string(),
        })?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// Checks an already parsed URL.
    pub fn check_url(&self, url: &Url) -> Result<()> {
        let refuse = |reason: &str| Error::UnsafeUrl {
            url: redact(url),
            reason: reason.to_string(),
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(url) || self.allow_insecure_http => {}
            "http" => {
                return Err(refuse(
                    "plain http is only allowed to a loopback host (tokens would travel in clear text)",
                ));
            }
            other => {
                return Err(refuse(&format!(
                    "the scheme {other:?} is not http or https"
                )));
            }
        }
        if url.host().is_none() {
            return Err(refuse("it has no host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(refuse("it carries user credentials"));
        }
        Ok(())
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The URL without query and fragment, for messages (an authorization URL's query is long and
/// says nothing useful to a user).
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_password(None);
    u.to_string()
}

/// The canonical URI of an MCP server (MCP *Canonical Server URI*, RFC 8707 §2): lowercase
/// scheme and host (the parser does both), no fragment, no trailing slash unless the path is `/`.
pub fn canonical_server_url(raw: &str) -> Result<Url> {
    let mut url = Url::parse(raw.trim()).map_err(|e| Error::BadUrl {
        what: "the MCP server URL",
        url: raw.to_string(),
        reason: e.to_string(),
    })?;
    url.set_fragment(None);
    let path = url.path().to_string();
    if path.len() > 1 && path.ends_with('/') {
        url.set_path(path.trim_end_matches('/'));
    }
    Ok(url)
}

/// The canonical URI as a string: `https://host/mcp`, or `https://host` for a root server (the
/// `url` crate always writes the root path as `/`, which MCP's examples leave off).
pub fn canonical_string(url: &Url) -> String {
    let s = url.to_string();
    if url.path() == "/" && url.query().is_none() {
        s.trim_end_matches('/').to_string()
    } else {
        s
    }
}

/// `origin + /.well-known/<name> + path` (RFC 8414 §3.1 / RFC 9728 §3.1 path insertion); the root
/// form when `url` has no path.
pub fn well_known_inserted(url: &Url, name: &str) -> String {
    let path = url.path().trim_end_matches('/');
    format!("{}/.well-known/{name}{path}", origin(url))
}

/// `scheme://host[:port]`.
pub fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_dangerous_schemes_and_remote_http() {
        let p = UrlPolicy::STRICT;
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,hi",
            "vbscript:msgbox",
            "http://example.com/authorize",
            "http://10.0.0.1/authorize",
            "ftp://example.com/",
            "https://user:pw@example.com/",
        ] {
            let err = p.check("the authorization URL", bad).unwrap_err();
            assert!(
                matches!(err, Error::UnsafeUrl { .. } | Error::BadUrl { .. }),
                "{bad}: {err}"
            );
        }
        let msg = p
            .check("x", "http://example.com/authorize?state=s")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("--insecure") && !msg.contains("state=s"),
            "{msg}"
        );
        for good in [
            "https://example.com/authorize",
            "http://127.0.0.1:8080/a",
            "http://127.5.6.7/a",
            "http://[::1]:9/a",
            "http://LOCALHOST:3000/cb",
        ] {
            p.check("x", good).unwrap();
        }
        // --insecure opens plain http, never other schemes.
        let dev = UrlPolicy {
            allow_insecure_http: true,
        };
        dev.check("x", "http://example.com/authorize").unwrap();
        assert!(dev.check("x", "javascript:alert(1)").is_err());
        assert!(dev.check("x", "file:///etc/passwd").is_err());
    }

    #[test]
    fn canonical_urls_and_well_known_paths() {
        let u = canonical_server_url("HTTPS://MCP.Example.com/mcp/#frag").unwrap();
        assert_eq!(canonical_string(&u), "https://mcp.example.com/mcp");
        let root = canonical_server_url("https://mcp.example.com/").unwrap();
        assert_eq!(canonical_string(&root), "https://mcp.example.com");
        assert_eq!(
            well_known_inserted(&u, "oauth-protected-resource"),
            "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            well_known_inserted(&root, "oauth-protected-resource"),
            "https://mcp.example.com/.well-known/oauth-protected-resource"
        );
        let issuer = Url::parse("https://auth.example.com/tenant1").unwrap();
        assert_eq!(
            well_known_inserted(&issuer, "oauth-authorization-server"),
            "https://auth.example.com/.well-known/oauth-authorization-server/tenant1"
        );
    }
}
