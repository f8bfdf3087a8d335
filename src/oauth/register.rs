//! `POST /register`: OAuth 2.0 Dynamic Client Registration (RFC 7591 §3).
//!
//! - §2: client metadata; defaults `token_endpoint_auth_method = client_secret_basic`,
//!   `grant_types = [authorization_code]`, `response_types = [code]`.
//! - §3.2.1: 201 with the registered metadata, `client_id`, `client_id_issued_at` and, for confidential
//!   clients, `client_secret` and `client_secret_expires_at` (0 = never).
//! - §3.2.2: `invalid_redirect_uri` and `invalid_client_metadata` errors. Nothing is stored when the
//!   request is refused.
//! - MCP: redirect URIs must be https or loopback; public clients (`none`) are first-class.
//! - Registration policy (issue 8 §1, DESIGN §4 "Secure by default"): open registration admits only
//!   `authorization_code` + `refresh_token` clients. A client with no user behind it
//!   (`client_credentials`) comes from an administrator or from a registration presenting the
//!   RFC 7591 §3 initial access token (compared in constant time); with `[registration] open =
//!   false` every registration needs that token. A bad token is RFC 6750 §3.1 `invalid_token` (401).
//! - Bounded metadata: number and length of redirect URIs, request size, no control or bidi
//!   characters in `client_name`, informational URIs (`client_uri`, `logo_uri`, `policy_uri`,
//!   `tos_uri`) https only. Unapproved anonymous registrations are purged after
//!   `[registration] unused_client_ttl`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{Client, ClientOrigin, GrantType, TokenEndpointAuthMethod};
use serde_json::{Map, Value};

use crate::config::RegistrationSettings;
use crate::error::{ErrorCode, OAuthError, no_store_headers};
use crate::oauth::metadata_fields;
use crate::oauth::policy;
use crate::oauth::redirect_uri::validate_for_registration;
use crate::oauth::resources::{Resources, parse_scope};
use crate::oauth::secrets::{constant_time_eq, hash_secret, new_secret};
use crate::state::{AppState, now};

/// Informational URIs a consent page may show or link: https only (RFC 7591 §2 lets servers refuse
/// metadata they consider unsafe).
const INFORMATIONAL_URIS: &[&str] = &["client_uri", "logo_uri", "tos_uri", "policy_uri"];

/// Longest `client_name`, in characters.
const MAX_CLIENT_NAME_CHARS: usize = 200;

/// What a registration may do and hold (`[registration]`).
#[derive(Clone)]
pub struct RegistrationPolicy {
    pub open: bool,
    initial_access_token: Option<String>,
    /// Seconds an anonymous registration may stay unapproved.
    pub unused_client_ttl: i64,
    pub max_redirect_uris: usize,
    pub max_redirect_uri_length: usize,
    pub max_request_bytes: usize,
}

impl std::fmt::Debug for RegistrationPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationPolicy")
            .field("open", &self.open)
            .field("initial_access_token", &self.initial_access_token.is_some())
            .finish_non_exhaustive()
    }
}

impl RegistrationPolicy {
    pub fn from_settings(settings: &RegistrationSettings) -> anyhow::Result<Self> {
        Ok(Self {
            open: settings.open,
            initial_access_token: settings.initial_access_token()?,
            unused_client_ttl: i64::try_from(settings.unused_client_ttl.as_secs())
                .unwrap_or(i64::MAX),
            max_redirect_uris: settings.max_redirect_uris,
            max_redirect_uri_length: settings.max_redirect_uri_length,
            max_request_bytes: settings.max_request_bytes,
        })
    }

    /// Who is registering: anonymous, or the holder of the initial access token. A presented but
    /// wrong token is an error (RFC 6750 §3.1), never a silent downgrade to anonymous.
    pub fn registrant(&self, headers: &HeaderMap) -> Result<ClientOrigin, OAuthError> {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            if self.open {
                return Ok(ClientOrigin::Registration);
            }
            return Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "registration requires an initial access token (RFC 7591 §3)",
            ));
        };
        let presented = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            })
            .map(|(_, token)| token.trim());
        match (presented, &self.initial_access_token) {
            (Some(token), Some(expected)) if constant_time_eq(token, expected) => {
                Ok(ClientOrigin::InitialAccessToken)
            }
            _ => Err(OAuthError::new(
                ErrorCode::InvalidToken,
                "the initial access token is not valid",
            )),
        }
    }
}

/// Metadata we store and echo as given (strings, or arrays of strings).
const PASSTHROUGH: &[&str] = &[
    "client_uri",
    "logo_uri",
    "tos_uri",
    "policy_uri",
    "contacts",
    "software_id",
    "software_version",
    "application_type",
];

fn metadata_error(msg: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidClientMetadata, msg.into())
}

fn string_field(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, OAuthError> {
    metadata_fields::string(obj, key)
        .map(|s| s.map(str::to_string))
        .map_err(metadata_error)
}

fn string_list(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, OAuthError> {
    metadata_fields::string_list(obj, key).map_err(metadata_error)
}

/// True for characters that must not appear in a name shown to users: C0/C1 controls and the
/// Unicode bidirectional controls and invisible formatters that let a name display as something
/// else (Unicode TR #9; CVE-2021-42574 "Trojan Source").
pub(crate) fn is_deceptive_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// Validates the request metadata into a client (with its plain secret, if any). `origin` says who
/// registers: only an administrator or the initial-access-token holder may create
/// `client_credentials` clients.
pub fn client_from_metadata(
    resources: &Resources,
    policy: &RegistrationPolicy,
    origin: ClientOrigin,
    body: &Value,
    issued_at: i64,
) -> Result<(Client, Option<String>), OAuthError> {
    let obj = body.as_object().ok_or_else(|| {
        OAuthError::invalid_request("the registration request must be a JSON object")
    })?;

    let auth_method = match string_field(obj, "token_endpoint_auth_method")? {
        None => TokenEndpointAuthMethod::ClientSecretBasic,
        Some(m) => TokenEndpointAuthMethod::parse(&m).ok_or_else(|| {
            metadata_error(format!("token_endpoint_auth_method {m:?} is not supported"))
        })?,
    };
    let grant_types: Vec<GrantType> = match string_list(obj, "grant_types")? {
        None => vec![GrantType::AuthorizationCode],
        Some(names) => names
            .iter()
            .map(|g| {
                GrantType::parse(g)
                    .ok_or_else(|| metadata_error(format!("grant type {g:?} is not supported")))
            })
            .collect::<Result<_, _>>()?,
    };
    if grant_types.is_empty() {
        return Err(metadata_error("grant_types must not be empty"));
    }
    if grant_types.contains(&GrantType::ClientCredentials) {
        if !auth_method.is_confidential() {
            return Err(metadata_error(
                "client_credentials requires a confidential client (not token_endpoint_auth_method none)",
            ));
        }
        if origin == ClientOrigin::Registration {
            return Err(metadata_error(
                "open registration admits only authorization_code and refresh_token clients; a \
                 client_credentials client is created by an administrator or with the initial \
                 access token",
            ));
        }
    }
    let uses_code = grant_types.contains(&GrantType::AuthorizationCode);
    let response_types = string_list(obj, "response_types")?.unwrap_or_else(|| {
        if uses_code {
            vec!["code".into()]
        } else {
            vec![]
        }
    });
    for r in &response_types {
        if r != "code" {
            return Err(metadata_error(format!(
                "response type {r:?} is not supported (only \"code\")"
            )));
        }
    }
    if uses_code != response_types.iter().any(|r| r == "code") {
        return Err(metadata_error(
            "grant_types authorization_code and response_types code go together (RFC 7591 §2.1)",
        ));
    }

    let redirect_uris = string_list(obj, "redirect_uris")?.unwrap_or_default();
    if uses_code && redirect_uris.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            "redirect_uris is required for the authorization_code grant",
        ));
    }
    if redirect_uris.len() > policy.max_redirect_uris {
        return Err(OAuthError::new(
            ErrorCode::InvalidRedirectUri,
            format!(
                "at most {} redirect URIs may be registered",
                policy.max_redirect_uris
            ),
        ));
    }
    for uri in &redirect_uris {
        if uri.len() > policy.max_redirect_uri_length {
            return Err(OAuthError::new(
                ErrorCode::InvalidRedirectUri,
                format!(
                    "a redirect URI is longer than {} characters",
                    policy.max_redirect_uri_length
                ),
            ));
        }
        validate_for_registration(uri)
            .map_err(|msg| OAuthError::new(ErrorCode::InvalidRedirectUri, msg))?;
    }

    let scope = match string_field(obj, "scope")? {
        None => None,
        Some(raw) => {
            let scopes = parse_scope(&raw)
                .map_err(|_| metadata_error("scope contains an invalid character"))?;
            let supported = resources.all_scopes();
            if let Some(bad) = scopes.iter().find(|s| !supported.contains(s)) {
                return Err(metadata_error(format!(
                    "scope {bad:?} is not supported by this server"
                )));
            }
            Some(scopes)
        }
    };
    let client_name = string_field(obj, "client_name")?;
    if let Some(name) = &client_name {
        if name.chars().count() > MAX_CLIENT_NAME_CHARS {
            return Err(metadata_error(format!(
                "client_name is longer than {MAX_CLIENT_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(is_deceptive_char) {
            return Err(metadata_error(
                "client_name must not contain control or bidirectional-formatting characters",
            ));
        }
    }
    for key in INFORMATIONAL_URIS {
        if let Some(uri) = string_field(obj, key)? {
            let ok = uri.len() <= policy.max_redirect_uri_length
                && url::Url::parse(&uri).is_ok_and(|u| u.scheme() == "https" && u.host().is_some());
            if !ok {
                return Err(metadata_error(format!("{key} must be an https URL")));
            }
        }
    }

    let mut extra = Map::new();
    for key in PASSTHROUGH {
        match obj.get(*key) {
            None | Some(Value::Null) => {}
            Some(v @ Value::String(_)) => {
                extra.insert((*key).to_string(), v.clone());
            }
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                extra.insert((*key).to_string(), Value::Array(items.clone()));
            }
            Some(_) => {
                return Err(metadata_error(format!(
                    "{key} must be a string or an array of strings"
                )));
            }
        }
    }

    let secret = auth_method.is_confidential().then(new_secret);
    let client = Client {
        client_id: uuid::Uuid::new_v4().to_string(),
        client_secret_hash: secret.as_deref().map(hash_secret),
        client_secret_expires_at: None,
        client_id_issued_at: issued_at,
        client_name,
        redirect_uris,
        grant_types,
        response_types,
        token_endpoint_auth_method: auth_method,
        scope,
        extra_metadata: extra,
        origin,
        approved_at: None,
        resource_server: false,
    };
    Ok((client, secret))
}

/// The registration response body (RFC 7591 §3.2.1). The secret appears only here, once.
pub fn client_information(client: &Client, secret: Option<&str>) -> Value {
    let mut out = client.extra_metadata.clone();
    out.insert("client_id".into(), client.client_id.clone().into());
    out.insert(
        "client_id_issued_at".into(),
        client.client_id_issued_at.into(),
    );
    if let Some(secret) = secret {
        out.insert("client_secret".into(), secret.into());
        out.insert(
            "client_secret_expires_at".into(),
            client.client_secret_expires_at.unwrap_or(0).into(),
        );
    }
    if let Some(name) = &client.client_name {
        out.insert("client_name".into(), name.clone().into());
    }
    out.insert("redirect_uris".into(), client.redirect_uris.clone().into());
    out.insert(
        "grant_types".into(),
        client
            .grant_types
            .iter()
            .map(|g| g.as_str())
            .collect::<Vec<_>>()
            .into(),
    );
    out.insert(
        "response_types".into(),
        client.response_types.clone().into(),
    );
    out.insert(
        "token_endpoint_auth_method".into(),
        client.token_endpoint_auth_method.as_str().into(),
    );
    if let Some(scope) = &client.scope {
        out.insert("scope".into(), scope.join(" ").into());
    }
    Value::Object(out)
}

/// `POST /register`.
pub async fn register_post(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, OAuthError> {
    let origin = state.registration.registrant(req.headers())?;
    let limit = state.registration.max_request_bytes;
    let body = axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| {
            OAuthError::invalid_request(format!(
                "the registration request is unreadable or larger than {limit} bytes \
                 ([registration] max_request_bytes)"
            ))
        })?;
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::invalid_request(format!("the request body is not valid JSON: {e}"))
    })?;
    let (client, secret) =
        client_from_metadata(&state.resources, &state.registration, origin, &json, now())?;
    policy::allow_registration(state.provider.policy(), &client).await?;
    state
        .provider
        .clients()
        .insert_client(client.clone())
        .await?;
    tracing::info!(client_id = %client.client_id, public = secret.is_none(), origin = client.origin.as_str(), "registered a client");
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(client_information(&client, secret.as_deref())),
    )
        .into_response();
    no_store_headers(resp.headers_mut());
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef-iat";

    fn policy(open: bool, token: Option<&str>) -> RegistrationPolicy {
        RegistrationPolicy {
            open,
            initial_access_token: token.map(str::to_string),
            unused_client_ttl: 86_400,
            max_redirect_uris: 10,
            max_redirect_uri_length: 2000,
            max_request_bytes: 16_384,
        }
    }

    fn headers(auth: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, a.parse().unwrap());
        }
        h
    }

    #[test]
    fn registrant_is_anonymous_token_holder_or_refused() {
        let open = policy(true, Some(TOKEN));
        assert_eq!(
            open.registrant(&headers(None)).unwrap(),
            ClientOrigin::Registration
        );
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            open.registrant(&headers(Some(&bearer))).unwrap(),
            ClientOrigin::InitialAccessToken
        );
        let lower = format!("bearer {TOKEN}");
        assert_eq!(
            open.registrant(&headers(Some(&lower))).unwrap(),
            ClientOrigin::InitialAccessToken,
            "the scheme is case-insensitive (RFC 7235 §2.1)"
        );
        for wrong in [
            format!("Bearer {TOKEN}x"),
            format!("Basic {TOKEN}"),
            TOKEN.to_string(),
            "Bearer ".to_string(),
        ] {
            let err = open.registrant(&headers(Some(&wrong))).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidToken, "{wrong}");
        }
        // No token configured: any presented token is wrong, never a silent anonymous registration.
        let err = policy(true, None)
            .registrant(&headers(Some(&bearer)))
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidToken);
        // Closed registration: anonymous is refused, the token holder admitted.
        let closed = policy(false, Some(TOKEN));
        assert_eq!(
            closed.registrant(&headers(None)).unwrap_err().code,
            ErrorCode::InvalidToken
        );
        assert_eq!(
            closed.registrant(&headers(Some(&bearer))).unwrap(),
            ClientOrigin::InitialAccessToken
        );
    }

    fn register(body: Value) -> Result<(Client, Option<String>), OAuthError> {
        client_from_metadata(
            &Resources::new(vec![]),
            &policy(true, None),
            ClientOrigin::Registration,
            &body,
            0,
        )
    }

    fn public_client(redirect_uris: Vec<String>, name: &str) -> Value {
        serde_json::json!({
            "client_name": name,
            "redirect_uris": redirect_uris,
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        })
    }

    #[test]
    fn registration_bounds_are_inclusive_limits() {
        let uris = |n: usize| -> Vec<String> {
            (0..n)
                .map(|i| format!("http://127.0.0.1:{}/cb", 1000 + i))
                .collect()
        };
        assert!(
            register(public_client(uris(10), "x")).is_ok(),
            "exactly max_redirect_uris"
        );
        let err = register(public_client(uris(11), "x")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);

        let prefix = "https://app.example.com/";
        let exact = format!("{prefix}{}", "a".repeat(2000 - prefix.len()));
        assert_eq!(exact.len(), 2000);
        assert!(
            register(public_client(vec![exact.clone()], "x")).is_ok(),
            "exactly the length limit"
        );
        let err = register(public_client(vec![format!("{exact}a")], "x")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);

        let one = vec!["http://127.0.0.1/cb".to_string()];
        assert!(
            register(public_client(one.clone(), &"é".repeat(200))).is_ok(),
            "200 characters"
        );
        let err = register(public_client(one.clone(), &"é".repeat(201))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClientMetadata);
        let err = register(public_client(one.clone(), &"é".repeat(300))).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClientMetadata);
    }

    #[test]
    fn debug_never_shows_the_initial_access_token() {
        let shown = format!("{:?}", policy(true, Some(TOKEN)));
        assert!(
            shown.contains("RegistrationPolicy") && shown.contains("open: true"),
            "{shown}"
        );
        assert!(shown.contains("initial_access_token: true"), "{shown}");
        assert!(!shown.contains(TOKEN), "{shown}");
    }

    #[test]
    fn deceptive_characters() {
        for c in [
            '\u{0007}', '\u{007F}', '\u{0085}', '\u{061C}', '\u{200B}', '\u{200F}', '\u{202A}',
            '\u{202E}', '\u{2066}', '\u{2069}', '\u{FEFF}',
        ] {
            assert!(is_deceptive_char(c), "{:?}", c);
        }
        for c in ['a', 'Z', ' ', 'é', 'ß', '漢', '-', '\u{2070}', '\u{2010}'] {
            assert!(!is_deceptive_char(c), "{:?}", c);
        }
    }
}
