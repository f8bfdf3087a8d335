//! The token endpoint (OAuth 2.1 §3.2, §4.1.3 code exchange, §4.3 refresh) with RFC 8707
//! `resource` on every request, and RFC 7009 revocation. Client authentication as registered
//! (RFC 6749 §2.3.1: `client_secret_basic` with form-encoded id and secret, `client_secret_post`,
//! or `none` with `client_id` in the body). Errors are RFC 6749 §5.2 JSON.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::authorize::AuthorizationRequest;
use crate::discovery::AuthServerMetadata;
use crate::error::{Error, Result};
use crate::registration::{ClientRegistration, TokenAuthMethod};
use crate::secret::{Secret, unix_now};
use crate::store::Tokens;

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// Exchanges an authorization code (OAuth 2.1 §4.1.3).
pub async fn exchange_code(
    http: &reqwest::Client,
    as_meta: &AuthServerMetadata,
    reg: &ClientRegistration,
    request: &AuthorizationRequest,
    code: &Secret,
) -> Result<Tokens> {
    let form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.expose().to_string()),
        ("redirect_uri", request.redirect_uri.clone()),
        ("code_verifier", request.pkce.verifier.expose().to_string()),
        ("resource", request.resource.clone()),
    ];
    token_request(
        http,
        as_meta,
        reg,
        form,
        "code exchange",
        &request.scopes,
        None,
    )
    .await
}

/// Refreshes (OAuth 2.1 §4.3). A response without a refresh token keeps the old one (§4.3.3: the
/// server MAY keep it unchanged); without `scope`, the scopes stay what they were.
pub async fn refresh(
    http: &reqwest::Client,
    as_meta: &AuthServerMetadata,
    reg: &ClientRegistration,
    current: &Tokens,
    resource: &str,
) -> Result<Tokens> {
    let Some(refresh_token) = &current.refresh_token else {
        return Err(Error::OAuth {
            step: "refresh",
            code: "invalid_grant".into(),
            description: Some("no refresh token was issued".into()),
        });
    };
    let form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh_token.expose().to_string()),
        ("resource", resource.to_string()),
    ];
    token_request(
        http,
        as_meta,
        reg,
        form,
        "refresh",
        &current.scopes,
        Some(refresh_token),
    )
    .await
}

async fn token_request(
    http: &reqwest::Client,
    as_meta: &AuthServerMetadata,
    reg: &ClientRegistration,
    mut form: Vec<(&'static str, String)>,
    step: &'static str,
    fallback_scopes: &[String],
    old_refresh: Option<&Secret>,
) -> Result<Tokens> {
    let req = authenticate(http.post(&as_meta.token_endpoint), reg, &mut form);
    let resp = req
        .form(&form)
        .send()
        .await
        .map_err(|e| Error::unreachable(&as_meta.token_endpoint, e))?;
    if !resp.status().is_success() {
        let (code, description) = oauth_error_body(resp).await;
        return Err(Error::OAuth {
            step,
            code,
            description,
        });
    }
    let t: TokenResponse = resp.json().await.map_err(|e| Error::OAuth {
        step,
        code: "invalid_response".into(),
        description: Some(format!("the token response is not OAuth JSON: {e}")),
    })?;
    if let Some(tt) = &t.token_type
        && !tt.eq_ignore_ascii_case("bearer")
    {
        return Err(Error::OAuth {
            step,
            code: "unsupported_token_type".into(),
            description: Some(format!(
                "token_type {tt:?}; this client only sends Bearer tokens"
            )),
        });
    }
    let now = unix_now();
    Ok(Tokens {
        access_token: Secret::new(t.access_token),
        refresh_token: t.refresh_token.map(Secret::new).or(old_refresh.cloned()),
        issued_at: now,
        expires_at: t.expires_in.map(|s| now + s.max(0)),
        scopes: t
            .scope
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_else(|| fallback_scopes.to_vec()),
    })
}

/// Adds client authentication as registered.
fn authenticate(
    req: reqwest::RequestBuilder,
    reg: &ClientRegistration,
    form: &mut Vec<(&'static str, String)>,
) -> reqwest::RequestBuilder {
    match (reg.auth_method, &reg.client_secret) {
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => {
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic =
                STANDARD.encode(format!("{}:{}", enc(&reg.client_id), enc(secret.expose())));
            req.header("authorization", format!("Basic {basic}"))
        }
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => {
            form.push(("client_id", reg.client_id.clone()));
            form.push(("client_secret", secret.expose().to_string()));
            req
        }
        _ => {
            form.push(("client_id", reg.client_id.clone()));
            req
        }
    }
}

/// RFC 7009 revocation of one token; `Ok(false)` when the server has no revocation endpoint.
pub async fn revoke(
    http: &reqwest::Client,
    as_meta: &AuthServerMetadata,
    reg: &ClientRegistration,
    token: &Secret,
    hint: &'static str,
) -> Result<bool> {
    let Some(endpoint) = &as_meta.revocation_endpoint else {
        return Ok(false);
    };
    let mut form = vec![
        ("token", token.expose().to_string()),
        ("token_type_hint", hint.to_string()),
    ];
    let req = authenticate(http.post(endpoint), reg, &mut form);
    let resp = req
        .form(&form)
        .send()
        .await
        .map_err(|e| Error::unreachable(endpoint, e))?;
    if !resp.status().is_success() {
        let (code, description) = oauth_error_body(resp).await;
        return Err(Error::OAuth {
            step: "revocation",
            code,
            description,
        });
    }
    Ok(true)
}

/// `error` and `error_description` of an RFC 6749 §5.2 body; the HTTP status when it is not one.
pub(crate) async fn oauth_error_body(resp: reqwest::Response) -> (String, Option<String>) {
    #[derive(Deserialize)]
    struct Body {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    let status = resp.status();
    match resp.json::<Body>().await {
        Ok(b) => (b.error, b.error_description),
        Err(_) => (format!("HTTP {status}"), None),
    }
}
