//! Client authentication at the token, revocation and introspection endpoints (RFC 6749 §2.3.1,
//! RFC 7591 §2 `token_endpoint_auth_method`): `client_secret_basic`, `client_secret_post`, and `none`
//! for public clients. Secrets are compared as SHA-256 hashes in constant time.
//!
//! A client must use the method it registered (RFC 7591 §2: `token_endpoint_auth_method` is "the
//! requested authentication method for the token endpoint"; OpenID Connect Dynamic Registration
//! §2 and RFC 9700 §2.5 expect the server to hold clients to it). A secret that leaked through
//! one channel (form bodies reach logs far more often than `Authorization` headers) is then useless
//! through the other. The mismatch is reported only after the secret was verified, so it tells an
//! outsider nothing about the client.
//!
//! A client whose id is a client metadata document URL ([`crate::oauth::cimd`]) is loaded from its
//! document. It is public (`none`) unless the document declares `private_key_jwt`, in which case it
//! authenticates with an RFC 7523 §2.2 client assertion (`client_assertion_type` +
//! `client_assertion`, RFC 7521 §4.2) verified by [`crate::oauth::cimd::private_key_jwt`].

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_oauth_provider::{Client, TokenEndpointAuthMethod, UnixTime};

use crate::error::OAuthError;
use crate::oauth::cimd::document::DocumentAuth;
use crate::oauth::cimd::private_key_jwt;
use crate::oauth::cimd::{FoundClient, LookupError, find_client};
use crate::oauth::params::{FormParams, Params};
use crate::oauth::secrets::secret_matches;
use crate::state::AppState;

/// How the client proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A public client named itself; nothing was proven.
    None,
    Post,
    Basic,
    /// An RFC 7523 client assertion signed with a key of the client's metadata document.
    PrivateKeyJwt,
}

/// An authenticated (or, for public clients, identified) client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub client: Client,
    pub method: AuthMethod,
}

impl AuthenticatedClient {
    /// True when a secret or a signed client assertion was verified.
    pub fn is_confidential(&self) -> bool {
        self.method != AuthMethod::None
    }
}

/// A form request from an authenticated client: the extractor of the token, revocation and
/// introspection endpoints. Malformed bodies and failed authentication are answered in the
/// endpoint's JSON error format before the handler runs.
pub struct ClientRequest {
    pub params: Params,
    pub client: AuthenticatedClient,
    /// The request time, read once.
    pub now: UnixTime,
}

impl FromRequest<AppState> for ClientRequest {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let headers = req.headers().clone();
        let FormParams(params) = FormParams::from_request(req, state).await?;
        let now = crate::state::now();
        let client = authenticate_client(state, &headers, &params, now).await?;
        Ok(Self {
            params,
            client,
            now,
        })
    }
}

/// Credentials taken from a `Basic` header (RFC 6749 §2.3.1: both parts form-urlencoded).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || OAuthError::invalid_client("malformed Basic authorization header");
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only Basic client authentication is accepted in the Authorization header",
        ));
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Authenticates the client of a token-endpoint-style request.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    now: UnixTime,
) -> Result<AuthenticatedClient, OAuthError> {
    let basic = basic_credentials(headers)?;
    let body_id = params.single("client_id")?;
    let body_secret = params.single("client_secret")?;
    let assertion_type = params.single("client_assertion_type")?;
    let assertion = params.single("client_assertion")?;
    if assertion_type.is_some() || assertion.is_some() {
        // RFC 6749 §2.3: one authentication method per request.
        if basic.is_some() || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        return authenticate_with_assertion(state, body_id, assertion_type, assertion, now).await;
    }
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    if basic.is_some() && body_secret.is_some() {
        return Err(OAuthError::invalid_request(
            "use one client authentication method, not two",
        ));
    }
    let (client_id, secret, method) = match (&basic, body_secret) {
        (Some((id, secret)), None) => {
            if body_id.is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_client(
                    "client_id does not match the authenticated client",
                ));
            }
            (id.as_str(), Some(secret.as_str()), AuthMethod::Basic)
        }
        (None, Some(secret)) => {
            let id = body_id.ok_or_else(|| {
                OAuthError::invalid_request("client_id is required with client_secret")
            })?;
            (id, Some(secret), AuthMethod::Post)
        }
        _ => {
            let id = body_id
                .ok_or_else(|| OAuthError::invalid_client("client authentication is required"))?;
            (id, None, AuthMethod::None)
        }
    };
    let found = find_client(state, client_id)
        .await
        .map_err(LookupError::oauth)?
        .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
    if found
        .document()
        .is_some_and(|d| d.auth != DocumentAuth::None)
    {
        return Err(OAuthError::invalid_client(
            "this client's metadata document declares private_key_jwt: authenticate with a client \
             assertion",
        ));
    }
    let client = found.into_client();
    match (&client.client_secret_hash, secret) {
        (Some(hash), Some(secret)) => {
            if !secret_matches(secret, hash) {
                return Err(OAuthError::invalid_client("client authentication failed"));
            }
            if client
                .client_secret_expires_at
                .is_some_and(|exp| exp != 0 && exp <= now)
            {
                return Err(OAuthError::invalid_client("the client secret has expired"));
            }
        }
        (Some(_), None) => {
            return Err(OAuthError::invalid_client(
                "this client must authenticate with its secret",
            ));
        }
        (None, Some(_)) => {
            return Err(OAuthError::invalid_client(
                "this public client has no secret",
            ));
        }
        (None, None) => {}
    }
    let registered = match client.token_endpoint_auth_method {
        TokenEndpointAuthMethod::None => AuthMethod::None,
        TokenEndpointAuthMethod::ClientSecretPost => AuthMethod::Post,
        TokenEndpointAuthMethod::ClientSecretBasic => AuthMethod::Basic,
    };
    if method != registered {
        return Err(OAuthError::invalid_client(format!(
            "this client is registered for token_endpoint_auth_method {}",
            client.token_endpoint_auth_method.as_str()
        )));
    }
    Ok(AuthenticatedClient { client, method })
}

/// RFC 7523 §2.2 client authentication: only document clients that declare `private_key_jwt`.
async fn authenticate_with_assertion(
    state: &AppState,
    body_id: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
    now: UnixTime,
) -> Result<AuthenticatedClient, OAuthError> {
    if assertion_type != Some(private_key_jwt::ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(format!(
            "client_assertion_type must be {}",
            private_key_jwt::ASSERTION_TYPE
        )));
    }
    let assertion =
        assertion.ok_or_else(|| OAuthError::invalid_request("client_assertion is required"))?;
    // RFC 7521 §4.2: client_id is optional next to an assertion; the assertion's iss names it (and
    // is then verified to equal it).
    let client_id = match body_id {
        Some(id) => id.to_string(),
        None => private_key_jwt::unverified_issuer(assertion)
            .ok_or_else(|| OAuthError::invalid_client("the client assertion names no issuer"))?,
    };
    if !state.cimd.handles(&client_id) {
        return Err(OAuthError::invalid_client(
            "client assertions are accepted only from clients identified by a metadata document",
        ));
    }
    let Some(FoundClient::Document(doc)) = find_client(state, &client_id)
        .await
        .map_err(LookupError::oauth)?
    else {
        return Err(OAuthError::invalid_client("client authentication failed"));
    };
    private_key_jwt::verify(state, &doc, assertion, now).await?;
    Ok(AuthenticatedClient {
        client: doc.client,
        method: AuthMethod::PrivateKeyJwt,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn basic_header_parsing() {
        let mut h = HeaderMap::new();
        // "my%20id:s%3Acret" → id "my id", secret "s:cret" (RFC 6749 §2.3.1 form-encoding).
        let v = format!("Basic {}", STANDARD.encode("my%20id:s%3Acret"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        assert_eq!(
            basic_credentials(&h).unwrap(),
            Some(("my id".into(), "s:cret".into()))
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).is_err());
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert!(basic_credentials(&h).is_err());
    }
}
