//! Protected resources (RFC 8707 resource indicators) and scopes.
//!
//! Each MCP server the authorization server protects is declared once in `[[resources]]`. A `resource`
//! parameter must name one of them, else `invalid_target` (RFC 8707 §2); the access token's `aud` is
//! that resource's canonical URI. When a client sends no `resource` and exactly one resource is
//! declared, that one is used.

pub use mcp_oauth_resource::uri::{Resource, canonical_uri, is_valid_scope_token};

use crate::error::OAuthError;

/// All declared resources.
#[derive(Debug, Clone, Default)]
pub struct Resources {
    list: Vec<Resource>,
}

impl Resources {
    pub fn new(list: Vec<Resource>) -> Self {
        Self { list }
    }

    pub fn all(&self) -> &[Resource] {
        &self.list
    }

    /// Resolves a `resource` parameter: a declared resource, or the only one when none was sent.
    pub fn resolve(&self, requested: Option<&str>) -> Result<&Resource, OAuthError> {
        match requested {
            Some(raw) => {
                let canonical = canonical_uri(raw).map_err(OAuthError::invalid_target)?;
                self.list
                    .iter()
                    .find(|r| r.uri == canonical)
                    .ok_or_else(|| {
                        OAuthError::invalid_target(
                            "the requested resource is not served by this authorization server",
                        )
                    })
            }
            None => match self.list.as_slice() {
                [only] => Ok(only),
                [] => Err(OAuthError::invalid_target(
                    "no protected resources are configured",
                )),
                _ => Err(OAuthError::invalid_target(
                    "several resources are served here: the resource parameter is required",
                )),
            },
        }
    }

    /// Every scope of every resource, deduplicated, in declaration order.
    pub fn all_scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.list.iter().flat_map(|r| r.scopes.iter()) {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }
}

/// Parses a space-separated scope string, deduplicated, order kept.
pub fn parse_scope(raw: &str) -> Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for token in raw.split(' ').filter(|t| !t.is_empty()) {
        if !is_valid_scope_token(token) {
            return Err(OAuthError::invalid_scope(
                "the scope parameter contains an invalid character",
            ));
        }
        if !out.iter().any(|s| s == token) {
            out.push(token.to_string());
        }
    }
    Ok(out)
}

/// How a client's registered `scope` (RFC 7591 §2) bounds a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientScope {
    /// The registered scope is only the default. Used where a user consents (authorization code):
    /// MCP clients register with the scope of their first challenge and later step up to more
    /// (MCP *Scope Challenge Handling*); the user, the user's own limits and the resource decide.
    Default,
    /// The registered scope is an explicit allow-list. Used where no user is involved (client
    /// credentials): a client that registered no scope gets none, never "all" (issue 8 §1).
    Limit,
}

/// The scopes of a request for `resource` by a client registered with `client_scope`: the requested
/// ones, which must all be offered by the resource (`invalid_scope`) and, under
/// [`ClientScope::Limit`], on the client's allow-list (`None` = an empty list); when none are
/// requested, the resource scopes the client registered (under [`ClientScope::Default`], all of them
/// when it registered none).
pub fn select_scopes(
    resource: &Resource,
    client_scope: Option<&[String]>,
    requested: Option<&str>,
    rule: ClientScope,
) -> Result<Vec<String>, OAuthError> {
    let client_scope: Option<&[String]> = match rule {
        ClientScope::Limit => Some(client_scope.unwrap_or(&[])),
        ClientScope::Default => client_scope,
    };
    let scopes = match requested {
        Some(raw) => parse_scope(raw)?,
        None => resource
            .scopes
            .iter()
            .filter(|s| client_scope.is_none_or(|allowed| allowed.contains(s)))
            .cloned()
            .collect(),
    };
    if let Some(bad) = scopes.iter().find(|s| !resource.scopes.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "scope {bad:?} is not offered by {}",
            resource.uri
        )));
    }
    if rule == ClientScope::Limit
        && let Some(allowed) = client_scope
        && let Some(bad) = scopes.iter().find(|s| !allowed.contains(s))
    {
        return Err(OAuthError::invalid_scope(format!(
            "this client may not request scope {bad:?}"
        )));
    }
    Ok(scopes)
}

/// Space-joined scope string.
pub fn join_scope(scopes: &[String]) -> String {
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_allow_list_a_machine_client_gets_no_scope() {
        let r = Resource {
            uri: "http://127.0.0.1:9000/mcp".into(),
            name: "x".into(),
            scopes: vec!["mcp:tools".into(), "mcp:admin".into()],
        };
        assert_eq!(
            select_scopes(&r, None, None, ClientScope::Limit).unwrap(),
            Vec::<String>::new()
        );
        assert!(select_scopes(&r, None, Some("mcp:tools"), ClientScope::Limit).is_err());
        let allowed = vec!["mcp:tools".to_string()];
        assert_eq!(
            select_scopes(&r, Some(&allowed), None, ClientScope::Limit).unwrap(),
            allowed
        );
        assert!(select_scopes(&r, Some(&allowed), Some("mcp:admin"), ClientScope::Limit).is_err());
        // Where a user consents, no registered scope means the resource's scopes.
        assert_eq!(
            select_scopes(&r, None, None, ClientScope::Default).unwrap(),
            r.scopes
        );
    }

    fn res(uri: &str) -> Resource {
        Resource {
            uri: canonical_uri(uri).unwrap_or_default(),
            name: "x".into(),
            scopes: vec!["a".into()],
        }
    }

    #[test]
    fn resolve_rules() {
        let one = Resources::new(vec![res("http://127.0.0.1:9000/mcp")]);
        assert_eq!(
            one.resolve(None).map(|r| r.uri.as_str()).ok(),
            Some("http://127.0.0.1:9000/mcp")
        );
        assert!(one.resolve(Some("HTTP://127.0.0.1:9000/mcp")).is_ok());
        let err = one
            .resolve(Some("http://127.0.0.1:9000/other"))
            .err()
            .map(|e| e.code);
        assert_eq!(err, Some(crate::error::ErrorCode::InvalidTarget));
        let two = Resources::new(vec![res("http://a/mcp"), res("http://b/mcp")]);
        assert!(two.resolve(None).is_err());
    }

    #[test]
    fn scope_parsing() {
        assert_eq!(
            parse_scope("a  b a").ok(),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert!(parse_scope("a\"b").is_err());
        assert!(parse_scope("a\\b").is_err());
    }
}
