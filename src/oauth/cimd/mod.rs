//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document-00; MCP 2025-11-25
//! *Client ID Metadata Documents*, MCP-AUTH AS-6): a client whose `client_id` is an https URL is
//! described by the JSON document at that URL, which this server fetches instead of looking the
//! client up in its store.
//!
//! - [`document`]: which URLs are client ids, and which documents are accepted (§3, §4.1).
//! - [`fetch`]: the fetch, treated as hostile (§6.5 SSRF, §6.6 size): https only, no redirects,
//!   size cap, timeouts, per-host budget ([`rate_limit`]), host policy ([`hosts`]).
//! - [`ssrf`]: the resolver that refuses special addresses on the addresses actually connected to.
//! - [`cache`]: documents cached per their `Cache-Control` within configured bounds (§4.4), in
//!   storage, so every server on one store shares the cache.
//! - [`private_key_jwt`]: RFC 7523 §2.2 client assertions for document clients that publish keys;
//!   each `jti` is claimed once in storage, so a replay to any server on the store is refused.
//!
//! The core asks [`find_client`] for every client id it meets (`/authorize`, sign-in and consent,
//! and client authentication at `/token`, `/revoke`, `/introspect`): a document URL is answered from
//! the cache or a fetch, anything else from the store. An administrator blocks a document client
//! by URL (`mcp-oauth clients block URL`), which stores a marker record under that id.

pub mod cache;
pub mod document;
pub mod fetch;
pub mod hosts;
pub mod private_key_jwt;
pub mod rate_limit;
pub mod ssrf;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::http::StatusCode;
use mcp_oauth_provider::{Client, ProviderError, SharedStateStore};
use reqwest::dns::Resolve;

use crate::config::RegistrationSettings;
use crate::error::{AuthorizeError, ErrorCode, OAuthError};
use crate::state::AppState;
use cache::{LocalLayer, expires_after, shared_get, shared_put, ttl_from_headers};
use document::{DocumentClient, DocumentLimits, looks_like_document_url, parse_client_id_url};
use fetch::{FetchError, Fetcher};
use private_key_jwt::JwksCache;
use ssrf::{ConnectGate, SystemResolver};

/// The key of `extra_metadata` that marks a stored record as a block on a document client id.
pub const BLOCKED_MARKER: &str = "cimd_blocked";

/// Why a document client could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CimdError {
    #[error("the client_id is not a valid client metadata document URL: {0}")]
    InvalidClientId(String),
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Document(String),
    #[error("this client has been blocked by the server's administrator")]
    Blocked,
}

impl CimdError {
    /// The OAuth error (MCP: `invalid_client` or `invalid_request`).
    pub fn oauth(&self) -> OAuthError {
        let code = match self {
            Self::InvalidClientId(_) => ErrorCode::InvalidRequest,
            Self::Fetch(_) | Self::Document(_) | Self::Blocked => ErrorCode::InvalidClient,
        };
        OAuthError::new(code, self.to_string())
    }

    /// The error page of the browser endpoints: never a redirect, since no redirect URI of this
    /// client has been validated.
    pub fn page(&self) -> AuthorizeError {
        let e = self.oauth();
        AuthorizeError::page(
            StatusCode::BAD_REQUEST,
            "The application could not be identified",
            format!("{}: {}", e.code.as_str(), e.description),
        )
    }
}

/// The document-client service in [`AppState`].
pub struct Cimd {
    enabled: bool,
    settings: RegistrationSettings,
    fetcher: RwLock<Arc<Fetcher>>,
    /// Parsed clients of this process, each until its stored cache entry expires.
    cache: LocalLayer,
    limits: DocumentLimits,
    /// JWK Sets fetched from documents' `jwks_uri`.
    pub jwks: JwksCache,
}

impl Cimd {
    pub fn new(settings: &RegistrationSettings) -> anyhow::Result<Self> {
        Ok(Self {
            enabled: settings.client_id_metadata_documents,
            fetcher: RwLock::new(Arc::new(Fetcher::new(
                settings,
                Arc::new(SystemResolver),
                None,
            )?)),
            settings: settings.clone(),
            cache: LocalLayer::default(),
            limits: DocumentLimits {
                max_redirect_uris: settings.max_redirect_uris,
                max_redirect_uri_length: settings.max_redirect_uri_length,
            },
            jwks: JwksCache::default(),
        })
    }

    /// `[registration] client_id_metadata_documents`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the resolver under the SSRF guard, and adds a gate that sees every address handed
    /// to the connector. For tests (a fake resolver naming private addresses, a gate proving none
    /// was connected to) and for embedders with a resolver of their own; the guard stays in place.
    pub fn set_network(
        &self,
        upstream: Arc<dyn Resolve>,
        gate: Option<Arc<dyn ConnectGate>>,
    ) -> anyhow::Result<()> {
        let fetcher = Arc::new(Fetcher::new(&self.settings, upstream, gate)?);
        *self.fetcher.write().unwrap_or_else(|e| e.into_inner()) = fetcher;
        Ok(())
    }

    pub(crate) fn fetcher(&self) -> Arc<Fetcher> {
        Arc::clone(&self.fetcher.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// True when `client_id` is handled here rather than by the store.
    pub fn handles(&self, client_id: &str) -> bool {
        self.enabled && looks_like_document_url(client_id)
    }

    /// The client described by the document at `client_id`: from this process's layer, else from
    /// the cache in `shared` (validated again), else fetched, validated and cached in both. The
    /// host policy applies first, whatever the cache holds.
    pub async fn load(
        &self,
        shared: &dyn SharedStateStore,
        client_id: &str,
    ) -> Result<DocumentClient, CimdError> {
        let url = parse_client_id_url(client_id).map_err(CimdError::InvalidClientId)?;
        let fetcher = self.fetcher();
        fetcher.check_host(&url)?;
        let now = crate::state::now();
        if let Some(hit) = self.cache.get(client_id, now) {
            return Ok(hit);
        }
        if let Some(stored) = shared_get(shared, client_id, now).await
            && stored.body.len() <= fetcher.max_bytes()
        {
            // Stored by a server that validated it; validated again under this server's limits.
            let client = document::validate(client_id, &stored.body, self.limits, now)
                .map_err(CimdError::Document)?;
            self.cache
                .put(client_id, client.clone(), stored.expires_at, now);
            return Ok(client);
        }
        let fetched = fetcher.get(&url).await?;
        let client = document::validate(client_id, &fetched.body, self.limits, now)
            .map_err(CimdError::Document)?;
        let ttl = ttl_from_headers(
            &fetched.headers,
            self.settings.cimd_cache_min_ttl,
            self.settings.cimd_cache_max_ttl,
        );
        let expires_at = expires_after(ttl);
        tracing::info!(
            client_id,
            ttl_secs = ttl.as_secs(),
            "client metadata document fetched"
        );
        shared_put(shared, client_id, &fetched.body, expires_at).await;
        self.cache.put(client_id, client.clone(), expires_at, now);
        Ok(client)
    }

    /// `cimd_cache_min_ttl`, `cimd_cache_max_ttl`.
    pub fn cache_bounds(&self) -> (Duration, Duration) {
        (
            self.settings.cimd_cache_min_ttl,
            self.settings.cimd_cache_max_ttl,
        )
    }

    /// Seconds a client assertion's `exp` may lie ahead (`cimd_assertion_max_lifetime`).
    pub fn assertion_max_lifetime(&self) -> i64 {
        i64::try_from(self.settings.cimd_assertion_max_lifetime.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A client as found by [`find_client`].
#[derive(Debug, Clone)]
pub enum FoundClient {
    Stored(Client),
    Document(DocumentClient),
}

impl FoundClient {
    pub fn client(&self) -> &Client {
        match self {
            Self::Stored(c) => c,
            Self::Document(d) => &d.client,
        }
    }

    pub fn into_client(self) -> Client {
        match self {
            Self::Stored(c) => c,
            Self::Document(d) => d.client,
        }
    }

    pub fn document(&self) -> Option<&DocumentClient> {
        match self {
            Self::Stored(_) => None,
            Self::Document(d) => Some(d),
        }
    }
}

/// Why [`find_client`] found nothing usable.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Storage(#[from] ProviderError),
    #[error(transparent)]
    Document(#[from] CimdError),
}

impl LookupError {
    pub fn oauth(self) -> OAuthError {
        match self {
            Self::Storage(e) => e.into(),
            Self::Document(e) => e.oauth(),
        }
    }
}

/// Blocks the document client `url` (`mcp-oauth clients block URL`): stores a marker record under
/// that id, which every instance on the store checks before any fetch or cache, and revokes what
/// was issued to the client. `Ok(None)` when it was already blocked. Undone by deleting the record
/// (`mcp-oauth clients delete URL`).
pub async fn block_client(
    clients: &dyn mcp_oauth_provider::ClientStore,
    tokens: &dyn mcp_oauth_provider::TokenStore,
    url: &str,
    remember_until: mcp_oauth_provider::UnixTime,
    now: mcp_oauth_provider::UnixTime,
) -> anyhow::Result<Option<u64>> {
    parse_client_id_url(url).map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    match clients.get_client(url).await? {
        Some(c) if is_block_marker(&c) => return Ok(None),
        Some(_) => anyhow::bail!("{url} is a registered client; delete it instead"),
        None => {}
    }
    let mut extra = serde_json::Map::new();
    extra.insert(BLOCKED_MARKER.into(), serde_json::Value::Bool(true));
    clients
        .insert_client(Client {
            client_id: url.to_string(),
            client_secret_hash: None,
            client_secret_expires_at: None,
            client_id_issued_at: now,
            client_name: Some("blocked client metadata document".into()),
            redirect_uris: Vec::new(),
            grant_types: Vec::new(),
            response_types: Vec::new(),
            token_endpoint_auth_method: mcp_oauth_provider::TokenEndpointAuthMethod::None,
            scope: None,
            extra_metadata: extra,
            origin: mcp_oauth_provider::ClientOrigin::Administrator,
            approved_at: None,
            resource_server: false,
        })
        .await?;
    let filter = mcp_oauth_provider::GrantFilter {
        subject: None,
        client_id: Some(url.to_string()),
    };
    let revoked = tokens.revoke_grants(&filter, remember_until).await?;
    tracing::info!(client_id = %url, grants = revoked, "blocked a client metadata document client");
    Ok(Some(revoked))
}

/// True when a stored record is a block on a document client id.
pub fn is_block_marker(client: &Client) -> bool {
    client
        .extra_metadata
        .get(BLOCKED_MARKER)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The client named `client_id`: a document client when it is a document URL (and documents are
/// enabled), else the stored client. `Ok(None)` = no such client.
pub async fn find_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<FoundClient>, LookupError> {
    let stored = state.provider.clients().get_client(client_id).await?;
    if !state.cimd.handles(client_id) {
        return Ok(stored
            .filter(|c| !is_block_marker(c))
            .map(FoundClient::Stored));
    }
    // A block is a stored record under the URL; it is checked before any fetch.
    if stored.as_ref().is_some_and(is_block_marker) {
        return Err(CimdError::Blocked.into());
    }
    Ok(Some(FoundClient::Document(
        state
            .cimd
            .load(state.provider.shared_state(), client_id)
            .await?,
    )))
}
