//! The shared state every handler sees: the provider (a trait object chosen in config), the issuer,
//! declared resources, signing keys, page templates and the settings handlers need.

use std::ops::Deref;
use std::sync::Arc;

use mcp_oauth_provider::{OAuthServerProvider, TokenLifetimes, UnixTime};

use crate::config::{LimitsSettings, Settings};
use crate::oauth::cimd::Cimd;
use crate::oauth::client_address::TrustedProxies;
use crate::oauth::key_encryption::KeyEncryptionKey;
use crate::oauth::keys::KeyManager;
use crate::oauth::login_throttle::{AddressGate, LoginThrottle};
use crate::oauth::pages::Pages;
use crate::oauth::rate_limit::RateLimits;
use crate::oauth::register::RegistrationPolicy;
use crate::oauth::resources::Resources;
use crate::observability::health::Readiness;
use crate::observability::metrics::{Metrics, Sources};

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub provider: Arc<dyn OAuthServerProvider>,
    /// Issuer identifier, no trailing slash (RFC 8414 §2).
    pub issuer: String,
    pub resources: Resources,
    pub keys: KeyManager,
    pub pages: Pages,
    /// Configured lifetimes (a provider's policy may change them per client).
    pub lifetimes: TokenLifetimes,
    /// Seconds a rotated refresh token may be reused without revoking its family.
    pub refresh_reuse_grace: i64,
    /// Seconds a grant lives at most, however often it is refreshed.
    pub max_grant_lifetime: i64,
    /// Seals refresh-token successors kept for the grace window (the signing keys' KEK).
    pub kek: KeyEncryptionKey,
    /// Who may register clients, and the bounds of a registration.
    pub registration: RegistrationPolicy,
    /// Seconds a remembered consent holds.
    pub consent_ttl: i64,
    /// How often the background purge runs.
    pub purge_interval: std::time::Duration,
    /// Seconds a login transaction lives.
    pub login_ttl: i64,
    pub allow_remember_consent: bool,
    /// The sign-in throttle (password guessing), applied through the provider's store.
    pub login_throttle: LoginThrottle,
    /// Sign-ins in flight per client address (a fair share of the password-hashing pool).
    pub sign_in_gate: AddressGate,
    /// When this process last recorded each client's use (`clients list` shows it).
    pub client_usage: crate::oauth::client_usage::ClientUsage,
    /// Cookies get `Secure` and the `__Host-` prefix when the issuer is https.
    pub secure_cookies: bool,
    /// Whose `X-Forwarded-For` is believed (`[server] trusted_proxies`).
    pub trusted_proxies: TrustedProxies,
    /// `[limits]`: request sizes, timeouts, connection limits.
    pub limits: LimitsSettings,
    /// Per-address request rates and open login transactions.
    pub rate_limits: RateLimits,
    /// Client ID Metadata Documents: URL client ids, their fetcher and cache.
    pub cimd: Cimd,
    /// Metrics, readiness and where `/metrics` is served.
    pub observability: Observability,
}

/// What the operators' endpoints need (see [`crate::observability`]).
#[derive(Debug)]
pub struct Observability {
    pub metrics: Metrics,
    pub readiness: Readiness,
    /// `[metrics] enabled`.
    pub metrics_enabled: bool,
    /// `[server] admin_bind` is set: `/metrics` is served there, not on the main listener.
    pub admin_listener: bool,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state from validated settings and an opened provider; loads (or creates) keys.
    /// `sources` are the pools `/metrics` reports (password hashing, storage connections).
    pub async fn new(
        settings: &Settings,
        provider: Arc<dyn OAuthServerProvider>,
        kek: KeyEncryptionKey,
        sources: Sources,
    ) -> anyhow::Result<Self> {
        let issuer = settings.issuer_url()?;
        let algorithm = settings.keys.algorithm.jwt();
        let keys = KeyManager::new(algorithm, kek.clone())
            .with_verified_cache(settings.limits.verified_token_cache_entries);
        keys.init(provider.keys(), now()).await?;
        let t = &settings.tokens;
        let trusted_proxies = TrustedProxies::parse(&settings.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?;
        Ok(Self(Arc::new(Inner {
            trusted_proxies,
            limits: settings.limits.clone(),
            rate_limits: RateLimits::new(&settings.limits, settings.login.transaction_ttl),
            provider,
            secure_cookies: issuer.starts_with("https://"),
            issuer,
            resources: Resources::new(settings.resources()?),
            keys,
            pages: Pages::new(settings)?,
            lifetimes: t.lifetimes(),
            refresh_reuse_grace: secs(t.refresh_reuse_grace),
            max_grant_lifetime: secs(t.max_grant_lifetime),
            kek,
            registration: RegistrationPolicy::from_settings(&settings.registration)?,
            consent_ttl: secs(settings.login.consent_ttl),
            purge_interval: settings.server.purge_interval,
            login_ttl: secs(settings.login.transaction_ttl),
            allow_remember_consent: settings.login.allow_remember_consent,
            login_throttle: LoginThrottle::new(&settings.login),
            sign_in_gate: AddressGate::new(settings.login.max_concurrent_per_address),
            observability: Observability {
                metrics: Metrics::new(sources)?,
                readiness: Readiness::new(&settings.health),
                metrics_enabled: settings.metrics.enabled,
                admin_listener: settings.admin_bind()?.is_some(),
            },
            cimd: Cimd::new(&settings.registration)?,
            client_usage: Default::default(),
        })))
    }

    /// How long a revoked family must be remembered: longer than anything in it can live.
    pub fn revoked_family_memory_until(&self, t: UnixTime) -> UnixTime {
        crate::oauth::grants::remember_revoked_until(&self.lifetimes, t)
    }

    /// `issuer` + `path`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch.
pub use mcp_oauth_provider::unix_now as now;
