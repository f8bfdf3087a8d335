//! URI and scope rules shared by the toolkit and the authorization server (which imports them from
//! here): the declared [`Resource`], canonical resource URIs (RFC 8707, MCP *Canonical Server URI*),
//! scope tokens (RFC 6749 §3.3) and loopback hosts (RFC 8252 §7.3).

use url::{Host, Url};

/// A declared protected resource: a `[[resources]]` entry of the authorization server's config, and
/// what [`ProtectedResource::from_declared`](crate::ProtectedResource::from_declared) reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// Canonical URI (MCP *Canonical Server URI*): lowercase scheme and host, no fragment, no trailing
    /// slash on an empty path.
    pub uri: String,
    pub name: String,
    pub scopes: Vec<String>,
}

/// The canonical form of a resource URI, or why it is not one.
pub fn canonical_uri(raw: &str) -> Result<String, String> {
    if raw.contains('#') {
        return Err("a resource indicator must not contain a fragment".into());
    }
    let url =
        Url::parse(raw).map_err(|_| "a resource indicator must be an absolute URI".to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("a resource indicator must be an http(s) URI".into());
    }
    // `Url` always writes "/" for an empty path; the canonical MCP URI has no trailing slash there.
    let bare_root = url.path() == "/" && url.query().is_none();
    let mut s: String = url.into();
    if bare_root {
        s.pop();
    }
    Ok(s)
}

/// RFC 6749 §3.3: a scope token is 1*( %x21 / %x23-5B / %x5D-7E ).
pub fn is_valid_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// True for `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uris() {
        assert_eq!(
            canonical_uri("HTTP://Example.COM/mcp").as_deref(),
            Ok("http://example.com/mcp")
        );
        assert_eq!(
            canonical_uri("https://example.com:443/").as_deref(),
            Ok("https://example.com")
        );
        assert_eq!(
            canonical_uri("https://example.com/mcp/").as_deref(),
            Ok("https://example.com/mcp/")
        );
        assert!(canonical_uri("https://example.com/mcp#x").is_err());
        assert!(canonical_uri("urn:x").is_err());
        assert!(canonical_uri("ftp://example.com/mcp").is_err());
        assert!(canonical_uri("wss://example.com/mcp").is_err());
        assert!(canonical_uri("mcp").is_err());
    }

    #[test]
    fn scope_tokens_and_loopback_hosts() {
        assert!(is_valid_scope_token("mcp:tools"));
        assert!(!is_valid_scope_token(""));
        assert!(!is_valid_scope_token("a b"));
        assert!(!is_valid_scope_token("a\"b"));
        assert!(!is_valid_scope_token("a\\b"));
        for (url, loopback) in [
            ("http://localhost:1/", true),
            ("http://LOCALHOST/", true),
            ("http://127.0.0.2/", true),
            ("http://[::1]:8/", true),
            ("http://localhost.example.com/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback(&Url::parse(url).unwrap()), loopback, "{url}");
        }
    }
}
