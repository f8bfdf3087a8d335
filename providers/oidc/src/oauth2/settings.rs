//! `[upstreams.<name>] kind = "oauth2"` and `kind = "github"`: every key, its default and its check
//! (see `config/examples/github.toml`).
//!
//! `oauth2` needs its endpoints and userinfo URL configured; `github` has defaults for github.com
//! (`api_url` moves them all to a GitHub Enterprise server, or to a test's upstream) and adds the
//! org/team allow-list. The client secret comes from an environment variable or a file only.

use std::path::PathBuf;
use std::time::Duration;

use mcp_oauth_provider::upstream::is_upstream_name;
use mcp_oauth_provider::{FactoryContext, ProviderResult};
use serde::Deserialize;

use crate::settings::{ClientSecret, ScopeMapping, is_acceptable_endpoint};

/// Which flavour of plain OAuth 2 upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// Any OAuth 2 provider with a userinfo API (RFC 6749 §4.1 + a JSON user endpoint).
    Generic,
    /// GitHub (github.com or Enterprise): defaults for its endpoints, org/team allow-lists.
    GitHub,
}

/// The table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    label: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret_env: Option<String>,
    #[serde(default)]
    client_secret_file: Option<PathBuf>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    userinfo_url: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    subject_path: Option<String>,
    #[serde(default)]
    username_path: Option<String>,
    #[serde(default)]
    email_path: Option<String>,
    #[serde(default)]
    name_path: Option<String>,
    #[serde(default)]
    groups_path: Option<String>,
    #[serde(default)]
    scope_map: Vec<ScopeMapping>,
    #[serde(default)]
    default_scopes: Vec<String>,
    #[serde(default)]
    allowed_groups: Vec<String>,
    #[serde(default)]
    allowed_users: Vec<String>,
    // GitHub only.
    #[serde(default)]
    api_url: Option<String>,
    #[serde(default)]
    allowed_orgs: Vec<String>,
    #[serde(default)]
    allowed_teams: Vec<String>,
    #[serde(default = "default_max_pages")]
    max_membership_pages: u32,
    #[serde(default = "default_timeout", with = "mcp_oauth_provider::duration")]
    timeout: Duration,
    #[serde(default = "default_max_response_bytes")]
    max_response_bytes: usize,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_max_response_bytes() -> usize {
    1024 * 1024
}
fn default_max_pages() -> u32 {
    10
}

/// How we authenticate at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAuth {
    /// HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// The checked settings, defaults filled in.
#[derive(Debug, Clone)]
pub struct OAuth2Settings {
    pub flavour: Flavour,
    pub name: String,
    pub label: String,
    pub client_id: String,
    pub client_secret_env: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_url: String,
    /// When set: the RFC 9207 `iss` the upstream puts on its answers, then required and compared.
    pub issuer: Option<String>,
    pub token_auth: TokenAuth,
    pub scopes: Vec<String>,
    pub subject_path: String,
    pub username_path: String,
    pub email_path: String,
    pub name_path: String,
    /// Where groups are in the userinfo answer (`None`: no groups, or GitHub's orgs and teams).
    pub groups_path: Option<String>,
    pub scope_map: Vec<ScopeMapping>,
    pub default_scopes: Vec<String>,
    pub allowed_groups: Vec<String>,
    pub allowed_users: Vec<String>,
    /// GitHub: the REST API's base URL (no trailing slash).
    pub api_url: String,
    pub allowed_orgs: Vec<String>,
    /// GitHub: `org/team-slug`.
    pub allowed_teams: Vec<String>,
    pub max_membership_pages: u32,
    pub timeout: Duration,
    pub max_response_bytes: usize,
}

const GITHUB_WEB: &str = "https://github.com";
const GITHUB_API: &str = "https://api.github.com";

fn is_scope_token(s: &str) -> bool {
    // RFC 6749 §3.3: %x21 / %x23-5B / %x5D-7E.
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

impl OAuth2Settings {
    /// Parses and checks the table of `[upstreams.<name>]` (with `name` set to the table's key).
    pub fn from_context(ctx: &FactoryContext, flavour: Flavour) -> ProviderResult<Self> {
        let raw: Raw = ctx.parse_settings()?;
        let bad = |key: &str, msg: &str| ctx.invalid(format_args!("{key}: {msg}"));
        if !is_upstream_name(&raw.name) {
            return Err(bad("name", "must be 1-64 characters of a-z, 0-9, - and _"));
        }
        let github = flavour == Flavour::GitHub;
        if !github {
            for (key, set) in [
                ("api_url", raw.api_url.is_some()),
                ("allowed_orgs", !raw.allowed_orgs.is_empty()),
                ("allowed_teams", !raw.allowed_teams.is_empty()),
            ] {
                if set {
                    return Err(bad(key, "is a key of kind = \"github\" only"));
                }
            }
        }
        let api_url = raw
            .api_url
            .clone()
            .unwrap_or_else(|| GITHUB_API.to_string())
            .trim_end_matches('/')
            .to_string();
        // GitHub Enterprise Server serves the web flow on its host and the API under /api/v3; a
        // configured api_url that is not api.github.com keeps the web endpoints on the same base.
        let web = if api_url == GITHUB_API {
            GITHUB_WEB.to_string()
        } else {
            api_url
                .strip_suffix("/api/v3")
                .unwrap_or(&api_url)
                .to_string()
        };
        let required = |key: &str, v: Option<String>, github_default: String| match (v, github) {
            (Some(v), _) => Ok(v),
            (None, true) => Ok(github_default),
            (None, false) => Err(bad(key, "is required for kind = \"oauth2\"")),
        };
        let authorization_endpoint = required(
            "authorization_endpoint",
            raw.authorization_endpoint,
            format!("{web}/login/oauth/authorize"),
        )?;
        let token_endpoint = required(
            "token_endpoint",
            raw.token_endpoint,
            format!("{web}/login/oauth/access_token"),
        )?;
        let userinfo_url = required("userinfo_url", raw.userinfo_url, format!("{api_url}/user"))?;
        let mut urls = vec![
            ("authorization_endpoint", &authorization_endpoint),
            ("token_endpoint", &token_endpoint),
            ("userinfo_url", &userinfo_url),
        ];
        if github {
            urls.push(("api_url", &api_url));
        }
        for (key, value) in urls {
            let ok = url::Url::parse(value).is_ok_and(|u| is_acceptable_endpoint(&u));
            if !ok {
                return Err(bad(
                    key,
                    &format!("{value:?} must be an https URL (http only on a loopback host)"),
                ));
            }
        }
        if raw.client_id.is_empty() {
            return Err(bad("client_id", "must not be empty"));
        }
        if raw.client_secret_env.is_some() && raw.client_secret_file.is_some() {
            return Err(bad(
                "client_secret_env",
                "and client_secret_file are both set; keep one",
            ));
        }
        let token_auth = match raw.token_endpoint_auth_method.as_deref() {
            None if github => TokenAuth::Post,
            None | Some("client_secret_basic") => TokenAuth::Basic,
            Some("client_secret_post") => TokenAuth::Post,
            Some(other) => {
                return Err(bad(
                    "token_endpoint_auth_method",
                    &format!(
                        "{other:?} is not supported (client_secret_basic or client_secret_post)"
                    ),
                ));
            }
        };
        let checks_membership = !raw.allowed_orgs.is_empty()
            || !raw.allowed_teams.is_empty()
            || (github && (!raw.scope_map.is_empty() || !raw.allowed_groups.is_empty()));
        let scopes = raw.scopes.unwrap_or_else(|| {
            if !github {
                Vec::new()
            } else if checks_membership {
                vec!["read:user".into(), "read:org".into()]
            } else {
                vec!["read:user".into()]
            }
        });
        for (key, list) in [("scopes", &scopes), ("default_scopes", &raw.default_scopes)] {
            if let Some(s) = list.iter().find(|s| !is_scope_token(s)) {
                return Err(bad(
                    key,
                    &format!("{s:?} is not a scope token (RFC 6749 §3.3)"),
                ));
            }
        }
        for m in &raw.scope_map {
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
        if let Some(t) = raw.allowed_teams.iter().find(|t| {
            !t.split_once('/')
                .is_some_and(|(o, s)| !o.is_empty() && !s.is_empty())
        }) {
            return Err(bad(
                "allowed_teams",
                &format!("{t:?} is not written org/team-slug"),
            ));
        }
        if let Some(o) = raw
            .allowed_orgs
            .iter()
            .find(|o| o.is_empty() || o.contains('/'))
        {
            return Err(bad(
                "allowed_orgs",
                &format!("{o:?} is not an organization's login"),
            ));
        }
        let groups_path = match (raw.groups_path, github) {
            (Some(_), true) => {
                return Err(bad(
                    "groups_path",
                    "is not used with kind = \"github\": its groups are the user's orgs and \
                     org/team slugs, read from the GitHub API",
                ));
            }
            (p, _) => p,
        };
        if !github && groups_path.is_none() && !raw.allowed_groups.is_empty() {
            return Err(bad(
                "allowed_groups",
                "needs groups_path (where the userinfo answer lists the user's groups)",
            ));
        }
        let path = |key: &str, v: Option<String>, default: &str| -> ProviderResult<String> {
            let v = v.unwrap_or_else(|| default.to_string());
            if v.is_empty() || v.split('.').any(str::is_empty) {
                return Err(bad(
                    key,
                    "must be a JSON path of dot-separated member names, e.g. \"id\" or \"data.user.id\"",
                ));
            }
            Ok(v)
        };
        let (sub, user) = if github {
            ("id", "login")
        } else {
            ("sub", "preferred_username")
        };
        if let Some(issuer) = &raw.issuer
            && url::Url::parse(issuer).is_err()
        {
            return Err(bad("issuer", "is not a URL"));
        }
        if raw.timeout < Duration::from_millis(100) || raw.timeout > Duration::from_secs(45) {
            // The core gives up on an upstream sign-in after 50 seconds.
            return Err(bad("timeout", "must be between 100ms and 45s"));
        }
        if !(4096..=16 * 1024 * 1024).contains(&raw.max_response_bytes) {
            return Err(bad(
                "max_response_bytes",
                "must be between 4096 and 16777216",
            ));
        }
        if !(1..=100).contains(&raw.max_membership_pages) {
            return Err(bad("max_membership_pages", "must be between 1 and 100"));
        }
        let label = raw.label.clone().unwrap_or_else(|| {
            if github {
                "GitHub".to_string()
            } else {
                url::Url::parse(&authorization_endpoint)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_else(|| raw.name.clone())
            }
        });
        Ok(Self {
            flavour,
            label,
            client_id: raw.client_id,
            client_secret_env: raw.client_secret_env,
            client_secret_file: raw.client_secret_file,
            authorization_endpoint,
            token_endpoint,
            userinfo_url,
            issuer: raw.issuer,
            token_auth,
            scopes,
            subject_path: path("subject_path", raw.subject_path, sub)?,
            username_path: path("username_path", raw.username_path, user)?,
            email_path: path("email_path", raw.email_path, "email")?,
            name_path: path("name_path", raw.name_path, "name")?,
            groups_path: groups_path
                .map(|p| path("groups_path", Some(p), ""))
                .transpose()?,
            scope_map: raw.scope_map,
            default_scopes: raw.default_scopes,
            allowed_groups: raw.allowed_groups,
            allowed_users: raw.allowed_users,
            api_url,
            allowed_orgs: raw.allowed_orgs,
            allowed_teams: raw.allowed_teams,
            max_membership_pages: raw.max_membership_pages,
            timeout: raw.timeout,
            max_response_bytes: raw.max_response_bytes,
            name: raw.name,
        })
    }

    /// Whether sign-in must read the user's GitHub orgs and teams (allow-list or groups → scopes).
    pub fn reads_memberships(&self) -> bool {
        self.flavour == Flavour::GitHub
            && (!self.allowed_orgs.is_empty()
                || !self.allowed_teams.is_empty()
                || !self.allowed_groups.is_empty()
                || !self.scope_map.is_empty())
    }

    /// The client secret from the environment variable or file (errors name the place, never the
    /// secret).
    pub fn client_secret(&self, ctx: &FactoryContext) -> ProviderResult<Option<ClientSecret>> {
        crate::settings::read_client_secret(
            ctx,
            self.client_secret_env.as_deref(),
            self.client_secret_file.as_deref(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value, flavour: Flavour) -> ProviderResult<OAuth2Settings> {
        OAuth2Settings::from_context(&FactoryContext::new("upstreams.x", v, ".".into()), flavour)
    }

    #[test]
    fn github_defaults_point_at_github_com_or_an_enterprise_server() {
        let s = parse(json!({"name": "gh", "client_id": "c"}), Flavour::GitHub).unwrap();
        assert_eq!(
            s.authorization_endpoint,
            "https://github.com/login/oauth/authorize"
        );
        assert_eq!(
            s.token_endpoint,
            "https://github.com/login/oauth/access_token"
        );
        assert_eq!(s.userinfo_url, "https://api.github.com/user");
        assert_eq!(
            (s.label.as_str(), s.token_auth),
            ("GitHub", TokenAuth::Post)
        );
        assert_eq!(
            s.scopes,
            vec!["read:user"],
            "no read:org without org checks"
        );
        assert_eq!(
            (s.subject_path.as_str(), s.username_path.as_str()),
            ("id", "login")
        );
        let ghes = parse(
            json!({"name": "gh", "client_id": "c", "api_url": "https://git.example.com/api/v3/",
                   "allowed_teams": ["corp/ops"]}),
            Flavour::GitHub,
        )
        .unwrap();
        assert_eq!(
            ghes.authorization_endpoint,
            "https://git.example.com/login/oauth/authorize"
        );
        assert_eq!(ghes.userinfo_url, "https://git.example.com/api/v3/user");
        assert_eq!(ghes.scopes, vec!["read:user", "read:org"]);
        assert!(ghes.reads_memberships());
    }

    #[test]
    fn every_bad_key_is_named() {
        let generic = json!({"name": "x", "client_id": "c",
            "authorization_endpoint": "https://a.example/authorize",
            "token_endpoint": "https://a.example/token", "userinfo_url": "https://a.example/me"});
        let s = parse(generic.clone(), Flavour::Generic).unwrap();
        assert_eq!((s.token_auth, s.scopes.len()), (TokenAuth::Basic, 0));
        let err = |change: serde_json::Value, flavour| {
            let mut v = generic.clone();
            for (k, x) in change.as_object().unwrap() {
                v[k] = x.clone();
            }
            parse(v, flavour).unwrap_err().to_string()
        };
        for (change, wanted) in [
            (
                json!({"token_endpoint": "http://a.example/token"}),
                "token_endpoint:",
            ),
            (
                json!({"allowed_groups": ["g"]}),
                "allowed_groups: needs groups_path",
            ),
            (
                json!({"token_endpoint_auth_method": "private_key_jwt"}),
                "not supported",
            ),
            (json!({"subject_path": "a..b"}), "subject_path:"),
            (json!({"scopes": ["a b"]}), "scopes:"),
            (json!({"timeout": "1m"}), "timeout:"),
            (
                json!({"client_secret": "s"}),
                "unknown field `client_secret`",
            ),
        ] {
            let e = err(change.clone(), Flavour::Generic);
            assert!(
                e.contains("[upstreams.x]") && e.contains(wanted),
                "{change}: {e}"
            );
        }
        let e = err(json!({"allowed_teams": ["no-slash"]}), Flavour::GitHub);
        assert!(e.contains("allowed_teams"), "{e}");
        let e = err(json!({"groups_path": "g"}), Flavour::GitHub);
        assert!(e.contains("groups_path: is not used"), "{e}");
    }
}
