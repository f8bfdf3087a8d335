//! `[users.ldap]`: the typed settings of the LDAP authenticator, their checks, and the service
//! account's password (read from an environment variable or a file, never from the config itself, and
//! never printed: [`Secret`] has a redacting `Debug`).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::dn::{fill_template, has_placeholder, normalize_dn};

/// What is wrong with `[users.ldap]`.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("[users.ldap] is missing (users.kind = \"ldap\" needs it)")]
    Missing,
    #[error("invalid [users.ldap]: {0}")]
    Invalid(String),
    #[error("users.ldap.{key}: {message}")]
    Key { key: &'static str, message: String },
}

fn key_error(key: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError::Key {
        key,
        message: message.into(),
    }
}

/// How a user's DN is found before the bind that checks the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    /// The DN is `user_dn_template` with the DN-escaped username.
    Direct,
    /// A service account searches `base_dn` with `user_filter`; exactly one entry must match.
    Search,
}

/// Where a user's groups come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSource {
    /// The user entry's `memberOf` attribute (OpenLDAP memberof overlay, Active Directory).
    #[default]
    MemberOf,
    /// A search under `group_base_dn` with `group_filter`.
    Search,
    /// No group lookup (only `default_scopes` apply).
    None,
}

/// Members of `group` may be granted `scopes`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeMapping {
    pub group: String,
    pub scopes: Vec<String>,
}

/// `[users.ldap]` as written in the config (see `config/examples/ldap.toml` for every key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// `ldap://host:389`, `ldaps://host:636`.
    pub url: String,
    pub mode: BindMode,
    /// Direct mode: the user's DN with `{username}`, e.g. `uid={username},ou=people,dc=example,dc=org`.
    #[serde(default)]
    pub user_dn_template: Option<String>,
    /// Search mode: where users are searched (subtree).
    #[serde(default)]
    pub base_dn: Option<String>,
    /// Search mode: the filter with `{username}`.
    #[serde(default = "default_user_filter")]
    pub user_filter: String,
    /// Search mode: the service account that searches.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// Name of the environment variable holding the service account's password.
    #[serde(default)]
    pub bind_password_env: Option<String>,
    /// File holding the service account's password (a trailing newline is ignored).
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// Upgrade `ldap://` connections with the StartTLS extended operation (RFC 4511 §4.14).
    #[serde(default)]
    pub starttls: bool,
    /// Allow `ldap://` without StartTLS to a directory that is not on this machine: passwords
    /// then cross the network in clear text (RFC 4513 §6.3.1). Off by default.
    #[serde(default)]
    pub allow_insecure: bool,
    /// PEM file of the CA certificates that may sign the directory's certificate (instead of the
    /// system's roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(
        default = "default_timeout",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub connect_timeout: Duration,
    #[serde(
        default = "default_timeout",
        deserialize_with = "mcp_oauth_provider::duration::deserialize"
    )]
    pub operation_timeout: Duration,
    #[serde(default = "default_subject_attribute")]
    pub subject_attribute: String,
    #[serde(default = "default_email_attribute")]
    pub email_attribute: String,
    #[serde(default = "default_display_name_attribute")]
    pub display_name_attribute: String,
    #[serde(default)]
    pub groups: GroupSource,
    /// Group search: where groups are searched (subtree).
    #[serde(default)]
    pub group_base_dn: Option<String>,
    /// Group search: the filter, with `{dn}` (the user's DN) and/or `{username}`.
    #[serde(default = "default_group_filter")]
    pub group_filter: String,
    #[serde(default)]
    pub scope_map: Vec<ScopeMapping>,
    /// Scopes every directory user may grant.
    #[serde(default)]
    pub default_scopes: Vec<String>,
}

fn default_user_filter() -> String {
    "(&(objectClass=inetOrgPerson)(uid={username}))".into()
}
fn default_group_filter() -> String {
    "(&(objectClass=groupOfNames)(member={dn}))".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_subject_attribute() -> String {
    "uid".into()
}
fn default_email_attribute() -> String {
    "mail".into()
}
fn default_display_name_attribute() -> String {
    "cn".into()
}

/// A password that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(\"<redacted>\")")
    }
}

/// The account that searches the directory in search mode.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    pub dn: String,
    pub password: Secret,
}

/// Where to find the user's DN, checked.
#[derive(Debug, Clone)]
pub enum UserLookup {
    Direct {
        dn_template: String,
    },
    Search {
        base_dn: String,
        filter_template: String,
        account: ServiceAccount,
    },
}

/// Where groups come from, checked.
#[derive(Debug, Clone)]
pub enum GroupLookup {
    MemberOf,
    Search {
        base_dn: String,
        filter_template: String,
    },
    None,
}

/// True when the `host[:port]` of an LDAP URL is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn is_loopback_host(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

impl LdapSettings {
    /// Parses the `ldap` member of the `[users]` table.
    pub fn from_users_table(users: &serde_json::Value) -> Result<Self, SettingsError> {
        Self::from_table(users.get("ldap").unwrap_or(&serde_json::Value::Null))
    }

    /// Parses the `[users.ldap]` table itself (what the factory is handed).
    pub fn from_table(table: &serde_json::Value) -> Result<Self, SettingsError> {
        match table {
            serde_json::Value::Null => Err(SettingsError::Missing),
            serde_json::Value::Object(m) if m.is_empty() => Err(SettingsError::Missing),
            _ => serde_json::from_value(table.clone())
                .map_err(|e| SettingsError::Invalid(e.to_string())),
        }
    }

    /// Checks what serde cannot and resolves the user lookup (reading the service account's
    /// password with `env` for environment lookups).
    pub fn user_lookup(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<UserLookup, SettingsError> {
        self.check_common()?;
        let lookup = self.resolve_user_lookup(env)?;
        self.check_transport()?;
        Ok(lookup)
    }

    /// RFC 4513 §5.1.1 / §6.3.1: a simple bind sends the password as is; without TLS it must not
    /// leave the machine unless the operator says so (`allow_insecure`). Checked last, so the
    /// other mistakes of a configuration are reported first.
    fn check_transport(&self) -> Result<(), SettingsError> {
        let Some((scheme, rest)) = self.url.split_once("://") else {
            return Ok(());
        };
        let host = rest.split(['/', '?']).next().unwrap_or("");
        if scheme == "ldap" && !self.starttls && !self.allow_insecure && !is_loopback_host(host) {
            return Err(key_error(
                "url",
                format!(
                    "{:?} is plain ldap:// to another host, which would send every password in \
                     clear text: use ldaps://, or starttls = true, or (on a network you trust) \
                     allow_insecure = true",
                    self.url
                ),
            ));
        }
        Ok(())
    }

    fn resolve_user_lookup(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<UserLookup, SettingsError> {
        match self.mode {
            BindMode::Direct => {
                for (key, set) in [
                    ("base_dn", self.base_dn.is_some()),
                    ("bind_dn", self.bind_dn.is_some()),
                    ("bind_password_env", self.bind_password_env.is_some()),
                    ("bind_password_file", self.bind_password_file.is_some()),
                ] {
                    if set {
                        return Err(key_error(
                            key,
                            "is used only in search mode (mode = \"search\")",
                        ));
                    }
                }
                let template = self.user_dn_template.clone().ok_or_else(|| {
                    key_error(
                        "user_dn_template",
                        "is required in direct mode, e.g. \"uid={username},ou=people,dc=example,dc=org\"",
                    )
                })?;
                if !has_placeholder(&template, "username") {
                    return Err(key_error("user_dn_template", "must contain {username}"));
                }
                Ok(UserLookup::Direct {
                    dn_template: template,
                })
            }
            BindMode::Search => {
                if self.user_dn_template.is_some() {
                    return Err(key_error(
                        "user_dn_template",
                        "is used only in direct mode (mode = \"direct\")",
                    ));
                }
                let base_dn = self
                    .base_dn
                    .clone()
                    .ok_or_else(|| key_error("base_dn", "is required in search mode"))?;
                if !has_placeholder(&self.user_filter, "username") {
                    return Err(key_error("user_filter", "must contain {username}"));
                }
                check_filter("user_filter", &self.user_filter, &[("username", "x")])?;
                let dn = self.bind_dn.clone().ok_or_else(|| {
                    key_error(
                        "bind_dn",
                        "is required in search mode (the service account that searches)",
                    )
                })?;
                let password = self.service_password(env)?;
                Ok(UserLookup::Search {
                    base_dn,
                    filter_template: self.user_filter.clone(),
                    account: ServiceAccount { dn, password },
                })
            }
        }
    }

    /// The group lookup, checked.
    pub fn group_lookup(&self) -> Result<GroupLookup, SettingsError> {
        match self.groups {
            GroupSource::MemberOf => Ok(GroupLookup::MemberOf),
            GroupSource::None => {
                if self.scope_map.is_empty() {
                    Ok(GroupLookup::None)
                } else {
                    Err(key_error(
                        "groups",
                        "is \"none\" but scope_map maps groups to scopes; use \"member_of\" or \"search\"",
                    ))
                }
            }
            GroupSource::Search => {
                let base_dn = self.group_base_dn.clone().ok_or_else(|| {
                    key_error("group_base_dn", "is required when groups = \"search\"")
                })?;
                if !has_placeholder(&self.group_filter, "dn")
                    && !has_placeholder(&self.group_filter, "username")
                {
                    return Err(key_error("group_filter", "must contain {dn} or {username}"));
                }
                check_filter(
                    "group_filter",
                    &self.group_filter,
                    &[("dn", "x"), ("username", "x")],
                )?;
                Ok(GroupLookup::Search {
                    base_dn,
                    filter_template: self.group_filter.clone(),
                })
            }
        }
    }

    /// `scope_map` with canonical group DNs.
    pub fn normalized_scope_map(&self) -> Vec<ScopeMapping> {
        self.scope_map
            .iter()
            .map(|m| ScopeMapping {
                group: normalize_dn(&m.group),
                scopes: m.scopes.clone(),
            })
            .collect()
    }

    fn check_common(&self) -> Result<(), SettingsError> {
        let scheme = self.url.split_once("://").map(|(s, _)| s);
        match scheme {
            Some("ldap") => {}
            Some("ldaps") if self.starttls => {
                return Err(key_error(
                    "starttls",
                    "is for ldap:// URLs; an ldaps:// connection is TLS from the start",
                ));
            }
            Some("ldaps") => {}
            _ => {
                return Err(key_error(
                    "url",
                    format!("{:?} is not an ldap:// or ldaps:// URL", self.url),
                ));
            }
        }
        let host = self
            .url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or(""))
            .unwrap_or("");
        if host.is_empty() {
            return Err(key_error("url", "must name the directory's host"));
        }
        for (key, d) in [
            ("connect_timeout", self.connect_timeout),
            ("operation_timeout", self.operation_timeout),
        ] {
            if d.is_zero() {
                return Err(key_error(key, "must be more than zero"));
            }
        }
        for (key, attr) in [
            ("subject_attribute", &self.subject_attribute),
            ("email_attribute", &self.email_attribute),
            ("display_name_attribute", &self.display_name_attribute),
        ] {
            if attr.is_empty() || !attr.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(key_error(key, format!("{attr:?} is not an attribute name")));
            }
        }
        for scope in self
            .default_scopes
            .iter()
            .chain(self.scope_map.iter().flat_map(|m| m.scopes.iter()))
        {
            if !is_scope_token(scope) {
                return Err(key_error(
                    "scope_map",
                    format!("{scope:?} is not a scope token (RFC 6749 §3.3)"),
                ));
            }
        }
        if self.scope_map.iter().any(|m| !m.group.contains('=')) {
            return Err(key_error(
                "scope_map",
                "each group must be a DN, e.g. \"cn=mcp-admins,ou=groups,dc=example,dc=org\"",
            ));
        }
        Ok(())
    }

    fn service_password(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, SettingsError> {
        let password = match (&self.bind_password_env, &self.bind_password_file) {
            (Some(_), Some(_)) => {
                return Err(key_error(
                    "bind_password_env",
                    "and bind_password_file are both set; choose one",
                ));
            }
            (Some(var), None) => env(var).ok_or_else(|| {
                key_error(
                    "bind_password_env",
                    format!("the environment variable {var} is not set"),
                )
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    key_error(
                        "bind_password_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            (None, None) => {
                return Err(key_error(
                    "bind_password_env",
                    "or bind_password_file is required in search mode (the service account's password)",
                ));
            }
        };
        if password.is_empty() {
            // An empty password would make the service bind an unauthenticated bind (RFC 4513 §5.1.2).
            return Err(key_error(
                "bind_password_env",
                "the service account's password is empty",
            ));
        }
        Ok(Secret::new(password))
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Rejects a filter template that does not parse once filled (a typo is found at start, not at the
/// first login).
fn check_filter(
    key: &'static str,
    template: &str,
    sample: &[(&str, &str)],
) -> Result<(), SettingsError> {
    let filled = fill_template(template, sample);
    ldap3::parse_filter(&filled).map(|_| ()).map_err(|_| {
        key_error(
            key,
            format!("{template:?} is not a valid LDAP filter (RFC 4515)"),
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn parse(ldap: serde_json::Value) -> Result<LdapSettings, SettingsError> {
        LdapSettings::from_users_table(&json!({ "kind": "ldap", "ldap": ldap }))
    }

    fn search_settings() -> serde_json::Value {
        json!({
            "url": "ldap://127.0.0.1:389",
            "mode": "search",
            "base_dn": "ou=people,dc=example,dc=org",
            "bind_dn": "cn=svc,dc=example,dc=org",
            "bind_password_env": "SVC_PW",
            "connect_timeout": "2s",
            "operation_timeout": "750ms",
            "scope_map": [{"group": "CN=Admins,dc=example,dc=org", "scopes": ["mcp:admin"]}],
            "default_scopes": ["mcp:tools"],
        })
    }

    #[test]
    fn a_typo_names_the_key() {
        let err = parse(
            json!({"url": "ldap://x", "mode": "direct", "user_dn_templte": "uid={username}"}),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("user_dn_templte"), "{err}");
        let err = parse(json!({"url": "ldap://x", "mode": "anonymous"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("anonymous"), "{err}");
        let err = parse(json!({"url": "ldap://x", "mode": "direct", "bind_password": "inline"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("bind_password"),
            "an inline password is refused: {err}"
        );
        assert!(matches!(
            LdapSettings::from_users_table(&json!({"kind": "ldap"})),
            Err(SettingsError::Missing)
        ));
    }

    #[test]
    fn search_mode_reads_the_service_password_from_env_and_never_prints_it() {
        let s = parse(search_settings()).unwrap();
        assert_eq!(s.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.operation_timeout, Duration::from_millis(750));
        assert_eq!(s.subject_attribute, "uid");
        let lookup = s
            .user_lookup(|k| (k == "SVC_PW").then(|| "s3cret-value".to_string()))
            .unwrap();
        let UserLookup::Search { account, .. } = &lookup else {
            panic!("search mode expected");
        };
        assert_eq!(account.password.expose(), "s3cret-value");
        let printed = format!("{lookup:?} {s:?}");
        assert!(!printed.contains("s3cret-value"), "{printed}");
        let err = s.user_lookup(|_| None).unwrap_err().to_string();
        assert!(err.contains("SVC_PW") && err.contains("not set"), "{err}");
        assert_eq!(
            s.normalized_scope_map()[0].group,
            "cn=admins,dc=example,dc=org"
        );
    }

    #[test]
    fn the_service_password_can_come_from_a_file() {
        let path = std::env::temp_dir().join(format!("ldap-pw-{}", std::process::id()));
        std::fs::write(&path, "from-file\n").unwrap();
        let mut v = search_settings();
        v["bind_password_env"] = serde_json::Value::Null;
        v.as_object_mut().unwrap().remove("bind_password_env");
        v["bind_password_file"] = json!(path);
        let lookup = parse(v.clone()).unwrap().user_lookup(|_| None).unwrap();
        std::fs::remove_file(&path).unwrap();
        let UserLookup::Search { account, .. } = lookup else {
            panic!("search mode expected");
        };
        assert_eq!(account.password.expose(), "from-file");
        let err = parse(v)
            .unwrap()
            .user_lookup(|_| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("bind_password_file"), "{err}");
    }

    #[test]
    fn plaintext_ldap_leaves_the_machine_only_when_allowed() {
        let lookup = |extra: serde_json::Value| {
            let mut v = json!({"mode": "direct", "user_dn_template": "uid={username}"});
            for (k, val) in extra.as_object().unwrap() {
                v[k] = val.clone();
            }
            parse(v).unwrap().user_lookup(|_| None)
        };
        for url in [
            "ldap://dir.example.org",
            "ldap://dir.example.org:389/",
            "ldap://192.0.2.1",
            "ldap://[2001:db8::1]:389",
        ] {
            let err = lookup(json!({"url": url})).unwrap_err().to_string();
            assert!(err.contains("allow_insecure"), "{url}: {err}");
            lookup(json!({"url": url, "starttls": true})).unwrap();
            lookup(json!({"url": url, "allow_insecure": true})).unwrap();
        }
        for url in [
            "ldaps://dir.example.org",
            "ldap://localhost",
            "ldap://LOCALHOST:389",
            "ldap://127.0.0.1:3389",
            "ldap://127.9.9.9",
            "ldap://[::1]:389",
        ] {
            lookup(json!({"url": url})).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        assert!(!is_loopback_host("localhost.evil.example"));
        assert!(!is_loopback_host("127.0.0.1.evil.example"));
    }

    #[test]
    fn mistakes_are_explained() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (
                json!({"url": "http://x", "mode": "direct", "user_dn_template": "uid={username}"}),
                "url",
            ),
            (
                json!({"url": "ldap://", "mode": "direct", "user_dn_template": "uid={username}"}),
                "host",
            ),
            (
                json!({"url": "ldaps://x", "starttls": true, "mode": "direct", "user_dn_template": "uid={username}"}),
                "starttls",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct"}),
                "user_dn_template",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct", "user_dn_template": "uid=alice"}),
                "{username}",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct", "user_dn_template": "uid={username}", "operation_timeout": "0s"}),
                "operation_timeout",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct", "user_dn_template": "uid={username}", "default_scopes": ["a b"]}),
                "scope token",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct", "user_dn_template": "uid={username}", "subject_attribute": "uid)(x"}),
                "subject_attribute",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct", "user_dn_template": "uid={username}", "scope_map": [{"group": "admins", "scopes": ["a"]}]}),
                "DN",
            ),
            (
                json!({"url": "ldap://x", "mode": "search", "base_dn": "dc=x", "bind_dn": "cn=s", "bind_password_env": "P", "user_filter": "(uid={username}"}),
                "user_filter",
            ),
            (
                json!({"url": "ldap://x", "mode": "search", "base_dn": "dc=x", "bind_password_env": "P"}),
                "bind_dn",
            ),
            (
                json!({"url": "ldap://x", "mode": "direct", "user_dn_template": "uid={username}", "bind_dn": "cn=s"}),
                "only in search mode",
            ),
        ];
        for (v, expected) in cases {
            let err = match parse(v.clone()) {
                Err(e) => e.to_string(),
                Ok(s) => s
                    .user_lookup(|_| Some("pw".into()))
                    .map(|_| ())
                    .and_then(|_| s.group_lookup().map(|_| ()))
                    .map(|_| format!("accepted: {v}"))
                    .unwrap_or_else(|e| e.to_string()),
            };
            assert!(err.contains(expected), "{v}: {err}");
        }
    }

    #[test]
    fn group_lookups_are_checked() {
        let mut v = search_settings();
        v["groups"] = json!("search");
        let err = parse(v.clone())
            .unwrap()
            .group_lookup()
            .unwrap_err()
            .to_string();
        assert!(err.contains("group_base_dn"), "{err}");
        v["group_base_dn"] = json!("ou=groups,dc=example,dc=org");
        assert!(matches!(
            parse(v.clone()).unwrap().group_lookup().unwrap(),
            GroupLookup::Search { .. }
        ));
        v["group_filter"] = json!("(objectClass=groupOfNames)");
        let err = parse(v.clone())
            .unwrap()
            .group_lookup()
            .unwrap_err()
            .to_string();
        assert!(err.contains("{dn}"), "{err}");
        v["groups"] = json!("none");
        let err = parse(v).unwrap().group_lookup().unwrap_err().to_string();
        assert!(err.contains("scope_map"), "{err}");
    }
}
