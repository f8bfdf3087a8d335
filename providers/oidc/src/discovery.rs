//! The upstream's metadata (OpenID Connect Discovery 1.0 §4) and signing keys (its JWKS, RFC 7517),
//! fetched on first use and reused for `metadata_ttl`.
//!
//! The metadata's `issuer` must equal the configured issuer exactly (Discovery §4.3), and every
//! endpoint must be https (http only on loopback). Fetches never follow redirects, give up after
//! `timeout` and read at most `max_response_bytes`. A connection failure, a timeout or a 5xx answer
//! is [`ProviderError::Unavailable`]; metadata that cannot be used is a backend error that says why.

use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::jwk::JwkSet;
use mcp_oauth_provider::{ProviderError, ProviderResult};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::settings::{OidcSettings, bad_metadata, is_acceptable_endpoint};

/// What we use of the upstream's discovery document.
#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub response_types_supported: Option<Vec<String>>,
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// RFC 9207 §3: the upstream puts `iss` on every authorization response.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

impl Metadata {
    fn check(&self, configured_issuer: &str) -> ProviderResult<()> {
        if self.issuer != configured_issuer {
            return Err(bad_metadata(format!(
                "the discovery document names issuer {:?}, not the configured {:?} (OpenID \
                 Connect Discovery §4.3: they must be identical)",
                self.issuer, configured_issuer
            )));
        }
        for (name, value) in [
            ("authorization_endpoint", &self.authorization_endpoint),
            ("token_endpoint", &self.token_endpoint),
            ("jwks_uri", &self.jwks_uri),
        ] {
            let ok = url::Url::parse(value).is_ok_and(|u| is_acceptable_endpoint(&u));
            if !ok {
                return Err(bad_metadata(format!(
                    "the discovery document's {name} {value:?} is not an https URL"
                )));
            }
        }
        if let Some(types) = &self.response_types_supported
            && !types.iter().any(|t| t == "code")
        {
            return Err(bad_metadata(
                "the upstream does not support response_type \"code\"",
            ));
        }
        if let Some(methods) = &self.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(bad_metadata("the upstream does not support PKCE S256"));
        }
        Ok(())
    }
}

struct Cached<T> {
    value: Arc<T>,
    fetched: Instant,
}

/// The HTTP client and the caches of one upstream.
pub struct Upstream {
    pub settings: OidcSettings,
    http: reqwest::Client,
    metadata: Mutex<Option<Cached<Metadata>>>,
    jwks: Mutex<Option<Cached<JwkSet>>>,
}

impl Upstream {
    pub fn new(settings: OidcSettings) -> ProviderResult<Self> {
        // The workspace's one TLS provider; installing twice is a harmless error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .build()
            .map_err(|e| ProviderError::backend("building the HTTP client", e))?;
        Ok(Self {
            settings,
            http,
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
        })
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The metadata, from the cache while it is fresh.
    pub async fn metadata(&self) -> ProviderResult<Arc<Metadata>> {
        let mut cached = self.metadata.lock().await;
        if let Some(c) = cached.as_ref()
            && c.fetched.elapsed() < self.settings.metadata_ttl
        {
            return Ok(c.value.clone());
        }
        let fresh = Arc::new(self.fetch_metadata().await?);
        *cached = Some(Cached {
            value: fresh.clone(),
            fetched: Instant::now(),
        });
        Ok(fresh)
    }

    /// Fetches and checks the discovery document now (`config check`).
    pub async fn fetch_metadata(&self) -> ProviderResult<Metadata> {
        let url = self.settings.discovery_url();
        let body = self.get(&url, "the discovery document").await?;
        let metadata: Metadata = serde_json::from_slice(&body).map_err(|e| {
            bad_metadata(format!(
                "the discovery document at {url} is not usable: {e}"
            ))
        })?;
        metadata.check(&self.settings.issuer)?;
        Ok(metadata)
    }

    /// The JWKS; `refresh` fetches it again when the cached one is older than
    /// `jwks_refetch_interval` (a key we do not know yet may have been added upstream).
    pub async fn jwks(&self, refresh: bool) -> ProviderResult<Arc<JwkSet>> {
        let mut cached = self.jwks.lock().await;
        if let Some(c) = cached.as_ref() {
            let age = c.fetched.elapsed();
            let stale = age >= self.settings.metadata_ttl;
            let may_refresh = refresh && age >= self.settings.jwks_refetch_interval;
            if !stale && !may_refresh {
                return Ok(c.value.clone());
            }
        }
        let metadata = self.metadata().await?;
        let body = self.get(&metadata.jwks_uri, "the JWKS").await?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| bad_metadata(format!("the upstream JWKS is not usable: {e}")))?;
        let set = Arc::new(set);
        *cached = Some(Cached {
            value: set.clone(),
            fetched: Instant::now(),
        });
        Ok(set)
    }

    async fn get(&self, url: &str, what: &str) -> ProviderResult<Vec<u8>> {
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(what, e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ProviderError::unavailable_msg(format!(
                "fetching {what} from the upstream: HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Err(bad_metadata(format!(
                "fetching {what} from {url}: HTTP {status}"
            )));
        }
        self.read_body(resp, what).await
    }

    /// A response body, at most `max_response_bytes`.
    pub async fn read_body(&self, resp: reqwest::Response, what: &str) -> ProviderResult<Vec<u8>> {
        crate::http::read_limited(resp, what, self.settings.max_response_bytes).await
    }
}

/// A transport failure: the upstream is unavailable. reqwest's message names the URL, never a
/// secret (we send secrets only in bodies and headers).
pub fn unreachable(what: &str, e: reqwest::Error) -> ProviderError {
    ProviderError::unavailable(format!("reaching the upstream for {what}"), e)
}
