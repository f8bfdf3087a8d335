//! # mcp-oauth-example-policy
//!
//! An example **policy plugin** for `mcp-oauth`, written the way you would write your own: it
//! depends only on the published provider API (`mcp-oauth-provider`) and decides two things the
//! stock `standard` policy leaves open:
//!
//! - **Which dynamic registrations are admitted.** An RFC 7591 registration is stored only when
//!   every one of its redirect URIs has a host on an allow-list; any other is refused with
//!   `invalid_redirect_uri`, naming the host. (Clients created by an administrator with
//!   `mcp-oauth clients add` are not registrations and are not checked.)
//! - **Which scopes a user may grant**, from the user's groups (which the user authenticator
//!   supplies: an LDAP directory, or the `groups_file` of `mcp-oauth-example-htpasswd`). The
//!   special group `*` is every user.
//! - Optionally, which scopes a `client_credentials` client (no user behind it) may receive.
//!
//! A policy can only narrow: the server intersects every answer with what the request, the client
//! and the declared resources allow, and runs every protocol check itself. Token lifetimes are left
//! as configured (the trait's default).
//!
//! ## Configuration
//!
//! ```toml
//! [policy]
//! kind = "allowlist"
//!
//! [policy.allowlist]
//! # Hosts a dynamically registered client may redirect to (host names or IP addresses, no scheme
//! # or port). Empty: no dynamic registration is admitted.
//! redirect_hosts = ["localhost", "127.0.0.1", "app.example.com"]
//! # Scopes each group's members may grant; "*" is every user. A scope no group of the user
//! # lists is dropped from the grant.
//! group_scopes = { "admins" = ["mcp:admin", "mcp:tools"], "*" = ["mcp:tools"] }
//! # Optional: the only scopes a client_credentials client may receive (absent: all it may ask).
//! # client_credentials_scopes = ["mcp:tools"]
//! ```
//!
//! A key the plugin does not know, a missing key or a bad value (a URL where a host belongs, a
//! scope with a space) stops `serve` and `config check` with a message naming `[policy.allowlist]`
//! and the key.
//!
//! ## How it is built
//!
//! 1. The settings ([`AllowlistSettings`]) are read key by key from the table the server hands
//!    over ([`FactoryContext::settings`](mcp_oauth_provider::FactoryContext)), so every error names
//!    its key: unknown keys are caught by `#[serde(deny_unknown_fields)]`, bad values by the
//!    per-key checks.
//! 2. The policy ([`AllowlistPolicy`]) implements [`Policy`]: only the hooks it changes.
//! 3. The factory ([`AllowlistFactory`]) implements [`PolicyFactory`]; its `kind` is the name
//!    used in `[policy] kind`.
//!
//! ## Registering it
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     mcp_oauth::cli::main_with(
//!         mcp_oauth::registry::Registry::builtin()
//!             .with_policy(mcp_oauth_example_policy::AllowlistFactory),
//!     )
//! }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    AuthenticatedUser, Client, FactoryContext, Policy, PolicyFactory, ProviderResult,
    RegistrationRefusal,
};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// The group every user belongs to in `group_scopes`.
pub const EVERY_USER: &str = "*";

/// `[policy.allowlist]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowlistSettings {
    /// Lower-case host names and IP addresses (IPv6 without brackets).
    pub redirect_hosts: BTreeSet<String>,
    /// Group → the scopes its members may grant (`*` = every user).
    pub group_scopes: BTreeMap<String, BTreeSet<String>>,
    /// The only scopes a `client_credentials` client may receive; `None` = no restriction.
    pub client_credentials_scopes: Option<BTreeSet<String>>,
}

/// The table as written: unknown keys and missing ones are named by serde; each value is checked
/// on its own so an error can name its key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    redirect_hosts: serde_json::Value,
    group_scopes: serde_json::Value,
    #[serde(default)]
    client_credentials_scopes: Option<serde_json::Value>,
}

fn value<T: DeserializeOwned>(
    ctx: &FactoryContext,
    key: &str,
    v: serde_json::Value,
) -> ProviderResult<T> {
    serde_json::from_value(v).map_err(|e| ctx.invalid(format_args!("{key}: {e}")))
}

/// A scope token (RFC 6749 §3.3): printable ASCII without space, `"` or `\`.
fn check_scope(ctx: &FactoryContext, key: &str, scope: &str) -> ProviderResult<()> {
    let ok = !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ctx.invalid(format_args!(
            "{key}: {scope:?} is not a scope (printable ASCII, no spaces or quotes)"
        )))
    }
}

fn scopes(
    ctx: &FactoryContext,
    key: &str,
    v: serde_json::Value,
) -> ProviderResult<BTreeSet<String>> {
    let list: Vec<String> = value(ctx, key, v)?;
    for s in &list {
        check_scope(ctx, key, s)?;
    }
    Ok(list.into_iter().collect())
}

/// A host as written in `redirect_hosts`, lower-cased; `None` when it is not a bare host.
fn normalise_host(text: &str) -> Option<String> {
    let host = text.trim().to_ascii_lowercase();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .map(str::to_string)
        .unwrap_or(host);
    if let Ok(ip) = host.parse::<std::net::IpAddr>() {
        return Some(ip.to_string());
    }
    let is_name = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    is_name.then_some(host)
}

impl AllowlistSettings {
    /// Reads and checks `ctx.settings`; every error names `[policy.<kind>]` and the key.
    pub fn from_context(ctx: &FactoryContext) -> ProviderResult<Self> {
        let raw: Raw = ctx.parse_settings()?;
        let hosts: Vec<String> = value(ctx, "redirect_hosts", raw.redirect_hosts)?;
        let mut redirect_hosts = BTreeSet::new();
        for h in &hosts {
            let host = normalise_host(h).ok_or_else(|| {
                ctx.invalid(format_args!(
                    "redirect_hosts: {h:?} is not a host name or IP address (write the host \
                     alone, without scheme, port or path, e.g. \"app.example.com\")"
                ))
            })?;
            redirect_hosts.insert(host);
        }
        let groups: BTreeMap<String, serde_json::Value> =
            value(ctx, "group_scopes", raw.group_scopes)?;
        let mut group_scopes = BTreeMap::new();
        for (group, list) in groups {
            if group.trim().is_empty() {
                return Err(ctx.invalid("group_scopes: a group name is empty"));
            }
            let key = format!("group_scopes.{group:?}");
            group_scopes.insert(group, scopes(ctx, &key, list)?);
        }
        let client_credentials_scopes = raw
            .client_credentials_scopes
            .map(|v| scopes(ctx, "client_credentials_scopes", v))
            .transpose()?;
        Ok(Self {
            redirect_hosts,
            group_scopes,
            client_credentials_scopes,
        })
    }
}

/// The policy: redirect hosts on an allow-list, scopes by group.
#[derive(Debug, Clone)]
pub struct AllowlistPolicy {
    settings: AllowlistSettings,
}

impl AllowlistPolicy {
    pub fn new(settings: AllowlistSettings) -> Self {
        Self { settings }
    }

    /// The scopes `user` may grant: those of `*` and of each of their groups.
    pub fn scopes_of(&self, user: &AuthenticatedUser) -> BTreeSet<&str> {
        std::iter::once(EVERY_USER)
            .chain(user.groups.iter().map(String::as_str))
            .filter_map(|g| self.settings.group_scopes.get(g))
            .flatten()
            .map(String::as_str)
            .collect()
    }

    /// Why `uri` may not be registered, if it may not.
    fn refuse_redirect(&self, uri: &str) -> Option<String> {
        let host = url::Url::parse(uri)
            .ok()
            .and_then(|u| u.host_str().and_then(normalise_host));
        match host {
            Some(h) if self.settings.redirect_hosts.contains(&h) => None,
            Some(h) => Some(format!(
                "redirect URI host {h:?} is not allowed on this server (allowed: {})",
                self.allowed_hosts()
            )),
            None => Some(format!(
                "redirect URI {uri:?} has no host this server allows (allowed: {})",
                self.allowed_hosts()
            )),
        }
    }

    fn allowed_hosts(&self) -> String {
        if self.settings.redirect_hosts.is_empty() {
            return "none".into();
        }
        let hosts: Vec<&str> = self
            .settings
            .redirect_hosts
            .iter()
            .map(String::as_str)
            .collect();
        hosts.join(", ")
    }
}

fn keep(requested: &[String], allowed: impl Fn(&str) -> bool) -> Vec<String> {
    requested.iter().filter(|s| allowed(s)).cloned().collect()
}

#[async_trait]
impl Policy for AllowlistPolicy {
    async fn grantable_scopes(
        &self,
        user: &AuthenticatedUser,
        _client: &Client,
        requested: &[String],
    ) -> Vec<String> {
        let by_group = self.scopes_of(user);
        // A restriction the authenticator itself placed on the user still holds.
        let by_user = |s: &str| {
            user.allowed_scopes
                .as_ref()
                .is_none_or(|a| a.iter().any(|x| x == s))
        };
        keep(requested, |s| by_group.contains(s) && by_user(s))
    }

    async fn allow_registration(&self, candidate: &Client) -> Result<(), RegistrationRefusal> {
        match candidate
            .redirect_uris
            .iter()
            .find_map(|u| self.refuse_redirect(u))
        {
            Some(why) => Err(RegistrationRefusal::RedirectUri(why)),
            None => Ok(()),
        }
    }

    async fn allow_client_credentials(
        &self,
        _client: &Client,
        requested: &[String],
    ) -> Vec<String> {
        match &self.settings.client_credentials_scopes {
            None => requested.to_vec(),
            Some(list) => keep(requested, |s| list.contains(s)),
        }
    }
}

/// Registers `[policy] kind = "allowlist"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowlistFactory;

#[async_trait]
impl PolicyFactory for AllowlistFactory {
    fn kind(&self) -> &'static str {
        "allowlist"
    }

    async fn build(&self, ctx: &FactoryContext) -> ProviderResult<Arc<dyn Policy>> {
        let settings = AllowlistSettings::from_context(ctx)?;
        Ok(Arc::new(AllowlistPolicy::new(settings)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use mcp_oauth_provider::{ClientOrigin, ProviderError, TokenEndpointAuthMethod};
    use serde_json::json;

    use super::*;

    fn ctx(settings: serde_json::Value) -> FactoryContext {
        FactoryContext::new("policy.allowlist", settings, ".".into())
    }

    fn example() -> serde_json::Value {
        json!({
            "redirect_hosts": ["localhost", "127.0.0.1", "App.Example.com", "[::1]"],
            "group_scopes": {"admins": ["mcp:admin", "mcp:tools"], "*": ["mcp:tools"]},
        })
    }

    fn policy(settings: serde_json::Value) -> AllowlistPolicy {
        AllowlistPolicy::new(AllowlistSettings::from_context(&ctx(settings)).unwrap())
    }

    fn client(redirect_uris: &[&str]) -> Client {
        Client {
            client_id: "c1".into(),
            client_secret_hash: None,
            client_secret_expires_at: None,
            client_id_issued_at: 0,
            client_name: None,
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            grant_types: vec![mcp_oauth_provider::GrantType::AuthorizationCode],
            response_types: vec!["code".into()],
            token_endpoint_auth_method: TokenEndpointAuthMethod::None,
            scope: None,
            extra_metadata: Default::default(),
            origin: ClientOrigin::Registration,
            approved_at: None,
            resource_server: false,
        }
    }

    fn user(groups: &[&str]) -> AuthenticatedUser {
        AuthenticatedUser {
            subject: "u".into(),
            username: "u".into(),
            display_name: None,
            email: None,
            groups: groups.iter().map(|s| s.to_string()).collect(),
            allowed_scopes: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn invalid(settings: serde_json::Value) -> String {
        match AllowlistSettings::from_context(&ctx(settings)) {
            Err(ProviderError::InvalidSettings(m)) => m,
            other => panic!("expected InvalidSettings, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn registrations_need_every_redirect_host_on_the_list() {
        let p = policy(example());
        for ok in [
            &["http://127.0.0.1:8123/callback"][..],
            &["http://localhost/cb", "https://app.example.com/oauth/cb"],
            &["https://APP.example.COM/x"],
            &["http://[::1]:9000/cb"],
        ] {
            assert_eq!(p.allow_registration(&client(ok)).await, Ok(()), "{ok:?}");
        }
        let refused = p
            .allow_registration(&client(&[
                "http://127.0.0.1/cb",
                "https://evil.example.net/cb",
            ]))
            .await;
        match refused {
            Err(RegistrationRefusal::RedirectUri(why)) => {
                assert!(why.contains("\"evil.example.net\""), "{why}")
            }
            other => panic!("{other:?}"),
        }
        // A look-alike host and a custom scheme without host are refused too.
        for bad in ["https://app.example.com.evil.net/cb", "com.example.app:/cb"] {
            assert!(matches!(
                p.allow_registration(&client(&[bad])).await,
                Err(RegistrationRefusal::RedirectUri(_))
            ));
        }
        let none = policy(json!({"redirect_hosts": [], "group_scopes": {}}));
        assert!(
            none.allow_registration(&client(&["http://localhost/cb"]))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn users_grant_the_scopes_of_their_groups() {
        let p = policy(example());
        let c = client(&["http://localhost/cb"]);
        let asked = strings(&["mcp:tools", "mcp:admin", "other"]);
        assert_eq!(
            p.grantable_scopes(&user(&["admins"]), &c, &asked).await,
            ["mcp:tools", "mcp:admin"]
        );
        assert_eq!(
            p.grantable_scopes(&user(&["staff"]), &c, &asked).await,
            ["mcp:tools"]
        );
        assert_eq!(
            p.grantable_scopes(&user(&[]), &c, &asked).await,
            ["mcp:tools"]
        );
        // Only what was asked for.
        assert!(
            p.grantable_scopes(&user(&["admins"]), &c, &strings(&["other"]))
                .await
                .is_empty()
        );
        // The authenticator's own restriction still holds.
        let mut limited = user(&["admins"]);
        limited.allowed_scopes = Some(strings(&["mcp:admin"]));
        assert_eq!(
            p.grantable_scopes(&limited, &c, &asked).await,
            ["mcp:admin"]
        );
        // Without a "*" entry, a user in no listed group may grant nothing.
        let strict = policy(json!({
            "redirect_hosts": ["localhost"],
            "group_scopes": {"admins": ["mcp:admin"]},
        }));
        assert!(
            strict
                .grantable_scopes(&user(&["staff"]), &c, &asked)
                .await
                .is_empty()
        );
    }

    #[tokio::test]
    async fn client_credentials_scopes_narrow_only_when_set() {
        let c = client(&[]);
        let asked = strings(&["mcp:tools", "mcp:admin"]);
        assert_eq!(
            policy(example()).allow_client_credentials(&c, &asked).await,
            asked
        );
        let mut settings = example();
        settings["client_credentials_scopes"] = json!(["mcp:tools"]);
        assert_eq!(
            policy(settings).allow_client_credentials(&c, &asked).await,
            ["mcp:tools"]
        );
    }

    #[tokio::test]
    async fn settings_errors_name_the_section_and_the_key() {
        let mut typo = example();
        typo["redirect_host"] = json!(["x"]);
        let err = invalid(typo);
        assert!(
            err.contains("[policy.allowlist]") && err.contains("redirect_host"),
            "{err}"
        );

        let err = invalid(json!({"group_scopes": {}}));
        assert!(err.contains("redirect_hosts"), "missing key: {err}");

        let mut url = example();
        url["redirect_hosts"] = json!(["https://app.example.com"]);
        let err = invalid(url);
        assert!(
            err.contains("redirect_hosts") && err.contains("https://app.example.com"),
            "{err}"
        );

        let mut scalar = example();
        scalar["redirect_hosts"] = json!("localhost");
        let err = invalid(scalar);
        assert!(
            err.contains("[policy.allowlist]") && err.contains("redirect_hosts"),
            "{err}"
        );

        let mut bad_scope = example();
        bad_scope["group_scopes"]["admins"] = json!(["mcp admin"]);
        let err = invalid(bad_scope);
        assert!(err.contains("group_scopes.\"admins\""), "{err}");

        let mut not_a_list = example();
        not_a_list["group_scopes"]["*"] = json!("mcp:tools");
        let err = invalid(not_a_list);
        assert!(err.contains("group_scopes.\"*\""), "{err}");

        let mut cc = example();
        cc["client_credentials_scopes"] = json!([""]);
        assert!(invalid(cc).contains("client_credentials_scopes"));
    }

    #[tokio::test]
    async fn the_factory_answers_to_allowlist() {
        assert_eq!(AllowlistFactory.kind(), "allowlist");
        let built = AllowlistFactory.build(&ctx(example())).await;
        assert!(built.is_ok());
        assert!(
            AllowlistFactory
                .build(&ctx(serde_json::Value::Null))
                .await
                .is_err()
        );
    }
}
