//! Redirect URIs: what may be registered, and how a requested URI is matched against the registered
//! ones.
//!
//! - MCP authorization, *Communication Security*: redirect URIs MUST be localhost or https.
//! - RFC 6749 §3.1.2: absolute, no fragment.
//! - OAuth 2.1 §4.1.1 / MCP *Open Redirection*: exact string match against registered values, except
//!   that for loopback http redirect URIs the port may differ (RFC 8252 §7.3: native apps bind an
//!   ephemeral port). Even then the rest is compared as text, never after parsing: the requested
//!   URI must be the registered one with only the port changed.
//! - RFC 9700 §4.1.3 / §2.1 (exact matching) and OWASP *Unvalidated Redirects and Forwards*: a URI
//!   that parsers may read differently is refused at registration. Its text must equal its
//!   normalised form (WHATWG URL, as browsers parse it), which rules out `.` and `..` segments (also
//!   percent-encoded), backslashes, upper-case schemes and hosts, default ports and odd IPv4 forms
//!   (`0x7f.1`, `2130706433`); and the host must not be an IP address other than a loopback literal,
//!   end in a dot, or come with user information.

use url::{Host, Url};

/// Why a redirect URI cannot be registered.
pub fn validate_for_registration(uri: &str) -> Result<(), String> {
    if uri.contains('#') {
        return Err(format!("redirect URI must not contain a fragment: {uri}"));
    }
    let url = Url::parse(uri).map_err(|_| format!("redirect URI is not an absolute URI: {uri}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("redirect URI must not carry credentials: {uri}"));
    }
    if url.as_str() != uri {
        return Err(format!(
            "redirect URI must be written in normalised form ({}), as it is compared as text: {uri}",
            url.as_str()
        ));
    }
    match url.host() {
        Some(Host::Ipv4(ip)) if !ip.is_loopback() => {
            return Err(format!(
                "redirect URI must name a host, not an IP address (loopback literals aside): {uri}"
            ));
        }
        Some(Host::Ipv6(ip)) if !ip.is_loopback() => {
            return Err(format!(
                "redirect URI must name a host, not an IP address (loopback literals aside): {uri}"
            ));
        }
        Some(Host::Domain(d)) if d.ends_with('.') => {
            return Err(format!("redirect URI host must not end with a dot: {uri}"));
        }
        _ => {}
    }
    match url.scheme() {
        // WHATWG URL parsing gives every https URL a host; nothing more to check here.
        "https" => Ok(()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(format!(
            "http redirect URIs are allowed only for loopback hosts: {uri}"
        )),
        _ => Err(format!(
            "redirect URI must use https (or http on a loopback host): {uri}"
        )),
    }
}

pub use mcp_oauth_resource::uri::is_loopback;

/// True when `requested` may be used in place of the registered `registered`.
pub fn matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    // RFC 8252 §7.3: loopback http URIs match whatever the port. Only the port may differ: the
    // registered URI with the requested port must be the requested text exactly.
    let (Ok(mut reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    if reg.scheme() != "http" || !is_loopback(&reg) || req.as_str() != requested {
        return false;
    }
    reg.set_port(req.port()).is_ok() && reg.as_str() == requested
}

/// The registered URI `requested` matches, if any.
pub fn find_match<'a>(registered: &'a [String], requested: &str) -> Option<&'a str> {
    registered
        .iter()
        .map(String::as_str)
        .find(|r| matches(r, requested))
}

/// Appends response parameters to a redirect URI, keeping its own query (RFC 6749 §3.1.2).
pub fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in params {
                    q.append_pair(k, v);
                }
            }
            url.into()
        }
        // Only validated URIs reach here; fall back to plain concatenation rather than failing.
        Err(_) => {
            let sep = if redirect_uri.contains('?') { '&' } else { '?' };
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish();
            format!("{redirect_uri}{sep}{query}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(validate_for_registration("https://app.example/cb").is_ok());
        assert!(validate_for_registration("http://127.0.0.1:8765/callback").is_ok());
        assert!(validate_for_registration("http://localhost/callback").is_ok());
        assert!(validate_for_registration("http://[::1]:9/cb").is_ok());
        assert!(
            validate_for_registration("http://app.example/cb")
                .unwrap_err()
                .contains("only for loopback hosts")
        );
        assert!(
            validate_for_registration("ftp://app.example/cb")
                .unwrap_err()
                .contains("must use https")
        );
        assert!(validate_for_registration("https://app.example/cb#frag").is_err());
        assert!(validate_for_registration("javascript:alert(1)").is_err());
        assert!(validate_for_registration("com.example.app:/cb").is_err());
        assert!(validate_for_registration("/relative").is_err());
        assert!(validate_for_registration("https://user:pw@app.example/cb").is_err());
        assert!(validate_for_registration("https://user@app.example/cb").is_err());
    }

    #[test]
    fn registration_refuses_what_parsers_read_differently() {
        for bad in [
            "https://app.example/cb/../evil",
            "https://app.example/a/%2e%2e/cb",
            "https://app.example/./cb",
            "https://app.example\\cb",
            "https://app.example\\@evil.example/cb",
            "HTTPS://app.example/cb",
            "https://App.Example/cb",
            "https://app.example:443/cb",
            "https://app.example",
            "https://3232235777/cb",
            "https://0x7f.1/cb",
            "https://192.168.1.10/cb",
            "https://[2001:db8::1]/cb",
            "https://app.example./cb",
            "http://localhost./cb",
        ] {
            let err = validate_for_registration(bad).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        assert!(
            validate_for_registration("https://app.example/a/../b")
                .unwrap_err()
                .contains("normalised form (https://app.example/b)")
        );
        for good in [
            "https://app.example/cb?x=1&y=%20",
            "http://127.0.0.2:8080/cb",
            "http://[::1]/cb",
            "https://app.example/",
        ] {
            assert!(validate_for_registration(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn exact_match_except_loopback_port() {
        assert!(matches("https://app.example/cb", "https://app.example/cb"));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb/"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
        assert!(!matches(
            "https://app.example/cb",
            "https://app.example/cb?x=1"
        ));
        assert!(matches("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"));
        assert!(matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:4000/cb"
        ));
        assert!(matches(
            "http://localhost:3000/cb",
            "http://localhost:4000/cb"
        ));
        assert!(!matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:4000/other"
        ));
        assert!(!matches(
            "http://127.0.0.1:3000/cb",
            "http://localhost:3000/cb"
        ));
        assert!(!matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1.evil.example:3000/cb"
        ));
        // Only the port may differ, and the rest is compared as text.
        for other in [
            "http://127.0.0.1:4000/x/../cb",
            "http://127.0.0.1:4000/%2e/cb",
            "http://127.0.0.1:4000\\cb",
            "http://0x7f000001:4000/cb",
            "http://127.1:4000/cb",
            "HTTP://127.0.0.1:4000/cb",
            "http://127.0.0.1:4000/cb#f",
            "http://u@127.0.0.1:4000/cb",
            "http://127.0.0.1:4000/cb?x=1",
        ] {
            assert!(!matches("http://127.0.0.1:3000/cb", other), "{other}");
        }
        assert!(!matches(
            "https://127.0.0.1:3000/cb",
            "https://127.0.0.1:4000/cb"
        ));
        assert!(!matches(
            "http://app.example:3000/cb",
            "http://app.example:4000/cb"
        ));
        assert!(matches("http://[::1]:3000/cb", "http://[::1]:4000/cb"));
        assert!(matches(
            "http://127.0.0.1:3000/cb?a=1",
            "http://127.0.0.1:4000/cb?a=1"
        ));
    }

    #[test]
    fn find_match_returns_the_registered_uri() {
        let registered = vec![
            "https://app.example/cb".to_string(),
            "http://127.0.0.1/cb".to_string(),
        ];
        assert_eq!(
            find_match(&registered, "https://app.example/cb"),
            Some("https://app.example/cb")
        );
        assert_eq!(
            find_match(&registered, "http://127.0.0.1:5000/cb"),
            Some("http://127.0.0.1/cb")
        );
        assert_eq!(find_match(&registered, "https://app.example/other"), None);
    }

    #[test]
    fn params_are_appended_to_existing_query() {
        let u = with_params(
            "https://app.example/cb?x=1",
            &[("code", "a b"), ("state", "<s>")],
        );
        assert_eq!(u, "https://app.example/cb?x=1&code=a+b&state=%3Cs%3E");
    }
}
