//! The plugin seam from the outside (issue 10): each backend reads only its own table and names the
//! section and key of a mistake, on `config check` and on `serve`, without a panic; a kind
//! registered twice is an error naming both factories; a plugin registry runs every command through
//! `cli::run_with`; a policy plugin's decisions reach the endpoints, and it can only narrow them.

use std::sync::Arc;

use async_trait::async_trait;
use clap::Parser;
use mcp_oauth::cli::{Cli, run_with};
use mcp_oauth::registry::Registry;
use mcp_oauth_provider::{
    AuthenticatedUser, Client, FactoryContext, Policy, PolicyFactory, ProviderFactory,
    ProviderResult, RegistrationRefusal, Storage, StoreLocality,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::processes::{TempDir, run_cli};
use crate::support::*;

/// Every mistake, as a config file body, with what the error must name.
const MISTAKES: &[(&str, &[&str])] = &[
    (
        "[storage.sqlite]\nsynchronus = \"full\"\n",
        &["storage.sqlite", "synchronus"],
    ),
    (
        "[storage.sqlite]\nsynchronous = \"off\"\n",
        &["storage.sqlite", "off"],
    ),
    (
        "[storage]\nkind = \"mongo\"\n",
        &["storage.kind", "mongo", "sqlite"],
    ),
    (
        "[storage.sqllite]\nsynchronous = \"full\"\n",
        &["storage.sqllite", "[storage.sqlite]"],
    ),
    (
        "[storage]\nkind = \"postgres\"\n",
        &["storage.postgres", "url is required"],
    ),
    (
        "[storage]\nkind = \"memory\"\n[storage.memory]\npath = \"x\"\n",
        &["storage.memory", "path"],
    ),
    ("[users]\nkind = \"nis\"\n", &["users.kind", "nis", "local"]),
    ("[users.local]\nfoo = 1\n", &["users.local", "foo"]),
    ("[users]\nkind = \"ldap\"\n", &["users.ldap", "missing"]),
    (
        "[users]\nkind = \"ldap\"\n[users.ldap]\nurl = \"ldap://127.0.0.1\"\nmode = \"direct\"\nuser_dn_templte = \"uid={username}\"\n",
        &["users.ldap", "user_dn_templte"],
    ),
    (
        "[policy]\nkind = \"strict\"\n",
        &["policy.kind", "strict", "standard"],
    ),
    (
        "[policy.standard]\nmax_scopes = 1\n",
        &["policy.standard", "max_scopes"],
    ),
];

#[tokio::test]
async fn a_misconfigured_backend_stops_config_check_and_serve_naming_the_key() {
    let dir = TempDir::new("mcp-oauth-plugin-mistakes");
    let data = dir.path().display().to_string();
    let env = [
        ("MCP_OAUTH__STORAGE__DATA_DIR", data.as_str()),
        ("MCP_OAUTH__SERVER__BIND", "127.0.0.1:0"),
    ];
    for (i, (body, named)) in MISTAKES.iter().enumerate() {
        let path = dir.path().join(format!("mistake-{i}.toml"));
        std::fs::write(&path, body).unwrap();
        for command in [&["config", "check"][..], &["serve"][..]] {
            let (ok, out, err) = run_cli(Some(&path), command, &env, None).await;
            assert!(!ok, "{command:?} must fail on:\n{body}\nstdout: {out}");
            for word in *named {
                assert!(
                    err.contains(word),
                    "{command:?} on:\n{body}\nmust name {word:?}: {err}"
                );
            }
            assert!(
                !err.contains("panicked") && !out.contains("listening"),
                "{command:?}: {err}"
            );
        }
    }
}

/// A plugin that claims the built-in `sqlite` kind.
struct Impostor;

#[async_trait]
impl ProviderFactory for Impostor {
    fn kind(&self) -> &'static str {
        "sqlite"
    }
    fn check_settings(&self, _ctx: &FactoryContext) -> ProviderResult<()> {
        Ok(())
    }
    async fn open(&self, _ctx: &FactoryContext) -> ProviderResult<Storage> {
        Ok(mcp_oauth_provider_memory::MemoryStore::new().storage())
    }
}

/// A storage plugin of its own kind, with one setting, over the in-memory store.
struct Scratch;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ScratchSettings {
    #[allow(dead_code)]
    label: String,
}

#[async_trait]
impl ProviderFactory for Scratch {
    fn kind(&self) -> &'static str {
        "scratch"
    }
    fn check_settings(&self, ctx: &FactoryContext) -> ProviderResult<()> {
        ctx.parse_settings::<ScratchSettings>().map(drop)
    }
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage> {
        self.check_settings(ctx)?;
        Ok(mcp_oauth_provider_memory::MemoryStore::new().storage())
    }
    fn locality(&self) -> StoreLocality {
        StoreLocality::InProcess
    }
}

fn cli(config: &std::path::Path, args: &[&str]) -> Cli {
    let mut argv = vec!["mcp-oauth", "--config", config.to_str().unwrap()];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).unwrap()
}

#[tokio::test]
async fn a_plugin_registry_runs_the_commands_and_clashing_kinds_are_refused() {
    let dir = TempDir::new("mcp-oauth-plugin-registry");
    let config = dir.path().join("scratch.toml");
    std::fs::write(
        &config,
        "[storage]\nkind = \"scratch\"\n[storage.scratch]\nlabel = \"tests\"\n",
    )
    .unwrap();
    run_with(
        cli(&config, &["config", "check"]),
        Registry::builtin().with_storage(Scratch),
    )
    .await
    .unwrap();
    // The plugin's own table is checked by the plugin, and its mistakes are named.
    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[storage]\nkind = \"scratch\"\n[storage.scratch]\nlabell = \"tests\"\n",
    )
    .unwrap();
    for args in [&["config", "check"][..], &["clients", "list"][..]] {
        let err = run_with(cli(&typo, args), Registry::builtin().with_storage(Scratch))
            .await
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("[storage.scratch]") && text.contains("labell"),
            "{text}"
        );
    }
    // Without the plugin registered, its table is an unknown key of [storage].
    let err = run_with(cli(&config, &["config", "check"]), Registry::builtin())
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("storage.kind \"scratch\""),
        "{err:#}"
    );
    // A plugin claiming a built-in kind stops every server command, naming both factories.
    for args in [&["config", "check"][..], &["serve"][..], &["migrate"][..]] {
        let err = run_with(
            cli(&config, args),
            Registry::builtin().with_storage(Impostor),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"sqlite\"") && err.contains("SqliteFactory") && err.contains("Impostor"),
            "{args:?}: {err}"
        );
    }
}

/// A policy plugin: registrations only for redirect hosts on a list, `mcp:admin` never granted,
/// and an attempt to widen what the core allows (which the core ignores).
struct HostList;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HostListSettings {
    hosts: Vec<String>,
}

struct HostListPolicy {
    hosts: Vec<String>,
}

#[async_trait]
impl PolicyFactory for HostList {
    fn kind(&self) -> &'static str {
        "host-list"
    }
    async fn build(&self, ctx: &FactoryContext) -> ProviderResult<Arc<dyn Policy>> {
        let s: HostListSettings = ctx.parse_settings()?;
        Ok(Arc::new(HostListPolicy { hosts: s.hosts }))
    }
}

#[async_trait]
impl Policy for HostListPolicy {
    async fn grantable_scopes(
        &self,
        _user: &AuthenticatedUser,
        _client: &Client,
        requested: &[String],
    ) -> Vec<String> {
        let mut scopes: Vec<String> = requested
            .iter()
            .filter(|s| *s != "mcp:admin")
            .cloned()
            .collect();
        scopes.push("root:everything".into());
        scopes
    }
    async fn allow_registration(&self, candidate: &Client) -> Result<(), RegistrationRefusal> {
        for uri in &candidate.redirect_uris {
            let host = url::Url::parse(uri)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_default();
            if !self.hosts.contains(&host) {
                return Err(RegistrationRefusal::RedirectUri(format!(
                    "redirect host {host} is not allowed here"
                )));
            }
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_policy_plugin_decides_registrations_and_scopes_but_cannot_widen_them() {
    let server = start_with(Options {
        registry: Some(Registry::builtin().with_policy(HostList)),
        extra_toml: Some(
            "[policy]\nkind = \"host-list\"\n[policy.host-list]\nhosts = [\"127.0.0.1\"]\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let refused = server
        .register(json!({"redirect_uris": ["https://elsewhere.example/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("elsewhere.example")),
        "{body}"
    );
    // A loopback client is admitted; the user asks for both scopes and gets only mcp:tools, and
    // never the scope the policy tried to add.
    let client_id = server.register_public().await;
    let params = with(
        &server.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let loc = server.obtain_redirect(&params).await;
    let code = query_param(&loc, "code").expect("code in redirect");
    let token: serde_json::Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(token["scope"], "mcp:tools", "{token}");
    server.stop().await;
}
