//! The `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3, RFC 9728 §5.1, RFC 9110 §11.6.1):
//! `resource_metadata`, `scope`, `error`, `error_description`. Quoted strings may hold commas and
//! backslash escapes; parameter names are case-insensitive; other schemes are skipped.

/// What a 401 or 403 told the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Challenge {
    /// RFC 9728 §5.1: where the protected-resource metadata is.
    pub resource_metadata: Option<String>,
    /// The scopes the resource wants (MCP *Scope Selection Strategy*: authoritative).
    pub scope: Option<Vec<String>>,
    /// `invalid_token`, `insufficient_scope`, …
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl Challenge {
    /// Parses the Bearer challenge in a `WWW-Authenticate` value; an empty challenge when there is
    /// none.
    pub fn parse(header: &str) -> Challenge {
        let mut out = Challenge::default();
        let mut in_bearer = false;
        for item in split_items(header) {
            let (name, value) = match item {
                Item::Scheme(s, first) => {
                    in_bearer = s.eq_ignore_ascii_case("bearer");
                    match first {
                        Some(p) => p,
                        None => continue,
                    }
                }
                Item::Param(name, value) => (name, value),
            };
            if !in_bearer {
                continue;
            }
            match name.to_ascii_lowercase().as_str() {
                "resource_metadata" => out.resource_metadata = Some(value),
                "scope" => {
                    out.scope = Some(value.split_whitespace().map(str::to_string).collect());
                }
                "error" => out.error = Some(value),
                "error_description" => out.error_description = Some(value),
                _ => {}
            }
        }
        out
    }

    pub fn is_insufficient_scope(&self) -> bool {
        self.error.as_deref() == Some("insufficient_scope")
    }
}

enum Item {
    /// A scheme name and, when it was followed directly by one, its first parameter.
    Scheme(String, Option<(String, String)>),
    Param(String, String),
}

/// Splits the header into schemes and `name=value` parameters.
fn split_items(header: &str) -> Vec<Item> {
    let chars: Vec<char> = header.chars().collect();
    let mut i = 0;
    let mut items = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && (chars[*i].is_whitespace() || chars[*i] == ',') {
            *i += 1;
        }
    };
    let read_token = |i: &mut usize| {
        let start = *i;
        while *i < chars.len() && !chars[*i].is_whitespace() && chars[*i] != ',' && chars[*i] != '='
        {
            *i += 1;
        }
        chars[start..*i].iter().collect::<String>()
    };
    let read_value = |i: &mut usize| {
        if *i < chars.len() && chars[*i] == '"' {
            *i += 1;
            let mut v = String::new();
            while *i < chars.len() && chars[*i] != '"' {
                if chars[*i] == '\\' && *i + 1 < chars.len() {
                    *i += 1;
                }
                v.push(chars[*i]);
                *i += 1;
            }
            *i += 1; // closing quote
            v
        } else {
            let start = *i;
            while *i < chars.len() && chars[*i] != ',' && !chars[*i].is_whitespace() {
                *i += 1;
            }
            chars[start..*i].iter().collect()
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let token = read_token(&mut i);
        // `name = value` (whitespace around `=` is tolerated).
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        if j < chars.len() && chars[j] == '=' {
            i = j + 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let value = read_value(&mut i);
            items.push(Item::Param(token, value));
            continue;
        }
        if token.is_empty() {
            i += 1;
            continue;
        }
        // A scheme; a parameter may follow directly (`Bearer realm="x"`).
        let mut k = i;
        while k < chars.len() && chars[k] == ' ' {
            k += 1;
        }
        let save = k;
        let name = read_token(&mut k);
        let mut m = k;
        while m < chars.len() && chars[m] == ' ' {
            m += 1;
        }
        if !name.is_empty() && m < chars.len() && chars[m] == '=' {
            let mut v = m + 1;
            while v < chars.len() && chars[v] == ' ' {
                v += 1;
            }
            let value = read_value(&mut v);
            i = v;
            items.push(Item::Scheme(token, Some((name, value))));
        } else {
            i = save;
            items.push(Item::Scheme(token, None));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quoted_unquoted_and_commas_inside_quotes() {
        let c = Challenge::parse(
            r#"Bearer resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp", scope="mcp:tools mcp:admin", error=insufficient_scope, error_description="needs a, b and \"c\"""#,
        );
        assert_eq!(
            c.resource_metadata.as_deref(),
            Some("http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            c.scope,
            Some(vec!["mcp:tools".to_string(), "mcp:admin".to_string()])
        );
        assert!(c.is_insufficient_scope());
        assert_eq!(
            c.error_description.as_deref(),
            Some(r#"needs a, b and "c""#)
        );
    }

    #[test]
    fn only_the_bearer_challenge_counts() {
        let c = Challenge::parse(r#"Basic realm="x", scope="no", Bearer scope="yes""#);
        assert_eq!(c.scope, Some(vec!["yes".to_string()]));
        assert_eq!(Challenge::parse("Bearer"), Challenge::default());
        let c = Challenge::parse("bearer realm=\"r\",error=\"invalid_token\"");
        assert_eq!(c.error.as_deref(), Some("invalid_token"));
        assert_eq!(Challenge::parse(""), Challenge::default());
    }
}
