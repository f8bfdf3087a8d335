//! Settings, loaded in layers with the `config` crate: compiled-in `config/default.toml` → the
//! `--config FILE` → `MCP_OAUTH__SECTION__KEY` environment variables. Unknown keys are rejected with a
//! message naming the key.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use url::Url;

use crate::oauth::redirect_uri::is_loopback;
use crate::oauth::resources::{Resource, canonical_uri, is_valid_scope_token};

/// The compiled-in defaults (every key, documented).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variable prefix; sections and keys are separated by `__`.
pub const ENV_PREFIX: &str = "MCP_OAUTH";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub users: UsersSettings,
    #[serde(default)]
    pub policy: PolicySettings,
    pub tokens: TokenSettings,
    pub keys: KeySettings,
    pub login: LoginSettings,
    pub registration: RegistrationSettings,
    #[serde(default)]
    pub resources: Vec<ResourceSettings>,
    #[serde(default)]
    pub demo_mcp: DemoMcpSettings,
    pub limits: LimitsSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub metrics: MetricsSettings,
    #[serde(default)]
    pub health: HealthSettings,
    #[serde(default)]
    pub ui: UiSettings,
    /// `[upstreams.<name>]`: identity providers users may sign in with beside `[users]`, each with
    /// `kind` and that kind's keys. Checked by the registry.
    #[serde(default)]
    pub upstreams: std::collections::BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// `[log]`: what the server logs and how (`RUST_LOG`, when set, wins over `level`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A `tracing` filter: a level, optionally with per-module directives
    /// (`"info,mcp_oauth=debug"`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: DEFAULT_LOG_LEVEL.into(),
            format: LogFormat::Text,
        }
    }
}

/// The default `[log] level` (sqlx and rmcp are held at warn on top of any level, see
/// `observability::logging`).
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// `[log] format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// `[metrics]`: the Prometheus endpoint `GET /metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `/metrics` at all (on `[server] admin_bind` when set, else to loopback clients only).
    pub enabled: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `[health]`: the readiness probe `GET /readyz`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSettings {
    /// How long a readiness result is reused, so probes cannot hammer the database (0 = never).
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub readiness_cache: Duration,
    /// How long one check of the storage or the directory may take before it counts as down.
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub readiness_timeout: Duration,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            readiness_cache: Duration::from_secs(1),
            readiness_timeout: Duration::from_secs(3),
        }
    }
}

/// `[ui]`: how the sign-in, consent and error pages present this server. Every key is optional;
/// values are HTML-escaped where they are shown.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiSettings {
    /// The server's name on every page; default: the issuer's host.
    #[serde(default)]
    pub title: Option<String>,
    /// A logo: an `https` URL, or a path on this server's origin (`/static/logo.svg`).
    #[serde(default)]
    pub logo_url: Option<String>,
    /// The colour of primary buttons and focus rings: a CSS hex colour (`#1a73e8` or `#17e`).
    #[serde(default)]
    pub accent_color: Option<String>,
}

/// The longest `[ui] title` shown (characters).
const MAX_UI_TITLE_CHARS: usize = 80;

impl UiSettings {
    /// `title`, trimmed, when set and not empty.
    pub fn title(&self) -> Option<&str> {
        self.title
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// `logo_url` when set and not empty.
    pub fn logo_url(&self) -> Option<&str> {
        self.logo_url
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// `accent_color` when set and not empty.
    pub fn accent_color(&self) -> Option<&str> {
        self.accent_color
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    fn validate(&self) -> anyhow::Result<()> {
        if let Some(title) = self.title()
            && (title.chars().count() > MAX_UI_TITLE_CHARS || title.chars().any(char::is_control))
        {
            bail!(
                "ui.title must be at most {MAX_UI_TITLE_CHARS} characters without control characters"
            );
        }
        if let Some(logo) = self.logo_url() {
            logo_source(logo).map_err(|why| anyhow::anyhow!("ui.logo_url {logo:?}: {why}"))?;
        }
        if let Some(colour) = self.accent_color()
            && !is_hex_colour(colour)
        {
            bail!(
                "ui.accent_color {colour:?} must be a CSS hex colour like \"#1a73e8\" or \"#17e\""
            );
        }
        Ok(())
    }
}

/// Where a logo comes from, for the pages' Content-Security-Policy `img-src`: `'self'` for a path on
/// this origin, the URL's origin for an `https` URL. Anything else (another scheme, credentials,
/// a protocol-relative `//host` path, characters that could end the CSP directive) is refused.
pub fn logo_source(logo: &str) -> Result<String, &'static str> {
    if logo
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ';' | ',' | '\\' | '\'' | '"'))
    {
        return Err("must not contain spaces, quotes, backslashes, ';' or ','");
    }
    if logo.starts_with('/') {
        if logo.starts_with("//") {
            return Err("a path must start with a single '/' (\"//host\" is another origin)");
        }
        return Ok("'self'".into());
    }
    let url = Url::parse(logo).map_err(|_| "must be an https URL or a path starting with '/'")?;
    if url.scheme() != "https" {
        return Err("must be an https URL or a path starting with '/'");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials");
    }
    if url.host_str().is_none() {
        return Err("must name a host");
    }
    Ok(url.origin().ascii_serialization())
}

/// `#rgb` or `#rrggbb`.
pub fn is_hex_colour(s: &str) -> bool {
    s.strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `[demo_mcp]`: the demo MCP server `serve` mounts on the authorization server's own origin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoMcpSettings {
    pub enabled: bool,
    /// Where it is mounted; the `[[resources]]` entry `issuer + path` describes it.
    pub path: String,
    /// Extra `Host` values accepted besides the issuer's host (`host` = any port, `host:port`).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Extra browser origins accepted besides the issuer's own (`scheme://host[:port]`).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

impl Default for DemoMcpSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            path: "/mcp".into(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    /// Empty: derived from a loopback `bind` (see [`Settings::issuer_url`]).
    #[serde(default)]
    pub issuer: String,
    /// Proxies (IPs or CIDR networks) whose `X-Forwarded-For` names the client address.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// How often expired records and unused registrations are purged and signing keys reloaded.
    #[serde(
        default = "default_purge_interval",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub purge_interval: Duration,
    /// A second listener for `/metrics`, `/healthz` and `/readyz` only (empty = none).
    #[serde(default)]
    pub admin_bind: String,
}

fn default_purge_interval() -> Duration {
    Duration::from_secs(60)
}

/// `[registration]`: who may register clients (RFC 7591) and what a registration may hold.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSettings {
    /// Anyone may register authorization_code + refresh_token clients (MCP clients rely on it).
    pub open: bool,
    /// RFC 7591 §3 initial access token (secret: never printed). Presenting it as a bearer token
    /// allows `client_credentials` clients, and any registration when `open = false`.
    #[serde(default)]
    pub initial_access_token: Option<String>,
    /// A file holding the initial access token (first line), instead of the key above.
    #[serde(default)]
    pub initial_access_token_file: Option<String>,
    /// An anonymous registration that no user approved within this time is deleted.
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub unused_client_ttl: Duration,
    pub max_redirect_uris: usize,
    pub max_redirect_uri_length: usize,
    /// Largest registration request body, in bytes.
    pub max_request_bytes: usize,
    /// Accept Client ID Metadata Documents (an https URL as `client_id`) and advertise it.
    pub client_id_metadata_documents: bool,
    /// Host patterns a document URL's host must match (`app.example.com`, `*.example.com`); empty =
    /// any public host.
    pub cimd_allowed_hosts: Vec<String>,
    /// Largest document accepted, in bytes (the body is cut off while streaming).
    pub cimd_max_bytes: usize,
    /// Connect + total time for one document fetch.
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub cimd_timeout: Duration,
    /// A fetched document is kept at least this long, whatever its cache headers say.
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub cimd_cache_min_ttl: Duration,
    /// …and at most this long.
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub cimd_cache_max_ttl: Duration,
    /// Document fetches per minute to one host (a fetch is outbound traffic an anonymous request
    /// causes: it must not be a way to flood someone else's server).
    pub cimd_fetches_per_minute_per_host: u32,
    /// PEM file of CA certificates trusted for document fetches instead of the system roots; empty =
    /// system roots.
    #[serde(default)]
    pub cimd_ca_file: Option<String>,
    /// Longest a document client's `private_key_jwt` assertion may live (`exp` - now).
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub cimd_assertion_max_lifetime: Duration,
    /// Tests only: let documents be served from loopback addresses. Off by default.
    pub cimd_allow_loopback: bool,
}

impl std::fmt::Debug for RegistrationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationSettings")
            .field("open", &self.open)
            .field(
                "initial_access_token",
                &self.initial_access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("initial_access_token_file", &self.initial_access_token_file)
            .field("unused_client_ttl", &self.unused_client_ttl)
            .field("max_redirect_uris", &self.max_redirect_uris)
            .field("max_redirect_uri_length", &self.max_redirect_uri_length)
            .field("max_request_bytes", &self.max_request_bytes)
            .field(
                "client_id_metadata_documents",
                &self.client_id_metadata_documents,
            )
            .field("cimd_allowed_hosts", &self.cimd_allowed_hosts)
            .field("cimd_max_bytes", &self.cimd_max_bytes)
            .field("cimd_timeout", &self.cimd_timeout)
            .field("cimd_cache_min_ttl", &self.cimd_cache_min_ttl)
            .field("cimd_cache_max_ttl", &self.cimd_cache_max_ttl)
            .field(
                "cimd_fetches_per_minute_per_host",
                &self.cimd_fetches_per_minute_per_host,
            )
            .field("cimd_ca_file", &self.cimd_ca_file)
            .field(
                "cimd_assertion_max_lifetime",
                &self.cimd_assertion_max_lifetime,
            )
            .field("cimd_allow_loopback", &self.cimd_allow_loopback)
            .finish()
    }
}

impl RegistrationSettings {
    /// The `cimd_*` keys: bounds, and host patterns that parse.
    fn validate_cimd(&self) -> anyhow::Result<()> {
        if !(256..=65_536).contains(&self.cimd_max_bytes) {
            bail!("registration.cimd_max_bytes must be between 256 and 65536");
        }
        if self.cimd_timeout < Duration::from_millis(100)
            || self.cimd_timeout > Duration::from_secs(60)
        {
            bail!("registration.cimd_timeout must be between 100ms and 60s");
        }
        if self.cimd_cache_min_ttl.as_secs() == 0 {
            bail!("registration.cimd_cache_min_ttl must be at least one second");
        }
        if self.cimd_cache_max_ttl < self.cimd_cache_min_ttl {
            bail!(
                "registration.cimd_cache_max_ttl must be at least registration.cimd_cache_min_ttl"
            );
        }
        if self.cimd_cache_max_ttl > Duration::from_secs(7 * 24 * 3600) {
            bail!("registration.cimd_cache_max_ttl must not exceed 7 days");
        }
        if !(1..=10_000).contains(&self.cimd_fetches_per_minute_per_host) {
            bail!("registration.cimd_fetches_per_minute_per_host must be between 1 and 10000");
        }
        if self.cimd_assertion_max_lifetime.as_secs() == 0
            || self.cimd_assertion_max_lifetime > Duration::from_secs(3600)
        {
            bail!("registration.cimd_assertion_max_lifetime must be between 1s and 1h");
        }
        for pattern in &self.cimd_allowed_hosts {
            crate::oauth::cimd::hosts::HostPattern::parse(pattern)
                .map_err(|e| anyhow::anyhow!("registration.cimd_allowed_hosts: {e}"))?;
        }
        if self.cimd_allow_loopback {
            tracing::warn!(
                "registration.cimd_allow_loopback = true: client metadata documents may be served \
                 from loopback addresses (a test setting; never in production)"
            );
        }
        if let Some(path) = self.cimd_ca_file.as_deref().filter(|p| !p.is_empty()) {
            let pem = std::fs::read(path)
                .with_context(|| format!("reading registration.cimd_ca_file {path:?}"))?;
            if reqwest::Certificate::from_pem_bundle(&pem)
                .map(|c| c.is_empty())
                .unwrap_or(true)
            {
                bail!("registration.cimd_ca_file {path:?} holds no PEM certificate");
            }
        }
        Ok(())
    }
}

/// Shortest initial access token accepted (it guards machine clients: it must not be guessable).
pub const MIN_INITIAL_ACCESS_TOKEN_LEN: usize = 32;

impl RegistrationSettings {
    /// The initial access token from the setting or its file; `None` when neither is set.
    pub fn initial_access_token(&self) -> anyhow::Result<Option<String>> {
        let token = match (
            self.initial_access_token
                .as_deref()
                .filter(|t| !t.is_empty()),
            self.initial_access_token_file
                .as_deref()
                .filter(|p| !p.is_empty()),
        ) {
            (Some(_), Some(_)) => bail!(
                "registration.initial_access_token and registration.initial_access_token_file are \
                 both set; use one"
            ),
            (Some(t), None) => t.trim().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| {
                    format!("reading registration.initial_access_token_file {path:?}")
                })?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            (None, None) => return Ok(None),
        };
        if token.len() < MIN_INITIAL_ACCESS_TOKEN_LEN {
            bail!(
                "registration.initial_access_token must be at least {MIN_INITIAL_ACCESS_TOKEN_LEN} \
                 characters (e.g. openssl rand -base64 32)"
            );
        }
        Ok(Some(token))
    }
}

/// `[storage]`: the core's keys, and one table per storage kind (`[storage.<kind>]`), which the
/// registry hands to that backend alone (see `registry::Sections`).
#[derive(Clone, Deserialize)]
pub struct StorageSettings {
    pub kind: String,
    /// Database URL (may carry a password: never printed). Handed to the backend as its `url`.
    #[serde(default)]
    pub url: Option<String>,
    /// Directory for the embedded database and generated secrets; empty = the platform data dir.
    #[serde(default)]
    pub data_dir: Option<String>,
    /// Every other key: backend tables, and the keys that lived in `[storage]` itself before each
    /// backend had its own table (still forwarded to the selected backend). Checked by the registry,
    /// which knows the kinds.
    #[serde(flatten)]
    pub tables: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for StorageSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSettings")
            .field("kind", &self.kind)
            .field("url", &self.url.as_ref().map(|_| "<set>"))
            .field("data_dir", &self.data_dir)
            .field("tables", &self.tables.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `[users]`: the core's keys, and one table per authenticator kind (`[users.<kind>]`).
#[derive(Debug, Clone, Deserialize)]
pub struct UsersSettings {
    pub kind: String,
    #[serde(default)]
    pub accounts: Vec<AccountSettings>,
    #[serde(default = "yes")]
    pub create_admin: bool,
    /// Shortest password `users add` / `users passwd` accept, in characters.
    #[serde(default = "default_min_password_length")]
    pub min_password_length: usize,
    /// Every other key: authenticator tables (`[users.ldap]`, `[users.<plugin>]`). Checked by the
    /// registry.
    #[serde(flatten)]
    pub tables: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

fn default_min_password_length() -> usize {
    12
}

/// Bounds of `[users] min_password_length`.
pub const MIN_PASSWORD_LENGTH_RANGE: std::ops::RangeInclusive<usize> = 8..=1024;

/// `[policy]`: which policy decides scopes, lifetimes and registrations (`standard` = the safe
/// defaults), with its table `[policy.<kind>]`.
#[derive(Debug, Clone, Deserialize)]
pub struct PolicySettings {
    pub kind: String,
    #[serde(flatten)]
    pub tables: serde_json::Map<String, serde_json::Value>,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            kind: "standard".into(),
            tables: serde_json::Map::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSettings {
    pub username: String,
    pub password_hash: String,
    #[serde(default)]
    pub subject: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub access_token_ttl: Duration,
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub refresh_token_ttl: Duration,
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub code_ttl: Duration,
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub refresh_reuse_grace: Duration,
    /// The absolute lifetime of a grant: after it the user signs in again, however often the
    /// refresh token was rotated.
    #[serde(
        default = "default_max_grant_lifetime",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub max_grant_lifetime: Duration,
}

impl TokenSettings {
    /// The configured lifetimes in seconds.
    pub fn lifetimes(&self) -> mcp_oauth_provider::TokenLifetimes {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        mcp_oauth_provider::TokenLifetimes {
            access_token: secs(self.access_token_ttl),
            refresh_token: secs(self.refresh_token_ttl),
            code: secs(self.code_ttl),
        }
    }
}

fn default_max_grant_lifetime() -> Duration {
    Duration::from_secs(90 * 86_400)
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub algorithm: SigningAlgorithm,
    /// Base64 of 32 bytes sealing the signing keys at rest (secret: never printed).
    #[serde(default)]
    pub encryption_key: Option<String>,
}

/// `[keys] algorithm`: how access tokens are signed (RFC 9068 §2.1; RFC 8037 for EdDSA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum SigningAlgorithm {
    /// Ed25519 (the default).
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl TryFrom<String> for SigningAlgorithm {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            _ => Err(format!(
                "{name:?} is not supported (use \"EdDSA\" or \"ES256\")"
            )),
        }
    }
}

impl SigningAlgorithm {
    /// The `jsonwebtoken` algorithm.
    pub fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }

    /// The JOSE name, as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }
}

impl std::fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySettings")
            .field("algorithm", &self.algorithm)
            .field(
                "encryption_key",
                &self.encryption_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginSettings {
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub transaction_ttl: Duration,
    pub allow_remember_consent: bool,
    /// How long a remembered consent holds.
    #[serde(
        default = "default_consent_ttl",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub consent_ttl: Duration,
    pub password_hash_concurrency: usize,
    /// Failed sign-ins for one username from one address before that address is refused for it.
    #[serde(default = "default_max_failed_attempts")]
    pub max_failed_attempts: u32,
    /// A counter with no failure for this long starts again. `lockout`, its name before the
    /// throttle counted per address, is still read.
    #[serde(
        default = "default_failure_window",
        alias = "lockout",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub failure_window: Duration,
    /// Failures of one username from any address before its back-off starts.
    #[serde(default = "default_backoff_after")]
    pub backoff_after: u32,
    /// The longest back-off (it doubles from one second).
    #[serde(
        default = "default_backoff_max",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub backoff_max: Duration,
    /// How long an address that signed in as a user is spared that user's back-off (0 = never).
    #[serde(
        default = "default_known_address_ttl",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub known_address_ttl: Duration,
    /// Sign-ins one client address may have in flight at once (per server process).
    #[serde(default = "default_max_concurrent_per_address")]
    pub max_concurrent_per_address: usize,
}

fn default_consent_ttl() -> Duration {
    Duration::from_secs(30 * 86_400)
}

fn default_max_failed_attempts() -> u32 {
    5
}

fn default_failure_window() -> Duration {
    Duration::from_secs(15 * 60)
}

fn default_backoff_after() -> u32 {
    10
}

fn default_backoff_max() -> Duration {
    Duration::from_secs(5 * 60)
}

fn default_known_address_ttl() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

fn default_max_concurrent_per_address() -> usize {
    2
}

impl LoginSettings {
    /// The throttle's bounds (`config check` reports the first one broken).
    fn validate(&self) -> anyhow::Result<()> {
        if !(1..=1000).contains(&self.max_failed_attempts) {
            bail!(
                "login.max_failed_attempts must be between 1 and 1000 (the sign-in throttle can \
                 no longer be switched off; it counts per username and address, with \
                 login.failure_window, login.backoff_after, login.backoff_max and \
                 login.known_address_ttl)"
            );
        }
        if !(1..=10_000).contains(&self.backoff_after) {
            bail!("login.backoff_after must be between 1 and 10000");
        }
        let (min, day) = (Duration::from_secs(1), Duration::from_secs(24 * 3600));
        if self.failure_window < min || self.failure_window > 7 * day {
            bail!("login.failure_window (or its old name login.lockout) must be between 1s and 7d");
        }
        if self.backoff_max < min || self.backoff_max > Duration::from_secs(3600) {
            bail!("login.backoff_max must be between 1s and 1h");
        }
        if self.known_address_ttl > 400 * day {
            bail!("login.known_address_ttl must be at most 400d (0 turns known addresses off)");
        }
        if !(1..=64).contains(&self.max_concurrent_per_address) {
            bail!("login.max_concurrent_per_address must be between 1 and 64");
        }
        Ok(())
    }
}

/// `[limits]`: what one client address, one connection and one request may cost (issue 8 §2, §7).
/// Every key is documented in `config/default.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSettings {
    /// Master switch of the per-address request rates (load tests turn it off).
    pub rate_limits: bool,
    pub authorize_per_minute: u32,
    pub authorize_burst: u32,
    pub login_per_minute: u32,
    pub login_burst: u32,
    pub register_per_minute: u32,
    pub register_burst: u32,
    pub token_per_minute: u32,
    pub token_burst: u32,
    /// Login transactions one address may have open (0 = no limit).
    pub max_open_logins_per_address: u32,
    pub max_state_bytes: usize,
    pub max_parameter_bytes: usize,
    pub max_query_bytes: usize,
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub header_read_timeout: Duration,
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub body_read_timeout: Duration,
    #[serde(deserialize_with = "mcp_oauth_provider::duration::deserialize")]
    pub handler_timeout: Duration,
    /// Open connections in all (0 = derived from the open-file limit).
    pub max_connections: u32,
    /// Open connections per peer address (0 = no limit; trusted proxies are exempt).
    pub max_connections_per_address: u32,
    /// This server's own access tokens remembered as verified (by digest, until `exp`), so a
    /// token introspected again skips its signature check (0 = check every time).
    pub verified_token_cache_entries: usize,
}

impl LimitsSettings {
    /// The checks `config check` runs on `[limits]`.
    fn validate(&self) -> anyhow::Result<()> {
        for (name, per_minute, burst) in [
            ("authorize", self.authorize_per_minute, self.authorize_burst),
            ("login", self.login_per_minute, self.login_burst),
            ("register", self.register_per_minute, self.register_burst),
            ("token", self.token_per_minute, self.token_burst),
        ] {
            if per_minute > 0 && burst == 0 {
                bail!(
                    "limits.{name}_burst must be at least 1 when limits.{name}_per_minute is set \
                     (0 per minute switches the limit off)"
                );
            }
        }
        if !(64..=2048).contains(&self.max_state_bytes) {
            bail!(
                "limits.max_state_bytes must be between 64 (room for a nonce) and 2048 (the most \
                 the server echoes)"
            );
        }
        if self.max_parameter_bytes < 512 || self.max_parameter_bytes < self.max_state_bytes {
            bail!(
                "limits.max_parameter_bytes must be at least 512 and at least limits.max_state_bytes"
            );
        }
        if self.max_query_bytes < self.max_parameter_bytes {
            bail!("limits.max_query_bytes must be at least limits.max_parameter_bytes");
        }
        for (name, d) in [
            ("limits.header_read_timeout", self.header_read_timeout),
            ("limits.body_read_timeout", self.body_read_timeout),
            ("limits.handler_timeout", self.handler_timeout),
        ] {
            if d < Duration::from_secs(1) || d > Duration::from_secs(3600) {
                bail!("{name} must be between 1 second and 1 hour");
            }
        }
        if self.max_connections != 0 && self.max_connections < 2 {
            bail!("limits.max_connections must be at least 2 (or 0 for automatic)");
        }
        if self.max_connections != 0
            && self.max_connections_per_address != 0
            && self.max_connections_per_address >= self.max_connections
        {
            bail!(
                "limits.max_connections_per_address must be below limits.max_connections, or one \
                 address could hold every connection"
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceSettings {
    pub uri: String,
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Words shown beside each scope on the consent page: `{ "mcp:tools" = "Use the tools" }`.
    #[serde(default)]
    pub scope_descriptions: std::collections::BTreeMap<String, String>,
}

/// The longest scope description shown (characters).
const MAX_SCOPE_DESCRIPTION_CHARS: usize = 200;

/// Scope descriptions per resource URI (canonical), then per scope.
pub type ScopeDescriptions =
    std::collections::HashMap<String, std::collections::BTreeMap<String, String>>;

impl Settings {
    /// Loads the layers and validates the result.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with_env(file, std::env::vars())
    }

    /// Like [`Settings::load`], with the environment given explicitly (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<Self> {
        use config::{Config, Environment, File, FileFormat};
        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        let env_map: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}__")))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                // MCP_OAUTH__SERVER__TRUSTED_PROXIES="10.0.0.0/8,::1"
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                // MCP_OAUTH__DEMO_MCP__ALLOWED_HOSTS="a.example,b.example"
                .with_list_parse_key("demo_mcp.allowed_hosts")
                .with_list_parse_key("demo_mcp.allowed_origins")
                .source(Some(env_map)),
        );
        let settings: Settings = builder
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what serde cannot: addresses, issuer form, resources, algorithm.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.server.bind.parse::<SocketAddr>().with_context(|| {
            format!(
                "server.bind {:?} is not an address like 127.0.0.1:9000",
                self.server.bind
            )
        })?;
        // With `bind = "…:0"` and no issuer, the issuer is known only once `serve` has bound.
        if !self.issuer_awaits_bind() {
            self.issuer_url()?;
            self.resources()?;
        }
        if let Some(admin) = self.admin_bind()?
            && self.server.bind.parse::<SocketAddr>().ok() == Some(admin)
        {
            bail!("server.admin_bind must differ from server.bind");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log.level) {
            bail!("log.level {:?} is not a log filter: {e}", self.log.level);
        }
        let h = &self.health;
        if h.readiness_cache > Duration::from_secs(60) {
            bail!("health.readiness_cache must be at most 60 seconds");
        }
        if h.readiness_timeout < Duration::from_millis(100)
            || h.readiness_timeout > Duration::from_secs(30)
        {
            bail!("health.readiness_timeout must be between 100 ms and 30 seconds");
        }
        crate::oauth::client_address::TrustedProxies::parse(&self.server.trusted_proxies)
            .map_err(|e| anyhow::anyhow!("server.trusted_proxies: {e}"))?;
        // Resources default to `<issuer>/mcp`: with the issuer awaiting the bound port, they are
        // checked again by `with_bound_address`.
        if !self.issuer_awaits_bind() {
            self.scope_descriptions()?;
        }
        self.ui.validate()?;
        let path = &self.demo_mcp.path;
        if !path.starts_with('/')
            || path.len() < 2
            || path.ends_with('/')
            || path.contains(['?', '#', ' '])
        {
            bail!(
                "demo_mcp.path {path:?} must be a path like \"/mcp\" (leading slash, no trailing \
                 slash, no query)"
            );
        }
        for (name, d) in [
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.refresh_token_ttl", self.tokens.refresh_token_ttl),
            ("tokens.code_ttl", self.tokens.code_ttl),
            ("login.transaction_ttl", self.login.transaction_ttl),
            ("login.consent_ttl", self.login.consent_ttl),
            ("tokens.max_grant_lifetime", self.tokens.max_grant_lifetime),
            ("server.purge_interval", self.server.purge_interval),
            (
                "registration.unused_client_ttl",
                self.registration.unused_client_ttl,
            ),
        ] {
            if d.as_secs() == 0 {
                bail!("{name} must be at least one second");
            }
        }
        self.login.validate()?;
        if self.tokens.max_grant_lifetime < self.tokens.access_token_ttl {
            bail!("tokens.max_grant_lifetime must be at least tokens.access_token_ttl");
        }
        let r = &self.registration;
        if r.max_redirect_uris == 0 || r.max_redirect_uris > 100 {
            bail!("registration.max_redirect_uris must be between 1 and 100");
        }
        if !(64..=8192).contains(&r.max_redirect_uri_length) {
            bail!("registration.max_redirect_uri_length must be between 64 and 8192");
        }
        if !(1024..=1_048_576).contains(&r.max_request_bytes) {
            bail!("registration.max_request_bytes must be between 1024 and 1048576");
        }
        r.validate_cimd()?;
        let token = r.initial_access_token()?;
        if !r.open && token.is_none() {
            tracing::warn!(
                "registration.open = false and no initial access token: only administrators can \
                 create clients (mcp-oauth clients add)"
            );
        }
        if self.tokens.code_ttl > Duration::from_secs(600) {
            bail!("tokens.code_ttl must not exceed 10 minutes (OAuth 2.1 §4.1.2)");
        }
        self.limits.validate()?;
        if !MIN_PASSWORD_LENGTH_RANGE.contains(&self.users.min_password_length) {
            bail!(
                "users.min_password_length must be between {} and {}",
                MIN_PASSWORD_LENGTH_RANGE.start(),
                MIN_PASSWORD_LENGTH_RANGE.end()
            );
        }
        for a in &self.users.accounts {
            if a.username.trim().is_empty() {
                bail!("users.accounts: an account has an empty username");
            }
            if !a.password_hash.starts_with("$argon2") {
                bail!(
                    "users.accounts: the password_hash of {:?} is not an argon2 PHC string \
                     (generate one with `mcp-oauth users hash-password`)",
                    a.username
                );
            }
        }
        Ok(())
    }

    /// `[server] admin_bind`, parsed; `None` when empty.
    pub fn admin_bind(&self) -> anyhow::Result<Option<SocketAddr>> {
        let raw = self.server.admin_bind.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        raw.parse().map(Some).with_context(|| {
            format!("server.admin_bind {raw:?} is not an address like 127.0.0.1:9001")
        })
    }

    /// The issuer without a trailing slash; https, or http on a loopback host (MCP: all authorization
    /// server endpoints MUST be served over HTTPS; loopback is the development exception).
    ///
    /// An empty `server.issuer` is derived from a loopback `server.bind` (`http://<bind>`), so the
    /// issuer follows the address the server listens on; any other bind needs an explicit issuer.
    pub fn issuer_url(&self) -> anyhow::Result<String> {
        if self.issuer_is_derived() {
            return self.issuer_from_bind();
        }
        let raw = self.server.issuer.trim().trim_end_matches('/');
        let url = Url::parse(raw)
            .with_context(|| format!("server.issuer {raw:?} is not an absolute URL"))?;
        if url.query().is_some() || url.fragment().is_some() {
            bail!("server.issuer must not have a query or fragment (RFC 8414 §2)");
        }
        if url.path() != "/" && !url.path().is_empty() {
            bail!("server.issuer must be an origin without a path, e.g. https://auth.example.com");
        }
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            _ => bail!("server.issuer must use https (http is allowed only on a loopback host)"),
        }
        Ok(raw.to_string())
    }

    /// Whether `server.issuer` is left empty, to be derived from `server.bind`.
    pub fn issuer_is_derived(&self) -> bool {
        self.server.issuer.trim().is_empty()
    }

    /// The issuer is derived from a bind on port 0: it is known once `serve` has bound
    /// ([`Settings::with_bound_address`]).
    pub fn issuer_awaits_bind(&self) -> bool {
        self.issuer_is_derived()
            && self
                .server
                .bind
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.port() == 0 && a.ip().is_loopback())
    }

    fn issuer_from_bind(&self) -> anyhow::Result<String> {
        let bind = &self.server.bind;
        let addr: SocketAddr = bind.parse().with_context(|| {
            format!("server.bind {bind:?} is not an address like 127.0.0.1:9000")
        })?;
        if !addr.ip().is_loopback() {
            bail!(
                "server.issuer is not set, and server.bind {bind} is not a loopback address, so the \
                 issuer cannot be derived from it: set server.issuer to the public https URL \
                 clients reach this server at (e.g. MCP_OAUTH__SERVER__ISSUER=https://auth.example.com)"
            );
        }
        if addr.port() == 0 {
            bail!(
                "server.issuer is not set and server.bind {bind} asks for any free port: the issuer \
                 is derived from the port `serve` gets when it binds; set server.issuer to fix it"
            );
        }
        Ok(format!("http://{addr}"))
    }

    /// After `serve` bound `addr`: a derived issuer becomes `http://<addr>` (the real port when
    /// `bind` asked for port 0). An explicit issuer is kept.
    pub fn with_bound_address(mut self, addr: SocketAddr) -> anyhow::Result<Self> {
        if self.issuer_is_derived() {
            self.server.bind = addr.to_string();
            self.server.issuer = format!("http://{addr}");
            self.issuer_url()?;
            self.scope_descriptions()?;
        }
        Ok(self)
    }

    /// Declared resources, canonicalised and checked. With none declared, the demo resource at
    /// `<issuer>/mcp` (scopes `mcp:tools`, `mcp:admin`).
    pub fn resources(&self) -> anyhow::Result<Vec<Resource>> {
        if self.resources.is_empty() {
            return Ok(vec![Resource {
                uri: format!("{}/mcp", self.issuer_url()?),
                name: "Demo MCP server".into(),
                scopes: vec!["mcp:tools".into(), "mcp:admin".into()],
            }]);
        }
        let mut out: Vec<Resource> = Vec::new();
        for r in &self.resources {
            let uri = canonical_uri(&r.uri)
                .map_err(|e| anyhow::anyhow!("resources: {:?}: {e}", r.uri))?;
            if out.iter().any(|o| o.uri == uri) {
                bail!("resources: {uri} is declared twice");
            }
            for s in &r.scopes {
                if !is_valid_scope_token(s) {
                    bail!("resources: scope {s:?} of {uri} is not a valid scope token");
                }
            }
            out.push(Resource {
                uri,
                name: r.name.clone(),
                scopes: r.scopes.clone(),
            });
        }
        Ok(out)
    }

    /// `[[resources]] scope_descriptions`, keyed by the canonical resource URI. A description of a
    /// scope the resource does not declare is an error naming both. The assumed demo resource
    /// describes its two scopes.
    pub fn scope_descriptions(&self) -> anyhow::Result<ScopeDescriptions> {
        let mut out = ScopeDescriptions::new();
        if self.resources.is_empty() {
            for r in self.resources()? {
                out.insert(
                    r.uri,
                    [
                        ("mcp:tools", "Use the demo server's tools"),
                        ("mcp:admin", "Use the demo server's administrator tools"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                );
            }
            return Ok(out);
        }
        for r in &self.resources {
            let uri = canonical_uri(&r.uri)
                .map_err(|e| anyhow::anyhow!("resources: {:?}: {e}", r.uri))?;
            let mut described = std::collections::BTreeMap::new();
            for (scope, text) in &r.scope_descriptions {
                if !r.scopes.contains(scope) {
                    bail!(
                        "resources: scope_descriptions of {uri} describes {scope:?}, which is not \
                         one of its scopes ({})",
                        r.scopes.join(", ")
                    );
                }
                let text = text.trim();
                if text.is_empty()
                    || text.chars().count() > MAX_SCOPE_DESCRIPTION_CHARS
                    || text.chars().any(char::is_control)
                {
                    bail!(
                        "resources: scope_descriptions of {uri}: the description of {scope:?} must \
                         be 1 to {MAX_SCOPE_DESCRIPTION_CHARS} characters without control characters"
                    );
                }
                described.insert(scope.clone(), text.to_string());
            }
            out.insert(uri, described);
        }
        Ok(out)
    }

    /// The URI of the demo MCP server: `issuer + [demo_mcp] path`.
    pub fn demo_mcp_uri(&self) -> anyhow::Result<String> {
        Ok(format!("{}{}", self.issuer_url()?, self.demo_mcp.path))
    }

    /// The declared resource the demo MCP server is, when it is enabled and declared. An enabled
    /// demo without a matching `[[resources]]` entry is not mounted (a warning says why): an
    /// operator who declares their own resources replaces the default list and need not know the
    /// demo exists.
    pub fn demo_mcp_resource(&self) -> anyhow::Result<Option<Resource>> {
        if !self.demo_mcp.enabled {
            return Ok(None);
        }
        let uri =
            canonical_uri(&self.demo_mcp_uri()?).map_err(|e| anyhow::anyhow!("demo_mcp: {e}"))?;
        Ok(self.resources()?.into_iter().find(|r| r.uri == uri))
    }

    /// Where the embedded database and generated secrets live: `[storage] data_dir`, else
    /// `$XDG_DATA_HOME/mcp-oauth`, else `$HOME/.local/share/mcp-oauth`, else `./mcp-oauth-data`.
    pub fn data_dir(&self) -> std::path::PathBuf {
        if let Some(d) = self.storage.data_dir.as_deref().filter(|d| !d.is_empty()) {
            return std::path::PathBuf::from(d);
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
            return std::path::PathBuf::from(x).join("mcp-oauth");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            return std::path::PathBuf::from(h).join(".local/share/mcp-oauth");
        }
        std::path::PathBuf::from("mcp-oauth-data")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(contents: &str) -> tempfile_like::TempToml {
        tempfile_like::TempToml::new(contents)
    }

    /// A tiny temp-file helper (no extra dependency).
    mod tempfile_like {
        pub struct TempToml(pub std::path::PathBuf);
        impl TempToml {
            pub fn new(contents: &str) -> Self {
                let name = format!(
                    "mcp-oauth-config-{}.toml",
                    crate::oauth::secrets::new_secret()
                );
                let path = std::env::temp_dir().join(name);
                std::fs::write(&path, contents).unwrap();
                Self(path)
            }
        }
        impl Drop for TempToml {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    #[test]
    fn secure_default_settings_reject_bad_values() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert!(s.registration.open, "open registration stays on by default");
        assert_eq!(
            s.registration.unused_client_ttl,
            Duration::from_secs(86_400)
        );
        assert_eq!(
            s.tokens.max_grant_lifetime,
            Duration::from_secs(90 * 86_400)
        );
        assert!(s.registration.initial_access_token().unwrap().is_none());
        for (key, value, named) in [
            (
                "MCP_OAUTH__REGISTRATION__INITIAL_ACCESS_TOKEN",
                "short",
                "initial_access_token",
            ),
            (
                "MCP_OAUTH__REGISTRATION__MAX_REDIRECT_URIS",
                "0",
                "max_redirect_uris",
            ),
            (
                "MCP_OAUTH__REGISTRATION__MAX_REDIRECT_URI_LENGTH",
                "10",
                "max_redirect_uri_length",
            ),
            (
                "MCP_OAUTH__REGISTRATION__MAX_REQUEST_BYTES",
                "100",
                "max_request_bytes",
            ),
            (
                "MCP_OAUTH__REGISTRATION__UNUSED_CLIENT_TTL",
                "0s",
                "unused_client_ttl",
            ),
            (
                "MCP_OAUTH__TOKENS__MAX_GRANT_LIFETIME",
                "1s",
                "max_grant_lifetime",
            ),
            ("MCP_OAUTH__LOGIN__CONSENT_TTL", "0s", "consent_ttl"),
            ("MCP_OAUTH__SERVER__PURGE_INTERVAL", "0s", "purge_interval"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)]))
                .err()
                .unwrap_or_else(|| panic!("{key}={value} must be refused"));
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
        let both = write(
            "[registration]\ninitial_access_token = \"0123456789abcdef0123456789abcdef\"\ninitial_access_token_file = \"/nonexistent\"\n",
        );
        assert!(
            Settings::load(Some(&both.0)).is_err(),
            "token and file both set"
        );
        let token_file = write("0123456789abcdef0123456789abcdef\n");
        let from_file = write(&format!(
            "[registration]\ninitial_access_token_file = \"{}\"\n",
            token_file.0.display()
        ));
        let s = Settings::load(Some(&from_file.0)).unwrap();
        assert_eq!(
            s.registration.initial_access_token().unwrap().as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert!(
            !format!("{:?}", s.registration).contains("0123456789abcdef"),
            "never printed"
        );
    }

    #[test]
    fn cimd_settings_have_safe_defaults_and_named_errors() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        let r = &s.registration;
        assert!(r.client_id_metadata_documents);
        assert!(
            !r.cimd_allow_loopback,
            "loopback documents are a test switch"
        );
        assert!(r.cimd_allowed_hosts.is_empty());
        assert_eq!(r.cimd_max_bytes, 5120);
        assert_eq!(r.cimd_timeout, Duration::from_secs(5));
        for (key, value, named) in [
            (
                "MCP_OAUTH__REGISTRATION__CIMD_MAX_BYTES",
                "10",
                "cimd_max_bytes",
            ),
            (
                "MCP_OAUTH__REGISTRATION__CIMD_TIMEOUT",
                "0s",
                "cimd_timeout",
            ),
            (
                "MCP_OAUTH__REGISTRATION__CIMD_CACHE_MIN_TTL",
                "0s",
                "cimd_cache_min_ttl",
            ),
            (
                "MCP_OAUTH__REGISTRATION__CIMD_CACHE_MAX_TTL",
                "1s",
                "cimd_cache_max_ttl",
            ),
            (
                "MCP_OAUTH__REGISTRATION__CIMD_FETCHES_PER_MINUTE_PER_HOST",
                "0",
                "cimd_fetches_per_minute_per_host",
            ),
            (
                "MCP_OAUTH__REGISTRATION__CIMD_ASSERTION_MAX_LIFETIME",
                "2h",
                "cimd_assertion_max_lifetime",
            ),
            (
                "MCP_OAUTH__REGISTRATION__CIMD_CA_FILE",
                "/nonexistent.pem",
                "cimd_ca_file",
            ),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)]))
                .err()
                .unwrap_or_else(|| panic!("{key}={value} must be refused"));
            assert!(err.to_string().contains(named), "{key}: {err:#}");
        }
        let bad_host = write("[registration]\ncimd_allowed_hosts = [\"https://app.example\"]\n");
        let err = Settings::load(Some(&bad_host.0)).unwrap_err();
        assert!(format!("{err:#}").contains("cimd_allowed_hosts"), "{err:#}");
        let good = write("[registration]\ncimd_allowed_hosts = [\"*.example.com\"]\n");
        assert!(Settings::load(Some(&good.0)).is_ok());
    }

    #[test]
    fn defaults_load_without_any_file() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:9000");
        assert_eq!(s.tokens.access_token_ttl, Duration::from_secs(900));
        assert_eq!(s.tokens.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(
            s.resources().unwrap()[0].uri,
            "http://127.0.0.1:9000/mcp",
            "default: <issuer>/mcp"
        );
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let f = write("[server]\nbind = \"127.0.0.1:9100\"\n[tokens]\ncode_ttl = \"30s\"\n");
        let s = Settings::load_with_env(
            Some(&f.0),
            env(&[
                ("MCP_OAUTH__SERVER__BIND", "127.0.0.1:9200"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:9200");
        assert_eq!(s.tokens.code_ttl, Duration::from_secs(30));
    }

    #[test]
    fn observability_settings_are_checked_and_name_their_key() {
        let ok = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(ok.log.format, LogFormat::Text);
        assert_eq!(ok.log.level, DEFAULT_LOG_LEVEL);
        assert!(ok.metrics.enabled);
        assert_eq!(ok.admin_bind().unwrap(), None);
        assert_eq!(ok.health.readiness_cache, Duration::from_secs(1));
        let json = Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__LOG__FORMAT", "json"),
                ("MCP_OAUTH__SERVER__ADMIN_BIND", "127.0.0.1:9001"),
            ]),
        )
        .unwrap();
        assert_eq!(json.log.format, LogFormat::Json);
        assert_eq!(
            json.admin_bind().unwrap(),
            Some("127.0.0.1:9001".parse().unwrap())
        );
        for (key, value, named) in [
            ("MCP_OAUTH__LOG__FORMAT", "xml", "xml"),
            ("MCP_OAUTH__LOG__LEVEL", "info,[[[", "log.level"),
            (
                "MCP_OAUTH__SERVER__ADMIN_BIND",
                "localhost",
                "server.admin_bind",
            ),
            (
                "MCP_OAUTH__SERVER__ADMIN_BIND",
                "127.0.0.1:9000",
                "server.admin_bind",
            ),
            (
                "MCP_OAUTH__HEALTH__READINESS_CACHE",
                "5m",
                "health.readiness_cache",
            ),
            (
                "MCP_OAUTH__HEALTH__READINESS_TIMEOUT",
                "0s",
                "health.readiness_timeout",
            ),
            ("MCP_OAUTH__METRICS__ENABLD", "true", "enabld"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let f = write("[server]\nbindd = \"127.0.0.1:9100\"\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bindd"), "{err}");
        let err = Settings::load_with_env(None, env(&[("MCP_OAUTH__TOKENS__ACCES_TTL", "1m")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("acces_ttl"), "{err}");
        let f = write("[sever]\nbind = \"x\"\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sever"), "{err}");
    }

    #[test]
    fn bad_values_are_explained() {
        let f = write("[server]\nissuer = \"http://auth.example.com\"\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("https"), "{err}");
        let f = write("[tokens]\naccess_token_ttl = \"soon\"\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("soon"), "{err}");
        let f = write("[[users.accounts]]\nusername = \"a\"\npassword_hash = \"plain\"\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hash-password"), "{err}");
    }

    #[test]
    fn trusted_proxies_must_be_addresses_or_networks() {
        let s = Settings::load_with_env(
            None,
            env(&[("MCP_OAUTH__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,::1")]),
        )
        .unwrap();
        assert_eq!(s.server.trusted_proxies, ["10.0.0.0/8", "::1"]);
        let f = write("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n");
        let s = Settings::load_with_env(Some(&f.0), env(&[])).unwrap();
        assert_eq!(s.server.trusted_proxies.len(), 2);
        let f = write("[server]\ntrusted_proxies = [\"proxy.internal\"]\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.trusted_proxies"), "{err}");
        assert!(err.contains("proxy.internal"), "{err}");
    }

    #[test]
    fn sign_in_throttle_settings() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.login.max_failed_attempts, 5);
        assert_eq!(s.login.failure_window, Duration::from_secs(900));
        assert_eq!(s.login.backoff_after, 10);
        assert_eq!(s.login.backoff_max, Duration::from_secs(300));
        assert_eq!(s.login.known_address_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(s.login.max_concurrent_per_address, 2);
        // A config written for the old throttle still loads: `lockout` is the failure window.
        let f = write("[login]\nmax_failed_attempts = 3\nlockout = \"2m\"\n");
        let s = Settings::load_with_env(Some(&f.0), env(&[])).unwrap();
        assert_eq!(s.login.failure_window, Duration::from_secs(120));
        // … except that it can no longer switch the throttle off; the error names the new keys.
        let f = write("[login]\nmax_failed_attempts = 0\n");
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("login.backoff_max"), "{err}");
        for (key, bad) in [
            ("MCP_OAUTH__LOGIN__MAX_FAILED_ATTEMPTS", "1001"),
            ("MCP_OAUTH__LOGIN__BACKOFF_AFTER", "0"),
            ("MCP_OAUTH__LOGIN__FAILURE_WINDOW", "0s"),
            ("MCP_OAUTH__LOGIN__FAILURE_WINDOW", "8d"),
            ("MCP_OAUTH__LOGIN__BACKOFF_MAX", "0s"),
            ("MCP_OAUTH__LOGIN__BACKOFF_MAX", "2h"),
            ("MCP_OAUTH__LOGIN__KNOWN_ADDRESS_TTL", "401d"),
            ("MCP_OAUTH__LOGIN__MAX_CONCURRENT_PER_ADDRESS", "0"),
            ("MCP_OAUTH__LOGIN__MAX_CONCURRENT_PER_ADDRESS", "65"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, bad)]))
                .unwrap_err()
                .to_string();
            let name = key.trim_start_matches("MCP_OAUTH__LOGIN__").to_lowercase();
            assert!(err.contains(&format!("login.{name}")), "{key}={bad}: {err}");
        }
        let ok = Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__LOGIN__KNOWN_ADDRESS_TTL", "0s"),
                ("MCP_OAUTH__LOGIN__FAILURE_WINDOW", "7d"),
                ("MCP_OAUTH__LOGIN__BACKOFF_MAX", "1h"),
                ("MCP_OAUTH__LOGIN__MAX_FAILED_ATTEMPTS", "1000"),
            ]),
        );
        assert!(ok.is_ok(), "the bounds themselves are allowed: {ok:?}");
    }

    #[test]
    fn limits_have_safe_defaults_and_bad_values_are_refused() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        let l = &s.limits;
        assert!(l.rate_limits);
        assert!(l.token_per_minute > 0 && l.register_per_minute > 0);
        assert_eq!(l.max_state_bytes, 1024);
        assert_eq!(l.header_read_timeout, Duration::from_secs(10));
        for (key, value, expect) in [
            ("MCP_OAUTH__LIMITS__TOKEN_BURST", "0", "limits.token_burst"),
            (
                "MCP_OAUTH__LIMITS__MAX_STATE_BYTES",
                "10",
                "max_state_bytes",
            ),
            (
                "MCP_OAUTH__LIMITS__MAX_PARAMETER_BYTES",
                "100",
                "max_parameter_bytes",
            ),
            (
                "MCP_OAUTH__LIMITS__MAX_QUERY_BYTES",
                "1000",
                "max_query_bytes",
            ),
            (
                "MCP_OAUTH__LIMITS__HEADER_READ_TIMEOUT",
                "0s",
                "header_read_timeout",
            ),
            (
                "MCP_OAUTH__LIMITS__BODY_READ_TIMEOUT",
                "2h",
                "body_read_timeout",
            ),
            (
                "MCP_OAUTH__LIMITS__HANDLER_TIMEOUT",
                "500ms",
                "handler_timeout",
            ),
            ("MCP_OAUTH__LIMITS__MAX_CONNECTIONS", "1", "max_connections"),
            ("MCP_OAUTH__LIMITS__RATE_LIMITS", "maybe", "rate_limits"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(expect), "{key}={value}: {err}");
        }
        let err = Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__LIMITS__MAX_CONNECTIONS", "10"),
                ("MCP_OAUTH__LIMITS__MAX_CONNECTIONS_PER_ADDRESS", "10"),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_connections_per_address"), "{err}");
        // 0 per minute switches one limit off; the switch turns them all off.
        Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__LIMITS__TOKEN_PER_MINUTE", "0"),
                ("MCP_OAUTH__LIMITS__TOKEN_BURST", "0"),
                ("MCP_OAUTH__LIMITS__RATE_LIMITS", "false"),
            ]),
        )
        .unwrap();
    }

    #[test]
    fn shipped_examples_load() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Settings::load_with_env(Some(&path), env(&[]))
                    .unwrap_or_else(|e| panic!("{} does not load: {e:#}", path.display()));
            }
        }
    }

    #[test]
    fn the_default_demo_is_the_default_resource() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert!(s.demo_mcp.enabled);
        let r = s.demo_mcp_resource().unwrap().unwrap();
        assert_eq!(r.uri, "http://127.0.0.1:9000/mcp");
        assert_eq!(r.scopes, ["mcp:tools", "mcp:admin"]);
        let off = Settings::load_with_env(None, env(&[("MCP_OAUTH__DEMO_MCP__ENABLED", "false")]))
            .unwrap();
        assert!(off.demo_mcp_resource().unwrap().is_none());
        let moved =
            Settings::load_with_env(None, env(&[("MCP_OAUTH__DEMO_MCP__PATH", "/demo")])).unwrap();
        assert!(
            moved.demo_mcp_resource().unwrap().is_none(),
            "no resource declared there"
        );
        for bad in ["mcp", "/", "/mcp/", "/mcp?x=1"] {
            let err = Settings::load_with_env(None, env(&[("MCP_OAUTH__DEMO_MCP__PATH", bad)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("demo_mcp.path"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_ldap_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/ldap.toml");
        let s = Settings::load_with_env(Some(&path), env(&[])).unwrap();
        assert_eq!(s.users.kind, "ldap");
        let ldap =
            mcp_oauth_provider_ldap::LdapSettings::from_table(&s.users.tables["ldap"]).unwrap();
        mcp_oauth_provider_ldap::LdapAuthenticator::with_env(&ldap, |name| {
            (name == "MCP_OAUTH_LDAP_BIND_PASSWORD").then(|| "example".to_string())
        })
        .unwrap();
        assert_eq!(ldap.scope_map.len(), 1);
    }

    #[test]
    fn the_issuer_follows_a_loopback_bind() {
        let s =
            Settings::load_with_env(None, env(&[("MCP_OAUTH__SERVER__BIND", "127.0.0.1:9201")]))
                .unwrap();
        assert_eq!(s.issuer_url().unwrap(), "http://127.0.0.1:9201");
        assert_eq!(s.resources().unwrap()[0].uri, "http://127.0.0.1:9201/mcp");
        let s = Settings::load_with_env(None, env(&[("MCP_OAUTH__SERVER__BIND", "[::1]:9202")]))
            .unwrap();
        assert_eq!(s.issuer_url().unwrap(), "http://[::1]:9202");
        // An explicit issuer wins (a proxy in front may use another port).
        let s = Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__SERVER__BIND", "127.0.0.1:9201"),
                ("MCP_OAUTH__SERVER__ISSUER", "http://127.0.0.1:9300/"),
            ]),
        )
        .unwrap();
        assert_eq!(s.issuer_url().unwrap(), "http://127.0.0.1:9300");
        // Any other bind cannot guess the public URL: refused, naming both keys.
        let err =
            Settings::load_with_env(None, env(&[("MCP_OAUTH__SERVER__BIND", "0.0.0.0:9000")]))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("server.issuer") && err.contains("server.bind"),
            "{err}"
        );
        // Port 0: known once bound.
        let s = Settings::load_with_env(None, env(&[("MCP_OAUTH__SERVER__BIND", "127.0.0.1:0")]))
            .unwrap();
        assert!(s.issuer_awaits_bind());
        assert!(s.issuer_url().is_err());
        let s = s
            .with_bound_address("127.0.0.1:40123".parse().unwrap())
            .unwrap();
        assert_eq!(s.issuer_url().unwrap(), "http://127.0.0.1:40123");
        assert_eq!(s.demo_mcp_uri().unwrap(), "http://127.0.0.1:40123/mcp");
    }

    #[test]
    fn lists_from_the_environment() {
        let s = Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__DEMO_MCP__ALLOWED_HOSTS", "a.example,b.example"),
                ("MCP_OAUTH__DEMO_MCP__ALLOWED_ORIGINS", "https://a.example"),
            ]),
        )
        .unwrap();
        assert_eq!(s.demo_mcp.allowed_hosts, ["a.example", "b.example"]);
        assert_eq!(s.demo_mcp.allowed_origins, ["https://a.example"]);
    }

    #[test]
    fn min_password_length_is_bounded() {
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        assert_eq!(s.users.min_password_length, 12);
        for bad in ["7", "1025"] {
            let err = Settings::load_with_env(
                None,
                env(&[("MCP_OAUTH__USERS__MIN_PASSWORD_LENGTH", bad)]),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("users.min_password_length"), "{bad}: {err}");
        }
    }

    #[test]
    fn resources_from_file_replace_the_default() {
        let f = write(
            "[[resources]]\nuri = \"https://mcp.example.com/mcp\"\nname = \"x\"\nscopes = [\"a\"]\n",
        );
        let s = Settings::load_with_env(Some(&f.0), env(&[])).unwrap();
        let r = s.resources().unwrap();
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].uri, "https://mcp.example.com/mcp");
    }

    #[test]
    fn scope_descriptions_are_read_per_resource_and_checked() {
        let f = write(
            "[[resources]]\nuri = \"https://mcp.example.com/mcp\"\nname = \"x\"\n\
             scopes = [\"mcp:tools\", \"Files.Read\"]\n\
             scope_descriptions = { \"mcp:tools\" = \"Use the tools\", \"Files.Read\" = \"Read your files\" }\n",
        );
        let s = Settings::load_with_env(Some(&f.0), env(&[])).unwrap();
        let d = s.scope_descriptions().unwrap();
        let r = &d["https://mcp.example.com/mcp"];
        assert_eq!(r["mcp:tools"], "Use the tools");
        assert_eq!(
            r["Files.Read"], "Read your files",
            "case and dots kept: {r:?}"
        );

        let f = write(
            "[[resources]]\nuri = \"https://mcp.example.com/mcp\"\nname = \"x\"\nscopes = [\"a\"]\n\
             scope_descriptions = { \"mcp:admin\" = \"Administer\" }\n",
        );
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scope_descriptions")
                && err.contains("\"mcp:admin\"")
                && err.contains("https://mcp.example.com/mcp"),
            "{err}"
        );
        let f = write(
            "[[resources]]\nuri = \"https://mcp.example.com/mcp\"\nname = \"x\"\nscopes = [\"a\"]\n\
             scope_descriptions = { \"a\" = \"  \" }\n",
        );
        let err = Settings::load_with_env(Some(&f.0), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("the description of \"a\""), "{err}");
        // The assumed demo resource describes its scopes.
        let s = Settings::load_with_env(None, env(&[])).unwrap();
        let d = s.scope_descriptions().unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            d.values()
                .all(|r| r.contains_key("mcp:tools") && r.contains_key("mcp:admin"))
        );
    }

    #[test]
    fn ui_settings_are_validated_with_the_key_named() {
        let ok = Settings::load_with_env(
            None,
            env(&[
                ("MCP_OAUTH__UI__TITLE", "Example <Corp>"),
                (
                    "MCP_OAUTH__UI__LOGO_URL",
                    "https://cdn.example.com/logo.svg",
                ),
                ("MCP_OAUTH__UI__ACCENT_COLOR", "#1A73e8"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.ui.title(), Some("Example <Corp>"));
        assert!(
            Settings::load_with_env(
                None,
                env(&[("MCP_OAUTH__UI__LOGO_URL", "/static/logo.png")])
            )
            .is_ok()
        );
        for (key, value, needle) in [
            (
                "MCP_OAUTH__UI__LOGO_URL",
                "http://cdn.example.com/logo.svg",
                "ui.logo_url",
            ),
            (
                "MCP_OAUTH__UI__LOGO_URL",
                "javascript:alert(1)",
                "ui.logo_url",
            ),
            (
                "MCP_OAUTH__UI__LOGO_URL",
                "//evil.example/logo.svg",
                "ui.logo_url",
            ),
            (
                "MCP_OAUTH__UI__LOGO_URL",
                "https://u:p@cdn.example.com/l.svg",
                "ui.logo_url",
            ),
            (
                "MCP_OAUTH__UI__LOGO_URL",
                "https://cdn.example.com/a;script-src *",
                "ui.logo_url",
            ),
            ("MCP_OAUTH__UI__LOGO_URL", "logo.svg", "ui.logo_url"),
            ("MCP_OAUTH__UI__ACCENT_COLOR", "red", "ui.accent_color"),
            ("MCP_OAUTH__UI__ACCENT_COLOR", "#12345", "ui.accent_color"),
            (
                "MCP_OAUTH__UI__ACCENT_COLOR",
                "#fff;}body{x",
                "ui.accent_color",
            ),
            ("MCP_OAUTH__UI__TITLE", &"x".repeat(81), "ui.title"),
            ("MCP_OAUTH__UI__TITLE", "a\u{7}b", "ui.title"),
        ] {
            let err = Settings::load_with_env(None, env(&[(key, value)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{value:?}: {err}");
        }
        let err = Settings::load_with_env(None, env(&[("MCP_OAUTH__UI__COLOUR", "#fff")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "unknown keys are refused: {err}");
    }
}
