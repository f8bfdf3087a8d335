//! Client registration (MCP 2025-11-25 *Client Registration Approaches*), in this order:
//!
//! 1. pre-registered credentials (`--client-id`, secret from stdin, env or file);
//! 2. a client ID metadata document URL, when the server advertises
//!    `client_id_metadata_document_supported` (draft-ietf-oauth-client-id-metadata-document);
//! 3. RFC 7591 dynamic registration: `application_type: "native"` (loopback redirect),
//!    `grant_types` with `refresh_token`, public client (`token_endpoint_auth_method: none`).
//!
//! The token-endpoint authentication method is the one the registration answer names (RFC 7591
//! §3.2.1). A secret that expires (`client_secret_expires_at`) is replaced by registering again
//! before it does.

use serde::{Deserialize, Serialize};

use crate::discovery::AuthServerMetadata;
use crate::error::{Error, Result};
use crate::secret::{Secret, unix_now};
use crate::urls::UrlPolicy;

/// RFC 7591 §2 `token_endpoint_auth_method` values the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    None,
    ClientSecretBasic,
    ClientSecretPost,
}

impl TokenAuthMethod {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }
}

/// Where a registration came from (decides whether it can be redone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationSource {
    Preregistered,
    MetadataDocument,
    Dynamic,
}

/// A client as the authorization server knows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub auth_method: TokenAuthMethod,
    /// Unix seconds; `None` or 0 = never (RFC 7591 §3.2.1).
    pub client_secret_expires_at: Option<i64>,
    pub source: RegistrationSource,
}

impl ClientRegistration {
    /// A dynamic registration whose secret expires within a minute is replaced before use.
    pub fn is_expiring(&self, now: i64) -> bool {
        self.source == RegistrationSource::Dynamic
            && self.client_secret.is_some()
            && matches!(self.client_secret_expires_at, Some(t) if t != 0 && t <= now + 60)
    }
}

/// What the user or application supplied about registration.
#[derive(Debug, Clone, Default)]
pub struct RegistrationOptions {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub client_metadata_url: Option<String>,
    /// `client_name` for dynamic registration.
    pub client_name: Option<String>,
}

/// Chooses or creates the registration for `as_meta`. `existing` is what the store holds for
/// this authorization server.
pub async fn obtain(
    http: &reqwest::Client,
    as_meta: &AuthServerMetadata,
    opts: &RegistrationOptions,
    redirect_uri: &str,
    existing: Option<ClientRegistration>,
    policy: UrlPolicy,
) -> Result<ClientRegistration> {
    if let Some(id) = &opts.client_id {
        let auth_method = match &opts.client_secret {
            None => TokenAuthMethod::None,
            Some(_) => preferred_secret_method(as_meta),
        };
        return Ok(ClientRegistration {
            client_id: id.clone(),
            client_secret: opts.client_secret.clone(),
            auth_method,
            client_secret_expires_at: None,
            source: RegistrationSource::Preregistered,
        });
    }
    if let Some(url) = &opts.client_metadata_url {
        if as_meta.client_id_metadata_document_supported {
            // C-12: an https URL with a path; loopback http allowed only under --insecure rules.
            let parsed = policy.check("the client metadata document URL", url)?;
            if parsed.path().len() <= 1 {
                return Err(Error::Usage(format!(
                    "--client-metadata-url {url} must have a path (e.g. https://app.example/client.json)"
                )));
            }
            return Ok(ClientRegistration {
                client_id: url.clone(),
                client_secret: None,
                auth_method: TokenAuthMethod::None,
                client_secret_expires_at: None,
                source: RegistrationSource::MetadataDocument,
            });
        }
        tracing::info!(
            issuer = %as_meta.issuer,
            "the authorization server does not support client ID metadata documents; registering dynamically"
        );
    }
    if let Some(reg) = existing
        && reg.source == RegistrationSource::Dynamic
        && !reg.is_expiring(unix_now())
    {
        return Ok(reg);
    }
    register_dynamic(http, as_meta, opts, redirect_uri).await
}

fn preferred_secret_method(as_meta: &AuthServerMetadata) -> TokenAuthMethod {
    match &as_meta.token_endpoint_auth_methods_supported {
        Some(m)
            if m.iter().any(|x| x == "client_secret_post")
                && !m.iter().any(|x| x == "client_secret_basic") =>
        {
            TokenAuthMethod::ClientSecretPost
        }
        _ => TokenAuthMethod::ClientSecretBasic,
    }
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_secret_expires_at: Option<i64>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// RFC 7591 §3.1 dynamic registration of a native public client.
pub async fn register_dynamic(
    http: &reqwest::Client,
    as_meta: &AuthServerMetadata,
    opts: &RegistrationOptions,
    redirect_uri: &str,
) -> Result<ClientRegistration> {
    let Some(endpoint) = &as_meta.registration_endpoint else {
        return Err(Error::Registration {
            issuer: as_meta.issuer.clone(),
            reason: "it offers no dynamic registration (registration_endpoint) and no client ID \
                     metadata documents. Register a client with its administrator and pass \
                     --client-id (and --client-secret-stdin if it has a secret)"
                .into(),
        });
    };
    let body = serde_json::json!({
        "client_name": opts.client_name.clone().unwrap_or_else(|| "mcp-oauth client".into()),
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    let resp = http
        .post(endpoint)
        .json(&body)
        .send()
        .await
        .map_err(|e| Error::unreachable(endpoint, e))?;
    let status = resp.status();
    if !status.is_success() {
        let (code, description) = crate::flow::token::oauth_error_body(resp).await;
        return Err(Error::Registration {
            issuer: as_meta.issuer.clone(),
            reason: format!(
                "dynamic registration answered HTTP {status}: {code}{}. Register a client with \
                 its administrator and pass --client-id",
                description.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        });
    }
    let r: RegistrationResponse = resp.json().await.map_err(|e| Error::Registration {
        issuer: as_meta.issuer.clone(),
        reason: format!("its registration answer is not RFC 7591 JSON: {e}"),
    })?;
    let auth_method = match (&r.token_endpoint_auth_method, &r.client_secret) {
        (Some(m), _) => TokenAuthMethod::parse(m).ok_or_else(|| Error::Registration {
            issuer: as_meta.issuer.clone(),
            reason: format!(
                "it registered the client with the token endpoint method {m:?}, which this client \
                 does not speak (none, client_secret_basic, client_secret_post)"
            ),
        })?,
        // RFC 7591 §2: the default is client_secret_basic.
        (None, Some(_)) => TokenAuthMethod::ClientSecretBasic,
        (None, None) => TokenAuthMethod::None,
    };
    if auth_method != TokenAuthMethod::None && r.client_secret.is_none() {
        return Err(Error::Registration {
            issuer: as_meta.issuer.clone(),
            reason: "it chose a secret-based token endpoint method but issued no client_secret"
                .into(),
        });
    }
    tracing::info!(issuer = %as_meta.issuer, client_id = %r.client_id, "registered dynamically");
    Ok(ClientRegistration {
        client_id: r.client_id,
        client_secret: r.client_secret.map(Secret::new),
        auth_method,
        client_secret_expires_at: r.client_secret_expires_at,
        source: RegistrationSource::Dynamic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiring_secrets_are_renewed_only_for_dynamic_registrations() {
        let mut r = ClientRegistration {
            client_id: "c".into(),
            client_secret: Some(Secret::new("s")),
            auth_method: TokenAuthMethod::ClientSecretBasic,
            client_secret_expires_at: Some(1_000),
            source: RegistrationSource::Dynamic,
        };
        assert!(r.is_expiring(990));
        assert!(!r.is_expiring(900));
        r.client_secret_expires_at = Some(0);
        assert!(!r.is_expiring(10_000), "0 means never");
        r.client_secret_expires_at = Some(1_000);
        r.source = RegistrationSource::Preregistered;
        assert!(!r.is_expiring(990));
    }
}
