//! The document fetch, treated as hostile (draft-ietf-oauth-client-id-metadata-document-00 §4
//! *Client Information Discovery*, §6.5 SSRF, §6.6 maximum response size; MCP security best
//! practices *SSRF*):
//!
//! - `https` only (reqwest's `https_only`), and the host must pass `[registration]
//!   cimd_allowed_hosts`;
//! - no redirects: a 3xx answer is an error (a redirect would send the fetch somewhere the client id
//!   does not name, possibly `http` or an internal host);
//! - the addresses connected to are screened by [`super::ssrf::GuardedResolver`], the resolver
//!   reqwest uses, so there is no window between check and connect; no proxy is used (a proxy would
//!   resolve the name itself, past the guard);
//! - the body is read in chunks and the fetch stops past `cimd_max_bytes`;
//! - `cimd_timeout` bounds the connect and the whole exchange;
//! - `cimd_fetches_per_minute_per_host` bounds the traffic one host receives.

use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::Resolve;
use reqwest::header::{ACCEPT, HeaderMap};
use url::Url;

use super::hosts::HostPolicy;
use super::rate_limit::HostRate;
use super::ssrf::{AddressRefused, ConnectGate, GuardedResolver, find_refusal};
use crate::config::RegistrationSettings;

/// Why a document could not be fetched. Each message is safe to show to the user: it names the
/// client's own host and nothing of this server's network.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the host {0} is not among the client hosts this server accepts")]
    HostNotAllowed(String),
    #[error(transparent)]
    AddressRefused(AddressRefused),
    #[error("too many client metadata document fetches to {0}; try again in a minute")]
    RateLimited(String),
    #[error(
        "the client metadata document URL answered with a redirect (HTTP {0}); redirects are not followed"
    )]
    Redirect(u16),
    #[error("the client metadata document URL answered HTTP {0}")]
    Status(u16),
    #[error("the client metadata document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the client metadata document could not be fetched within {0:?}")]
    Timeout(Duration),
    #[error("the client metadata document could not be fetched: {0}")]
    Unreachable(&'static str),
}

/// A fetched body and the response headers (for the cache).
pub struct Fetched {
    pub body: Vec<u8>,
    pub headers: HeaderMap,
}

pub struct Fetcher {
    http: reqwest::Client,
    policy: HostPolicy,
    rate: HostRate,
    max_bytes: usize,
    timeout: Duration,
}

impl Fetcher {
    /// A fetcher with the given upstream resolver (production: [`super::ssrf::SystemResolver`]) and
    /// optional connect gate (tests).
    pub fn new(
        settings: &RegistrationSettings,
        upstream: Arc<dyn Resolve>,
        gate: Option<Arc<dyn ConnectGate>>,
    ) -> anyhow::Result<Self> {
        // reqwest is built without a crypto provider of its own; the project's is ring. A process
        // that installed one already keeps it.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let guard = GuardedResolver {
            upstream,
            allow_loopback: settings.cimd_allow_loopback,
            gate,
        };
        let mut builder = reqwest::Client::builder()
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.cimd_timeout)
            .timeout(settings.cimd_timeout)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("mcp-oauth/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(guard);
        if let Some(path) = settings.cimd_ca_file.as_deref().filter(|p| !p.is_empty()) {
            let pem = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading registration.cimd_ca_file {path:?}: {e}"))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| anyhow::anyhow!("registration.cimd_ca_file {path:?}: {e}"))?;
            builder = builder.tls_certs_only(certs);
        }
        Ok(Self {
            http: builder.build()?,
            policy: HostPolicy::parse(&settings.cimd_allowed_hosts)
                .map_err(|e| anyhow::anyhow!("registration.cimd_allowed_hosts: {e}"))?,
            rate: HostRate::new(settings.cimd_fetches_per_minute_per_host),
            max_bytes: settings.cimd_max_bytes,
            timeout: settings.cimd_timeout,
        })
    }

    /// Refuses a URL whose host `[registration] cimd_allowed_hosts` does not allow: before any
    /// fetch, and before a cached document (another server's policy may differ) is used.
    pub fn check_host(&self, url: &Url) -> Result<(), FetchError> {
        let host = url.host_str().unwrap_or_default();
        if self.policy.allows(host) {
            Ok(())
        } else {
            Err(FetchError::HostNotAllowed(host.to_string()))
        }
    }

    /// `cimd_max_bytes`: a cached body larger than this (stored by a server with a higher limit)
    /// is not used.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// GETs `url` (already checked by [`super::document::parse_client_id_url`]).
    pub async fn get(&self, url: &Url) -> Result<Fetched, FetchError> {
        self.check_host(url)?;
        let host = url.host_str().unwrap_or_default().to_string();
        if !self.rate.try_take(&host) {
            return Err(FetchError::RateLimited(host));
        }
        match tokio::time::timeout(self.timeout, self.exchange(url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout(self.timeout)),
        }
    }

    async fn exchange(&self, url: &Url) -> Result<Fetched, FetchError> {
        let mut resp = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| self.classify(&e))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(FetchError::Redirect(status.as_u16()));
        }
        if status != reqwest::StatusCode::OK {
            return Err(FetchError::Status(status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.classify(&e))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, headers })
    }

    fn classify(&self, e: &reqwest::Error) -> FetchError {
        if let Some(refused) = find_refusal(e) {
            return FetchError::AddressRefused(refused);
        }
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if e.is_connect() {
            FetchError::Unreachable("the host could not be reached (DNS, connection or TLS)")
        } else if e.is_body() || e.is_decode() {
            FetchError::Unreachable("the response body could not be read")
        } else {
            FetchError::Unreachable("the request failed")
        }
    }
}
