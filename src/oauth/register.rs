//! `POST /register`: OAuth 2.0 Dynamic Client Registration (RFC 7591 §3).
//!
//! - §2: client metadata; defaults `token_endpoint_auth_method = client_secret_basic`,
//!   `grant_types = [authorization_code]`, `response_types = [code]`.
//! - §3.2.1: 201 with the registered metadata, `client_id`, `client_id_issued_at` and, for confidential
//!   clients, `client_secret` and `client_secret_expires_at` (0 = never).
//! - §3.2.2: `invalid_redirect_uri` and `invalid_client_metadata` errors. Nothing is stored when the
//!   request is refused.
//! - MCP: redirect URIs must be https or loopback; public clients (`none`) are first-class.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcp_oauth_provider::{Client, TokenEndpointAuthMethod};
use serde_json::{Map, Value};

use crate::error::{ErrorCode, OAuthError, no_store_headers};
use crate::oauth::params::read_body;
use crate::oauth::redirect_uri::validate_for_registration;
use crate::oauth::resources::{Resources, parse_scope};
use crate::oauth::secrets::{hash_secret, new_secret};
use crate::state::{AppState, now};

const SUPPORTED_GRANTS: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

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
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(metadata_error(format!("{key} must be a string"))),
    }
}

fn string_list(obj: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, OAuthError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| metadata_error(format!("{key} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(metadata_error(format!("{key} must be an array of strings"))),
    }
}

/// Validates the request metadata into a client (with its plain secret, if any).
pub fn client_from_metadata(
    resources: &Resources,
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
    let grant_types =
        string_list(obj, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty() {
        return Err(metadata_error("grant_types must not be empty"));
    }
    for g in &grant_types {
        if !SUPPORTED_GRANTS.contains(&g.as_str()) {
            return Err(metadata_error(format!("grant type {g:?} is not supported")));
        }
    }
    if grant_types.iter().any(|g| g == "client_credentials") && !auth_method.is_confidential() {
        return Err(metadata_error(
            "client_credentials requires a confidential client (not token_endpoint_auth_method none)",
        ));
    }
    let uses_code = grant_types.iter().any(|g| g == "authorization_code");
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
    for uri in &redirect_uris {
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
    if client_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 200)
    {
        return Err(metadata_error("client_name is longer than 200 characters"));
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
    out.insert("grant_types".into(), client.grant_types.clone().into());
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
    let body = read_body(req, &()).await?;
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        OAuthError::invalid_request(format!("the request body is not valid JSON: {e}"))
    })?;
    let (client, secret) = client_from_metadata(&state.resources, &json, now())?;
    state
        .provider
        .clients()
        .insert_client(client.clone())
        .await?;
    tracing::info!(client_id = %client.client_id, public = secret.is_none(), "registered a client");
    let mut resp = (
        StatusCode::CREATED,
        axum::Json(client_information(&client, secret.as_deref())),
    )
        .into_response();
    no_store_headers(resp.headers_mut());
    Ok(resp)
}
