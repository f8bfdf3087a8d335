//! `[users.oidc]`: every key, its default and its check (see `config/examples/oidc.toml`).

use std::path::PathBuf;
use std::time::Duration;

use mcp_oauth_provider::upstream::is_upstream_name;
use mcp_oauth_provider::{FactoryContext, ProviderError, ProviderResult};
use serde::Deserialize;

/// A group and the scopes its members may grant (as LDAP's `scope_map`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScopeMapping {
    pub group: String,
    pub scopes: Vec<String>,
}

/// `[users.oidc]` as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The last segment of our callback URL `<issuer>/login/callback/<name>`.
    #[serde(default = "default_name")]
    pub name: String,
    /// The login button says "Sign in with `label`"; default: the issuer's host.
    #[serde(default)]
    pub label: Option<String>,
    /// The upstream's issuer identifier; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Our client id at the upstream.
    pub client_id: String,
    /// The environment variable holding our client secret (never the config file's text).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// A file holding our client secret (first line, surrounding whitespace ignored).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Scopes requested upstream; must contain `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID-token claim that becomes our subject, as `<name>:<claim>` (the tokens' `sub`).
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Groups mapped to the scopes their members may grant.
    #[serde(default)]
    pub scope_map: Vec<ScopeMapping>,
    /// Scopes every upstream user may grant.
    #[serde(default)]
    pub default_scopes: Vec<String>,
    /// When set (with `allowed_groups`), only users with a verified e-mail in one of these domains
    /// (or in one of `allowed_groups`) may sign in.
    #[serde(default)]
    pub allowed_email_domains: Vec<String>,
    /// When set (with `allowed_email_domains`), only members of one of these groups (or users of
    /// an allowed domain) may sign in.
    #[serde(default)]
    pub allowed_groups: Vec<String>,
    /// Each request to the upstream (discovery, JWKS, token) gives up after this.
    #[serde(default = "default_timeout", with = "mcp_oauth_provider::duration")]
    pub timeout: Duration,
    /// How long discovery metadata and the JWKS are reused before they are fetched again.
    #[serde(
        default = "default_metadata_ttl",
        with = "mcp_oauth_provider::duration"
    )]
    pub metadata_ttl: Duration,
    /// An ID token signed with a key not in the cached JWKS fetches the JWKS again at most this
    /// often (key rotation upstream, without letting bad tokens hammer the upstream).
    #[serde(
        default = "default_jwks_refetch",
        with = "mcp_oauth_provider::duration"
    )]
    pub jwks_refetch_interval: Duration,
    /// Tolerated clock difference for the ID token's `exp`, `iat` and `nbf`.
    #[serde(default = "default_clock_skew", with = "mcp_oauth_provider::duration")]
    pub clock_skew: Duration,
    /// The largest response body read from the upstream, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}

fn default_name() -> String {
    "oidc".into()
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_email_claim() -> String {
    "email".into()
}
fn default_name_claim() -> String {
    "name".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_metadata_ttl() -> Duration {
    Duration::from_secs(3600)
}
fn default_jwks_refetch() -> Duration {
    Duration::from_secs(30)
}
fn default_clock_skew() -> Duration {
    Duration::from_secs(60)
}
fn default_max_response_bytes() -> usize {
    1024 * 1024
}

/// Our client secret at the upstream: never printed.
#[derive(Clone)]
pub struct ClientSecret(pub String);

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// Whether `url` may be an upstream endpoint: https, or http on a loopback host (tests, a local
/// provider).
pub fn is_acceptable_endpoint(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

fn is_scope_token(s: &str) -> bool {
    // RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E.
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl OidcSettings {
    /// Parses and checks `[users.oidc]`; each error names the section and the key.
    pub fn from_context(ctx: &FactoryContext) -> ProviderResult<Self> {
        let s: Self = ctx.parse_settings()?;
        s.check(ctx)?;
        Ok(s)
    }

    fn check(&self, ctx: &FactoryContext) -> ProviderResult<()> {
        let bad = |key: &str, msg: &str| ctx.invalid(format_args!("{key}: {msg}"));
        if !is_upstream_name(&self.name) {
            return Err(bad(
                "name",
                "must be 1-64 characters of a-z, 0-9, - and _ (it is a path segment of the callback URL)",
            ));
        }
        let issuer = url::Url::parse(&self.issuer)
            .map_err(|e| bad("issuer", &format!("is not a URL ({e})")))?;
        if !is_acceptable_endpoint(&issuer) {
            return Err(bad(
                "issuer",
                "must be https (http only on a loopback host such as 127.0.0.1)",
            ));
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return Err(bad(
                "issuer",
                "must not have a query or fragment (OpenID Connect Discovery §2)",
            ));
        }
        if self.client_id.is_empty() {
            return Err(bad("client_id", "must not be empty"));
        }
        if self.client_secret_env.is_some() && self.client_secret_file.is_some() {
            return Err(bad(
                "client_secret_env",
                "and client_secret_file are both set; keep one",
            ));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return Err(bad(
                "scopes",
                "must contain \"openid\" (this is an OpenID Connect sign-in)",
            ));
        }
        for (key, list) in [
            ("scopes", &self.scopes),
            ("default_scopes", &self.default_scopes),
        ] {
            if let Some(s) = list.iter().find(|s| !is_scope_token(s)) {
                return Err(bad(
                    key,
                    &format!("{s:?} is not a scope token (RFC 6749 §3.3)"),
                ));
            }
        }
        for m in &self.scope_map {
            if m.group.is_empty() {
                return Err(bad("scope_map", "a mapping has an empty group"));
            }
            if let Some(s) = m.scopes.iter().find(|s| !is_scope_token(s)) {
                return Err(bad(
                    "scope_map",
                    &format!("{s:?} is not a scope token (RFC 6749 §3.3)"),
                ));
            }
        }
        for claim in [
            ("subject_claim", &self.subject_claim),
            ("username_claim", &self.username_claim),
            ("email_claim", &self.email_claim),
            ("name_claim", &self.name_claim),
            ("groups_claim", &self.groups_claim),
        ] {
            if claim.1.is_empty() {
                return Err(bad(claim.0, "must not be empty"));
            }
        }
        if let Some(d) = self
            .allowed_email_domains
            .iter()
            .find(|d| d.is_empty() || d.contains('@') || d.starts_with('.'))
        {
            return Err(bad(
                "allowed_email_domains",
                &format!("{d:?} is not a domain (write example.com, without @)"),
            ));
        }
        for (key, d, min) in [
            ("timeout", self.timeout, Duration::from_millis(100)),
            ("metadata_ttl", self.metadata_ttl, Duration::from_secs(1)),
            (
                "jwks_refetch_interval",
                self.jwks_refetch_interval,
                Duration::ZERO,
            ),
        ] {
            if d < min {
                return Err(bad(key, &format!("must be at least {min:?}")));
            }
        }
        if self.timeout > Duration::from_secs(45) {
            // The core gives up on an upstream sign-in after 50 seconds.
            return Err(bad("timeout", "must be at most 45s"));
        }
        if self.clock_skew > Duration::from_secs(600) {
            return Err(bad("clock_skew", "must be at most 10m"));
        }
        if !(4096..=16 * 1024 * 1024).contains(&self.max_response_bytes) {
            return Err(bad(
                "max_response_bytes",
                "must be between 4096 and 16777216",
            ));
        }
        Ok(())
    }

    /// The issuer without a trailing slash, for building the discovery URL.
    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }

    /// The login button's label.
    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| {
            url::Url::parse(&self.issuer)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| self.issuer.clone())
        })
    }

    /// Reads the client secret from the environment variable or file named in the settings.
    /// Errors name the key and the variable or file, never the secret.
    pub fn client_secret(&self, ctx: &FactoryContext) -> ProviderResult<Option<ClientSecret>> {
        read_client_secret(
            ctx,
            self.client_secret_env.as_deref(),
            self.client_secret_file.as_deref(),
        )
    }
}

/// Our client secret from the environment variable `env` or the first line of `file` (surrounding
/// white space ignored); `None` when neither is set (a public client). Errors name the key and the
/// variable or file, never the secret.
pub fn read_client_secret(
    ctx: &FactoryContext,
    env: Option<&str>,
    file: Option<&std::path::Path>,
) -> ProviderResult<Option<ClientSecret>> {
    if let Some(var) = env {
        let value = std::env::var(var).map_err(|_| {
            ctx.invalid(format_args!(
                "client_secret_env: the environment variable {var} is not set (or not UTF-8)"
            ))
        })?;
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err(ctx.invalid(format_args!(
                "client_secret_env: the environment variable {var} is empty"
            )));
        }
        return Ok(Some(ClientSecret(value)));
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ctx.invalid(format_args!(
                "client_secret_file: cannot read {}: {e}",
                path.display()
            ))
        })?;
        let value = text.lines().next().unwrap_or("").trim().to_string();
        if value.is_empty() {
            return Err(ctx.invalid(format_args!(
                "client_secret_file: {} is empty",
                path.display()
            )));
        }
        return Ok(Some(ClientSecret(value)));
    }
    Ok(None)
}

/// A backend error for upstream metadata that cannot be used (the message says why).
pub fn bad_metadata(message: impl Into<String>) -> ProviderError {
    ProviderError::backend_msg(message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn ctx(v: serde_json::Value) -> FactoryContext {
        FactoryContext::new("users.oidc", v, PathBuf::from("."))
    }

    fn err(v: serde_json::Value) -> String {
        OidcSettings::from_context(&ctx(v)).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_checks() {
        let base = json!({"issuer": "https://sso.example.com/realms/x", "client_id": "mcp"});
        let s = OidcSettings::from_context(&ctx(base.clone())).unwrap();
        assert_eq!(s.name, "oidc");
        assert_eq!(s.label(), "sso.example.com");
        assert_eq!(
            s.discovery_url(),
            "https://sso.example.com/realms/x/.well-known/openid-configuration"
        );
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            b
        };
        assert!(
            err(with("issuer", json!("http://sso.example.com"))).contains("issuer: must be https")
        );
        OidcSettings::from_context(&ctx(with("issuer", json!("http://127.0.0.1:8080")))).unwrap();
        assert!(err(with("name", json!("A/B"))).contains("name:"));
        assert!(err(with("scopes", json!(["email"]))).contains("scopes: must contain"));
        assert!(
            err(with("allowed_email_domains", json!(["@x.com"]))).contains("allowed_email_domains")
        );
        assert!(err(with("timeout", json!("1h"))).contains("timeout: must be at most"));
        assert!(err(with("max_response_bytes", json!(10))).contains("max_response_bytes"));
        assert!(err(with("client_secret", json!("x"))).contains("unknown field `client_secret`"));
        let mut both = with("client_secret_env", json!("X"));
        both["client_secret_file"] = json!("/nonexistent");
        assert!(err(both).contains("keep one"));
        assert!(err(json!({"client_id": "x"})).contains("issuer"));
    }

    #[test]
    fn the_secret_comes_from_a_file_and_never_prints() {
        let dir = std::env::temp_dir().join(format!("oidc-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "  s3cr3t-value \n").unwrap();
        let c = ctx(json!({"issuer": "https://a.example", "client_id": "c",
                           "client_secret_file": file}));
        let s = OidcSettings::from_context(&c).unwrap();
        let secret = s.client_secret(&c).unwrap().unwrap();
        assert_eq!(secret.0, "s3cr3t-value");
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        let missing = ctx(json!({"issuer": "https://a.example", "client_id": "c",
                                 "client_secret_env": "MCP_OAUTH_TEST_SURELY_UNSET_VAR"}));
        let s = OidcSettings::from_context(&missing).unwrap();
        let e = s.client_secret(&missing).unwrap_err().to_string();
        assert!(
            e.contains("MCP_OAUTH_TEST_SURELY_UNSET_VAR is not set"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
