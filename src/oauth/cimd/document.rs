//! Validation of a client ID metadata document (draft-ietf-oauth-client-id-metadata-document-00 §3
//! *Client Identifier*, §4.1 *Client Metadata*; MCP 2025-11-25 *Client ID Metadata Documents*):
//! what URL may be a client id, and which documents describe a client this server accepts.
//!
//! - The URL: `https`, a path other than `/`, no `.`/`..` segments, no fragment, no user
//!   information (§3); the host a domain name, never an IP literal (what it resolves to is
//!   screened by [`super::ssrf`]).
//! - The document: a JSON object whose `client_id` equals the URL exactly (§4.1, MCP: MUST), with a
//!   non-empty `client_name` and `redirect_uris` (MCP: required), every redirect URI valid by the
//!   same rules as a registration ([`crate::oauth::redirect_uri`]). No `client_secret` (§4.1: a
//!   document is public, a secret in it is no secret). `token_endpoint_auth_method` is `none`
//!   (default) or `private_key_jwt` with exactly one of `jwks` / `jwks_uri` (RFC 7523 §2.2).
//!   Grant types only `authorization_code` / `refresh_token`; response types only `code`.

use mcp_oauth_provider::{Client, ClientOrigin, GrantType, TokenEndpointAuthMethod};
use serde_json::{Map, Value};
use url::{Host, Url};

use crate::oauth::metadata_fields;
use crate::oauth::redirect_uri::validate_for_registration;

/// Longest `client_name` accepted (it is shown on the consent page).
const MAX_CLIENT_NAME_CHARS: usize = 200;

/// True when `client_id` is to be treated as a document URL: an `https` URL. Whether it is a *valid*
/// one is [`parse_client_id_url`]'s answer (an https client id that is not valid is an error, never
/// a lookup in the store).
pub fn looks_like_document_url(client_id: &str) -> bool {
    client_id
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The client id as a URL, or why it cannot be one (§3).
pub fn parse_client_id_url(client_id: &str) -> Result<Url, String> {
    let url = Url::parse(client_id).map_err(|_| "the client_id is not a valid URL".to_string())?;
    if url.scheme() != "https" {
        return Err("a client_id URL must use https".into());
    }
    if url.as_str() != client_id {
        return Err(format!(
            "the client_id URL must be written in normalised form ({})",
            url.as_str()
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a client_id URL must not carry user information".into());
    }
    if url.fragment().is_some() {
        return Err("a client_id URL must not have a fragment".into());
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err("a client_id URL must have a path".into());
    }
    // The normalised form has no dot segments left; a percent-encoded one is refused too.
    if url.path().split('/').any(|seg| {
        let s = seg.to_ascii_lowercase();
        matches!(s.as_str(), "." | ".." | "%2e" | "%2e%2e" | ".%2e" | "%2e.")
    }) {
        return Err("a client_id URL must not have . or .. path segments".into());
    }
    match url.host() {
        Some(Host::Domain(d)) if !d.ends_with('.') => Ok(url),
        Some(Host::Domain(_)) => Err("a client_id URL host must not end with a dot".into()),
        _ => Err("a client_id URL must name a host, not an IP address".into()),
    }
}

/// How a document client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentAuth {
    /// A public client (the default).
    None,
    /// RFC 7523 §2.2 assertions signed by a key of this set (RFC 7517 JWK Set).
    PrivateKeyJwtJwks(Value),
    /// …or of the set at this https URL (fetched with the same guard as the document).
    PrivateKeyJwtJwksUri(String),
}

/// A validated document: the client as the core sees it, and its authentication.
#[derive(Debug, Clone)]
pub struct DocumentClient {
    pub client: Client,
    pub auth: DocumentAuth,
}

impl DocumentClient {
    /// True when every redirect URI is a loopback one (MCP: SHOULD warn the user).
    pub fn loopback_only(&self) -> bool {
        self.client
            .redirect_uris
            .iter()
            .all(|u| Url::parse(u).is_ok_and(|u| crate::oauth::redirect_uri::is_loopback(&u)))
    }
}

/// Bounds taken from `[registration]`.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    pub max_redirect_uris: usize,
    pub max_redirect_uri_length: usize,
}

fn string_field<'a>(doc: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    metadata_fields::string(doc, name).map_err(|e| format!("the document's {e}"))
}

fn string_list(doc: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, String> {
    metadata_fields::string_list(doc, name).map_err(|e| format!("the document's {e}"))
}

/// Validates the document fetched from `url` (the client id). Errors are for the user and the
/// client developer: they name the field.
pub fn validate(
    url: &str,
    body: &[u8],
    limits: DocumentLimits,
    fetched_at: mcp_oauth_provider::UnixTime,
) -> Result<DocumentClient, String> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|_| "the client metadata document is not valid JSON".to_string())?;
    let Value::Object(doc) = value else {
        return Err("the client metadata document must be a JSON object".into());
    };
    match string_field(&doc, "client_id")? {
        None => return Err("the client metadata document has no client_id".into()),
        Some(id) if id != url => {
            return Err("the client metadata document's client_id does not equal its URL".into());
        }
        Some(_) => {}
    }
    let name = string_field(&doc, "client_name")?
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .ok_or("the client metadata document has no client_name")?;
    // The same rule as a registration's name: nothing that makes it display as something else.
    if name.chars().any(crate::oauth::register::is_deceptive_char) {
        return Err(
            "the document's client_name must not contain control or bidirectional-formatting \
             characters"
                .into(),
        );
    }
    if name.chars().count() > MAX_CLIENT_NAME_CHARS {
        return Err(format!(
            "the document's client_name is longer than {MAX_CLIENT_NAME_CHARS} characters"
        ));
    }
    let redirect_uris = string_list(&doc, "redirect_uris")?
        .filter(|l| !l.is_empty())
        .ok_or("the client metadata document has no redirect_uris")?;
    if redirect_uris.len() > limits.max_redirect_uris {
        return Err(format!(
            "the document lists more than {} redirect_uris",
            limits.max_redirect_uris
        ));
    }
    for uri in &redirect_uris {
        if uri.len() > limits.max_redirect_uri_length {
            return Err(format!(
                "a redirect URI in the document is longer than {} bytes",
                limits.max_redirect_uri_length
            ));
        }
        validate_for_registration(uri)?;
    }
    for secret in ["client_secret", "client_secret_expires_at"] {
        if doc.contains_key(secret) {
            return Err(format!(
                "the client metadata document must not contain {secret} (a published document \
                 cannot hold a secret)"
            ));
        }
    }
    let jwks = doc.get("jwks").filter(|v| !v.is_null());
    let jwks_uri = string_field(&doc, "jwks_uri")?;
    let auth = match string_field(&doc, "token_endpoint_auth_method")?.unwrap_or("none") {
        "none" => DocumentAuth::None,
        "private_key_jwt" => match (jwks, jwks_uri) {
            (Some(set), None) => {
                if !set.get("keys").is_some_and(Value::is_array) {
                    return Err("the document's jwks must be a JWK Set ({\"keys\": [...]})".into());
                }
                DocumentAuth::PrivateKeyJwtJwks(set.clone())
            }
            (None, Some(uri)) => {
                parse_client_id_url(uri).map_err(|e| format!("jwks_uri: {e}"))?;
                DocumentAuth::PrivateKeyJwtJwksUri(uri.to_string())
            }
            (Some(_), Some(_)) => {
                return Err("the document must not have both jwks and jwks_uri".into());
            }
            (None, None) => {
                return Err("private_key_jwt needs the document's jwks or jwks_uri".into());
            }
        },
        other => {
            return Err(format!(
                "token_endpoint_auth_method {other:?} is not accepted for a client metadata \
                 document (none or private_key_jwt)"
            ));
        }
    };
    let grant_types = match string_list(&doc, "grant_types")? {
        None => vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        Some(list) => list
            .iter()
            .map(|g| match GrantType::parse(g) {
                Some(g @ (GrantType::AuthorizationCode | GrantType::RefreshToken)) => Ok(g),
                _ => Err(format!(
                    "grant type {g:?} is not accepted for a client metadata document"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    if let Some(list) = string_list(&doc, "response_types")?
        && list.iter().any(|r| r != "code")
    {
        return Err("only the code response type is accepted".into());
    }
    let scope = string_field(&doc, "scope")?.map(|s| {
        s.split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    });
    let mut extra = Map::new();
    for key in [
        "client_uri",
        "logo_uri",
        "policy_uri",
        "tos_uri",
        "software_id",
    ] {
        if let Some(v @ Value::String(_)) = doc.get(key) {
            extra.insert(key.to_string(), v.clone());
        }
    }
    Ok(DocumentClient {
        client: Client {
            client_id: url.to_string(),
            client_secret_hash: None,
            client_secret_expires_at: None,
            client_id_issued_at: fetched_at,
            client_name: Some(name.to_string()),
            redirect_uris,
            grant_types,
            response_types: vec!["code".into()],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            scope,
            extra_metadata: extra,
            // Errors reach the client's redirect URIs only through a page with a link, as for an
            // anonymous registration no user approved (RFC 9700 §4.11.2): anyone can publish a
            // document naming any redirect URI.
            origin: ClientOrigin::Registration,
            approved_at: None,
            resource_server: false,
        },
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://app.example/client.json";
    const LIMITS: DocumentLimits = DocumentLimits {
        max_redirect_uris: 10,
        max_redirect_uri_length: 2000,
    };

    fn check(doc: Value) -> Result<DocumentClient, String> {
        validate(URL, doc.to_string().as_bytes(), LIMITS, 0)
    }

    fn good() -> Value {
        json!({"client_id": URL, "client_name": "App", "redirect_uris": ["http://127.0.0.1/cb"]})
    }

    #[test]
    fn client_id_urls() {
        assert!(parse_client_id_url(URL).is_ok());
        assert!(parse_client_id_url("https://app.example:8443/c?x=1").is_ok());
        for bad in [
            "http://app.example/c",
            "https://app.example",
            "https://app.example/",
            "https://app.example/a/../c",
            "https://app.example/a/%2e%2e/c",
            "https://app.example/c#f",
            "https://u:p@app.example/c",
            "https://10.0.0.1/c",
            "https://[::1]/c",
            "https://APP.example/c",
            "https://app.example./c",
        ] {
            assert!(parse_client_id_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_minimal_document_is_a_public_client() {
        let c = check(good()).unwrap();
        assert_eq!(c.client.client_id, URL);
        assert_eq!(c.auth, DocumentAuth::None);
        assert!(c.loopback_only());
        assert!(c.client.allows_grant(GrantType::RefreshToken));
    }

    #[test]
    fn bad_documents_name_the_problem() {
        let cases: Vec<(Value, &str)> = vec![
            (json!([1]), "JSON object"),
            (
                json!({"client_name": "A", "redirect_uris": ["https://a.example/cb"]}),
                "no client_id",
            ),
            (
                json!({"client_id": "https://app.example/other.json", "client_name": "A", "redirect_uris": ["https://a.example/cb"]}),
                "does not equal",
            ),
            (
                json!({"client_id": URL, "redirect_uris": ["https://a.example/cb"]}),
                "client_name",
            ),
            (
                json!({"client_id": URL, "client_name": "A"}),
                "redirect_uris",
            ),
            (
                json!({"client_id": URL, "client_name": "Good\u{202E}txt.exe", "redirect_uris": ["https://a.example/cb"]}),
                "bidirectional",
            ),
            (
                json!({"client_id": URL, "client_name": "A", "redirect_uris": []}),
                "redirect_uris",
            ),
            (
                json!({"client_id": URL, "client_name": "A", "redirect_uris": ["http://evil.example/cb"]}),
                "loopback",
            ),
            (
                json!({"client_id": URL, "client_name": "A", "redirect_uris": ["https://a.example/cb"], "client_secret": "x"}),
                "client_secret",
            ),
            (
                json!({"client_id": URL, "client_name": "A", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_basic"}),
                "not accepted",
            ),
            (
                json!({"client_id": URL, "client_name": "A", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
                "jwks",
            ),
            (
                json!({"client_id": URL, "client_name": "A", "redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"]}),
                "grant type",
            ),
        ];
        for (doc, want) in cases {
            let err = check(doc.clone()).unwrap_err();
            assert!(err.contains(want), "{doc}: {err}");
        }
        assert!(
            validate(URL, b"not json", LIMITS, 0)
                .unwrap_err()
                .contains("JSON")
        );
    }

    #[test]
    fn private_key_jwt_with_jwks() {
        let mut doc = good();
        doc["token_endpoint_auth_method"] = json!("private_key_jwt");
        doc["jwks"] = json!({"keys": []});
        assert!(matches!(
            check(doc).unwrap().auth,
            DocumentAuth::PrivateKeyJwtJwks(_)
        ));
    }
}
