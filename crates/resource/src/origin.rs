//! `Origin` validation and the `Host` allow-list: the defences of a locally reachable HTTP server
//! against DNS rebinding and cross-site requests (MCP transports, *Security Warning*: "Servers MUST
//! validate the `Origin` header … If the `Origin` header is present and invalid, servers MUST
//! respond with HTTP 403 Forbidden").
//!
//! - `Origin`: absent (non-browser clients) passes; present, it must be one of the allowed origins,
//!   compared as RFC 6454 tuples (scheme, host, port with the scheme's default filled in). By default
//!   only the resource's own origin is allowed.
//! - `Host`: must be on the allow-list. An entry without a port matches any port, `host:port` only
//!   that port — the same rule rmcp's `allowed_hosts` uses, so one list configures both. By default
//!   the resource URI's host, plus the loopback names when that host is a loopback one.

use axum::http::{HeaderMap, Uri, header};

use crate::challenge::Rejection;
use crate::protected::ProtectedResource;

/// Which browser origins and which `Host` values a resource answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPolicy {
    origins: Vec<OriginTuple>,
    hosts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct OriginTuple {
    scheme: String,
    host: String,
    port: u16,
}

const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl OriginPolicy {
    /// Same-origin browser requests only; `Host` = the resource's host (any port), plus the
    /// loopback names when the resource is on loopback.
    pub fn for_resource(resource: &ProtectedResource) -> Self {
        let mut policy = Self {
            origins: Vec::new(),
            hosts: Vec::new(),
        };
        policy = policy.allow_origin(&resource.origin());
        policy = policy.allow_host(resource.host());
        if LOOPBACK_NAMES.contains(&normalise_host(resource.host()).as_str()) {
            for name in LOOPBACK_NAMES {
                policy = policy.allow_host(name);
            }
        }
        policy
    }

    /// Also accepts browser requests from `origin` (`scheme://host[:port]`). Unparsable entries are
    /// ignored (and logged): they could never match anything.
    pub fn allow_origin(mut self, origin: &str) -> Self {
        match parse_origin(origin) {
            Some(tuple) if !self.origins.contains(&tuple) => self.origins.push(tuple),
            Some(_) => {}
            None => {
                tracing::warn!(origin = %origin, "ignoring an allowed origin that is not scheme://host[:port]")
            }
        }
        self
    }

    /// Also accepts `Host: host` (any port) or `Host: host:port`.
    pub fn allow_host(mut self, host: &str) -> Self {
        let entry = normalise_authority(host);
        if !entry.is_empty() && !self.hosts.contains(&entry) {
            self.hosts.push(entry);
        }
        self
    }

    /// The `Host` allow-list in rmcp's `allowed_hosts` form.
    pub fn allowed_hosts(&self) -> Vec<String> {
        self.hosts
            .iter()
            .map(|h| {
                // rmcp parses entries as authorities: bracket bare IPv6 literals.
                if h.matches(':').count() > 1 && !h.starts_with('[') {
                    format!("[{h}]")
                } else {
                    h.clone()
                }
            })
            .collect()
    }

    /// The allowed origins in rmcp's `allowed_origins` form (explicit ports).
    pub fn allowed_origins(&self) -> Vec<String> {
        self.origins
            .iter()
            .map(|o| {
                if o.host.contains(':') {
                    format!("{}://[{}]:{}", o.scheme, o.host, o.port)
                } else {
                    format!("{}://{}:{}", o.scheme, o.host, o.port)
                }
            })
            .collect()
    }

    /// Checks a request's `Host` (or, in HTTP/2, its `:authority`) and `Origin`.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), Rejection> {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()));
        match host {
            Some(h) if self.host_allowed(&h) => {}
            _ => return Err(Rejection::ForbiddenHost),
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        match (origins.next(), origins.next()) {
            (None, _) => Ok(()),
            (Some(value), None) => match value.to_str().ok().and_then(parse_origin) {
                Some(origin) if self.origins.contains(&origin) => Ok(()),
                _ => Err(Rejection::ForbiddenOrigin),
            },
            (Some(_), Some(_)) => Err(Rejection::ForbiddenOrigin),
        }
    }

    fn host_allowed(&self, raw: &str) -> bool {
        let Some((host, port)) = split_authority(raw) else {
            return false;
        };
        self.hosts.iter().any(|entry| match split_authority(entry) {
            Some((h, None)) => h == host,
            Some((h, Some(p))) => h == host && port == Some(p),
            None => false,
        })
    }
}

fn normalise_host(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// Lowercase; IPv6 literals without brackets when no port follows.
fn normalise_authority(raw: &str) -> String {
    match split_authority(raw.trim()) {
        Some((host, Some(port))) if host.contains(':') => format!("[{host}]:{port}"),
        Some((host, Some(port))) => format!("{host}:{port}"),
        Some((host, None)) => host,
        None => String::new(),
    }
}

/// `host[:port]`, `[v6][:port]` or a bare IPv6 literal → (lowercase host without brackets, port).
fn split_authority(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if let Some(rest) = raw.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?.parse().ok()?),
        };
        return Some((host.to_ascii_lowercase(), port));
    }
    if raw.matches(':').count() > 1 {
        // A bare IPv6 literal (only meaningful in an allow-list entry).
        return Some((raw.to_ascii_lowercase(), None));
    }
    match raw.split_once(':') {
        Some((host, port)) => Some((host.to_ascii_lowercase(), Some(port.parse().ok()?))),
        None => Some((raw.to_ascii_lowercase(), None)),
    }
}

/// An RFC 6454 origin tuple; `None` for `null`, paths, or anything unparsable.
fn parse_origin(raw: &str) -> Option<OriginTuple> {
    let url = url::Url::parse(raw.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" && !url.path().is_empty() {
        return None;
    }
    Some(OriginTuple {
        scheme: url.scheme().to_string(),
        host: normalise_host(url.host_str()?),
        port: url.port_or_known_default()?,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(host: Option<&str>, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = host {
            h.insert(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        if let Some(v) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn check(p: &OriginPolicy, host: Option<&str>, origin: Option<&str>) -> Result<(), Rejection> {
        p.check(&Uri::from_static("/mcp"), &headers(host, origin))
    }

    fn loopback() -> OriginPolicy {
        OriginPolicy::for_resource(
            &ProtectedResource::new("http://127.0.0.1:9000/mcp", "http://127.0.0.1:9000").unwrap(),
        )
    }

    #[test]
    fn same_origin_and_originless_requests_pass() {
        let p = loopback();
        assert_eq!(check(&p, Some("127.0.0.1:9000"), None), Ok(()));
        assert_eq!(
            check(&p, Some("127.0.0.1:9000"), Some("http://127.0.0.1:9000")),
            Ok(())
        );
        assert_eq!(check(&p, Some("localhost:9000"), None), Ok(()));
        assert_eq!(check(&p, Some("[::1]:9000"), None), Ok(()));
        // Port 0 binds: the host is what counts.
        assert_eq!(check(&p, Some("127.0.0.1:43211"), None), Ok(()));
    }

    #[test]
    fn foreign_origins_are_forbidden() {
        let p = loopback();
        for origin in [
            "http://evil.example.com",
            "http://127.0.0.1:9001",
            "https://127.0.0.1:9000",
            "null",
            "not an origin",
        ] {
            assert_eq!(
                check(&p, Some("127.0.0.1:9000"), Some(origin)),
                Err(Rejection::ForbiddenOrigin),
                "{origin}"
            );
        }
        let p = p.allow_origin("https://app.example.com");
        assert_eq!(
            check(
                &p,
                Some("127.0.0.1:9000"),
                Some("https://APP.example.com:443")
            ),
            Ok(())
        );
        let mut two = headers(Some("127.0.0.1:9000"), Some("http://127.0.0.1:9000"));
        two.append(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9000"),
        );
        assert_eq!(
            p.check(&Uri::from_static("/mcp"), &two),
            Err(Rejection::ForbiddenOrigin)
        );
    }

    #[test]
    fn rebound_hosts_are_forbidden() {
        let p = loopback();
        for host in [
            Some("evil.example.com"),
            Some("evil.example.com:9000"),
            Some(""),
            None,
        ] {
            assert_eq!(
                check(&p, host, None),
                Err(Rejection::ForbiddenHost),
                "{host:?}"
            );
        }
        let public = OriginPolicy::for_resource(
            &ProtectedResource::new("https://mcp.example.com/mcp", "https://auth.example.com")
                .unwrap(),
        );
        assert_eq!(check(&public, Some("mcp.example.com"), None), Ok(()));
        assert_eq!(
            check(&public, Some("127.0.0.1"), None),
            Err(Rejection::ForbiddenHost)
        );
        let pinned = public.allow_host("proxy.internal:8443");
        assert_eq!(check(&pinned, Some("proxy.internal:8443"), None), Ok(()));
        assert_eq!(
            check(&pinned, Some("proxy.internal:8444"), None),
            Err(Rejection::ForbiddenHost)
        );
    }

    #[test]
    fn rmcp_forms_of_the_lists() {
        let p = loopback().allow_host("::1").allow_host("[::1]:9000");
        assert_eq!(
            p.allowed_hosts(),
            ["127.0.0.1", "localhost", "[::1]", "[::1]:9000"]
        );
        assert_eq!(p.allowed_origins(), ["http://127.0.0.1:9000"]);
    }

    #[test]
    fn origins_are_bare_http_or_https_tuples() {
        assert!(parse_origin("http://app.example.com").is_some());
        assert!(parse_origin("https://app.example.com/").is_some());
        for refused in [
            "ftp://app.example.com",
            "ftp://app.example.com/",
            "http://app.example.com/path",
            "https://app.example.com/a/",
            "null",
        ] {
            assert!(parse_origin(refused).is_none(), "{refused}");
        }
        let p = loopback();
        assert_eq!(
            check(
                &p,
                Some("127.0.0.1:9000"),
                Some("http://127.0.0.1:9000/mcp")
            ),
            Err(Rejection::ForbiddenOrigin)
        );
    }

    #[test]
    fn named_hosts_with_ports_stay_unbracketed_and_entries_are_listed_once() {
        let p = loopback()
            .allow_host("Proxy.Internal:8443")
            .allow_host("proxy.internal:8443")
            .allow_origin("http://127.0.0.1:9000")
            .allow_origin("https://app.example.com")
            .allow_origin("https://app.example.com:443");
        assert_eq!(
            p.allowed_hosts(),
            ["127.0.0.1", "localhost", "[::1]", "proxy.internal:8443"]
        );
        assert_eq!(
            p.allowed_origins(),
            ["http://127.0.0.1:9000", "https://app.example.com:443"]
        );
    }
}
