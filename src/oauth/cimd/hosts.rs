//! `[registration] cimd_allowed_hosts`: the host policy for client ID metadata document URLs
//! (draft-ietf-oauth-client-id-metadata-document-00 §6: an authorization server MAY restrict the
//! hosts it accepts client ids from). A pattern is a host name (`app.example.com`) or a wildcard for
//! the names below a domain (`*.example.com`, which does not match `example.com` itself).

/// One parsed host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// `*.suffix`: stored as `.suffix`.
    Below(String),
}

impl HostPattern {
    /// Parses a pattern; names are compared in lowercase.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim().to_ascii_lowercase();
        let (below, name) = match p.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, p.clone()),
        };
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(format!(
                "{pattern:?} is not a host name or *.domain pattern (no scheme, port or path)"
            ));
        }
        Ok(if below {
            Self::Below(format!(".{name}"))
        } else {
            Self::Exact(name)
        })
    }

    /// True when `host` (already lowercase, as `url` gives it) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => host == name,
            Self::Below(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// The configured policy: empty = every host.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy(Vec<HostPattern>);

impl HostPolicy {
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        patterns
            .iter()
            .map(|p| HostPattern::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn allows(&self, host: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| p.matches(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_wildcard_patterns() {
        let policy =
            HostPolicy::parse(&["App.Example.com".into(), "*.clients.example".into()]).unwrap();
        assert!(policy.allows("app.example.com"));
        assert!(!policy.allows("evil-app.example.com"));
        assert!(policy.allows("a.clients.example"));
        assert!(policy.allows("a.b.clients.example"));
        assert!(!policy.allows("clients.example"), "*.x does not match x");
        assert!(!policy.allows("evilclients.example"));
        assert!(HostPolicy::default().allows("anything.example"));
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "",
            "https://a.example",
            "a.example:443",
            "a.example/x",
            "*",
            "a..b",
            "*.*.a",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad:?}");
        }
    }
}
