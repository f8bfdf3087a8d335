//! Registered OAuth clients (RFC 7591 dynamic registration, admin-created clients) and their store.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ProviderResult, SecretHash, UnixTime};

/// How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// Public client: no secret (native apps, CLIs, browser apps). PKCE protects its codes.
    None,
    /// Confidential client sending `client_id` + `client_secret` in the form body.
    ClientSecretPost,
    /// Confidential client using HTTP Basic authentication.
    ClientSecretBasic,
}

impl TokenEndpointAuthMethod {
    /// The RFC 7591 wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretPost => "client_secret_post",
            Self::ClientSecretBasic => "client_secret_basic",
        }
    }

    /// Parses the RFC 7591 wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            _ => None,
        }
    }

    /// True when the client holds a secret.
    pub fn is_confidential(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// A registered client. Secrets are never stored, only their SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    /// SHA-256 of the client secret; `None` for public clients.
    pub client_secret_hash: Option<SecretHash>,
    /// When the secret expires (`None` = never; RFC 7591 answers `0`).
    pub client_secret_expires_at: Option<UnixTime>,
    pub client_id_issued_at: UnixTime,
    pub client_name: Option<String>,
    /// Registered redirect URIs, already validated (https or loopback http, no fragment).
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Scopes the client may request (`None` = any scope the server supports).
    pub scope: Option<Vec<String>>,
    /// Every other registered metadata field (client_uri, logo_uri, contacts, software_id, …), echoed
    /// back in the registration response.
    pub extra_metadata: serde_json::Map<String, serde_json::Value>,
}

impl Client {
    /// True when `grant_type` is among the client's registered grant types.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// Where clients live.
///
/// Contract:
/// - `get_client` MUST return `Ok(None)` for an unknown id, never an error.
/// - `insert_client` MUST fail with [`ProviderError::Conflict`](crate::ProviderError::Conflict) when
///   the `client_id` exists, and MUST store nothing in that case.
/// - `delete_client` MUST return `Ok(false)` for an unknown id. Deleting a client MUST also revoke
///   every code and token issued to it (they must not outlive the client).
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn get_client(&self, client_id: &str) -> ProviderResult<Option<Client>>;
    async fn insert_client(&self, client: Client) -> ProviderResult<()>;
    async fn list_clients(&self) -> ProviderResult<Vec<Client>>;
    async fn delete_client(&self, client_id: &str) -> ProviderResult<bool>;
}
