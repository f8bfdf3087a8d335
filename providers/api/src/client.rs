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

/// Who created a client: it decides what the client may do before any user approved it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientOrigin {
    /// Anonymous RFC 7591 registration (open registration): authorization_code + refresh_token only.
    #[default]
    Registration,
    /// RFC 7591 registration that presented the initial access token (RFC 7591 §3).
    InitialAccessToken,
    /// Created by an administrator (`mcp-oauth clients add`).
    Administrator,
}

impl ClientOrigin {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::InitialAccessToken => "initial_access_token",
            Self::Administrator => "administrator",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registration" => Some(Self::Registration),
            "initial_access_token" => Some(Self::InitialAccessToken),
            "administrator" => Some(Self::Administrator),
            _ => None,
        }
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
    /// The client's registered `scope` (RFC 7591 §2). For user-consented grants it is the default
    /// when a request names none; for grants with no user behind them (`client_credentials`) it is
    /// the explicit allow-list, and `None` there means *no* scope, never "all".
    pub scope: Option<Vec<String>>,
    /// Every other registered metadata field (client_uri, logo_uri, contacts, software_id, …), echoed
    /// back in the registration response.
    pub extra_metadata: serde_json::Map<String, serde_json::Value>,
    /// Who created the client.
    #[serde(default)]
    pub origin: ClientOrigin,
    /// When a user first approved the client (consent, or remembered consent). Anonymous
    /// registrations never approved are purged after `[registration] unused_client_ttl`.
    #[serde(default)]
    pub approved_at: Option<UnixTime>,
    /// Marked by an administrator as a resource server: may introspect any access token (RFC 7662
    /// §2.1). Other clients introspect only their own tokens.
    #[serde(default)]
    pub resource_server: bool,
}

impl Client {
    /// True when `grant_type` is among the client's registered grant types.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    /// True when errors may be redirected to this client's redirect URI before any user interaction
    /// (RFC 9700 §4.11.2): an administrator or the initial-access-token holder created it, or a
    /// user has approved it. Otherwise the server shows a page instead of redirecting.
    pub fn redirects_are_trusted(&self) -> bool {
        self.origin != ClientOrigin::Registration || self.approved_at.is_some()
    }
}

/// Where clients live.
///
/// Contract:
/// - `get_client` MUST return `Ok(None)` for an unknown id, never an error.
/// - `insert_client` MUST fail with [`ProviderError::Conflict`](crate::ProviderError::Conflict) when
///   the `client_id` exists, and MUST store nothing in that case.
/// - `delete_client` MUST return `Ok(false)` for an unknown id. It deletes the client record only:
///   the core revokes the client's grants itself (`TokenStore::revoke_grants`).
/// - `mark_client_approved` MUST set `approved_at` only when it is unset (the first approval is
///   kept) and MUST succeed silently for an unknown id.
/// - `purge_unused_clients` MUST delete only clients with origin `Registration`, no `approved_at`
///   and `client_id_issued_at` < `registered_before`, and return how many it deleted.
#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn get_client(&self, client_id: &str) -> ProviderResult<Option<Client>>;
    async fn insert_client(&self, client: Client) -> ProviderResult<()>;
    async fn list_clients(&self) -> ProviderResult<Vec<Client>>;
    async fn delete_client(&self, client_id: &str) -> ProviderResult<bool>;
    async fn mark_client_approved(&self, client_id: &str, at: UnixTime) -> ProviderResult<()>;
    async fn purge_unused_clients(&self, registered_before: UnixTime) -> ProviderResult<u64>;
}
