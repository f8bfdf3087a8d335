//! `mcp-oauth config check [--offline]`: checks what `serve` needs, then prints the effective
//! settings without secrets.
//!
//! Offline (always): every layer loads and validates, every plugin's table is known and valid, the
//! required secrets are there (the key-encryption key on a shared store, the LDAP service account's
//! password). Online (unless `--offline`): a connection to the database and its schema status, the
//! number of stored accounts, and a bind to the user directory with its service account
//! ([`UserAuthenticator::check_health`](mcp_oauth_provider::UserAuthenticator::check_health)). Any
//! problem makes the command exit non-zero; the online problems are each listed.

use clap::Subcommand;
use mcp_oauth_provider::{MigrationPolicy, SchemaStatus};

use crate::cli::output::error_report;
use crate::config::Settings;
use crate::oauth::key_encryption::KEK_FILE;
use crate::registry::{KeySource, Registry};
use crate::say;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check what `serve` needs (settings, secrets, the database and its schema, the user
    /// directory) and print what would be used. Exits non-zero on any problem.
    Check {
        /// Check the settings and secrets only: connect to neither the database nor the directory.
        #[arg(long)]
        offline: bool,
    },
}

pub async fn run(
    command: ConfigCommand,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check { offline } => check(settings, registry, offline).await,
    }
}

async fn check(settings: &Settings, registry: &Registry, offline: bool) -> anyhow::Result<()> {
    // Offline: every plugin's own table (kinds registered, keys known, values valid, the LDAP
    // service account's password present), then the key-encryption key.
    registry.check_settings(settings).await?;
    let key_source = crate::registry::key_encryption_key_source(settings, registry)?;
    let initial_access_token = settings.registration.initial_access_token()?;
    let location = registry.storage_location(settings)?;

    say!("settings");
    if settings.issuer_awaits_bind() {
        say!(
            "  issuer:    http://{} (derived from the port `serve` gets)",
            settings.server.bind
        );
    } else {
        let derived = if settings.issuer_is_derived() {
            " (derived from server.bind)"
        } else {
            ""
        };
        say!("  issuer:    {}{derived}", settings.issuer_url()?);
    }
    say!("  bind:      {}", settings.server.bind);
    say!("  storage:   {} ({location})", settings.storage.kind);
    say!("  data dir:  {}", settings.data_dir().display());
    say!("  policy:    {}", settings.policy.kind);
    say!(
        "  keys:      {}, sealed with {}",
        settings.keys.algorithm.as_str(),
        match &key_source {
            KeySource::Configured => "keys.encryption_key".to_string(),
            KeySource::Random => "a random key (nothing outlives the process)".to_string(),
            KeySource::File(dir) => {
                let path = dir.join(KEK_FILE);
                let state = if path.exists() {
                    "present"
                } else {
                    "generated at the first start"
                };
                format!("the key file {} ({state})", path.display())
            }
        }
    );
    let reg = &settings.registration;
    say!(
        "  register:  {} ({}; unapproved registrations kept {})",
        if reg.open {
            "open to authorization_code clients"
        } else {
            "closed"
        },
        if initial_access_token.is_some() {
            "initial access token set"
        } else {
            "no initial access token"
        },
        human(reg.unused_client_ttl)
    );
    let t = &settings.tokens;
    say!(
        "  tokens:    access {}, refresh {}, code {}",
        human(t.access_token_ttl),
        human(t.refresh_token_ttl),
        human(t.code_ttl)
    );
    say!(
        "  grants:    at most {}, consent remembered {}",
        human(t.max_grant_lifetime),
        human(settings.login.consent_ttl)
    );
    if !settings.issuer_awaits_bind() {
        for r in settings.resources()? {
            say!(
                "  resource:  {} ({}) scopes: {}",
                r.uri,
                r.name,
                r.scopes.join(" ")
            );
        }
        match settings.demo_mcp_resource()? {
            Some(r) => say!("  demo MCP:  {} (co-hosted verifier)", r.uri),
            None if settings.demo_mcp.enabled => say!(
                "  demo MCP:  not mounted: no [[resources]] entry has uri {}",
                settings.demo_mcp_uri()?
            ),
            None => say!("  demo MCP:  disabled"),
        }
    }
    let seeded = settings.users.accounts.len();
    if offline {
        say!(
            "  users:     {}: {seeded} account(s) in [[users.accounts]]",
            settings.users.kind
        );
        say!("connections not checked (--offline)");
        say!("configuration OK");
        return Ok(());
    }

    say!("connections");
    let mut problems: Vec<String> = Vec::new();
    let mut storage = None;
    match registry.schema_status(settings).await {
        Err(e) => problems.push(format!("database: {}", error_report(&e))),
        Ok(status) => {
            let (line, problem, may_open) =
                schema_line(&status, registry.migration_policy(settings)?);
            say!("  database:  {location}: {line}");
            if let Some(p) = problem {
                problems.push(format!("database: {p}"));
            }
            // Opening a store whose schema is behind would create or half-read it: only an
            // up-to-date one is opened (to count its accounts).
            if may_open {
                match registry.open_storage(settings).await {
                    Ok(s) => storage = Some(s),
                    Err(e) => problems.push(format!("database: {}", error_report(&e))),
                }
            }
        }
    }
    let local = registry.uses_local_accounts(settings)?;
    let accounts = match (&storage, local) {
        (Some(s), true) => match &s.users {
            Some(users) => match users.list_users().await {
                Ok(list) => format!("{} stored account(s)", list.len()),
                Err(e) => {
                    problems.push(format!(
                        "database: counting accounts: {}",
                        error_report(&e.into())
                    ));
                    "accounts not counted".into()
                }
            },
            None => "the storage keeps no accounts".into(),
        },
        (None, true) => "accounts not counted: the schema is not up to date".into(),
        (_, false) => "accounts in the directory".into(),
    };
    say!(
        "  users:     {}: {accounts}, {seeded} in [[users.accounts]]",
        settings.users.kind
    );
    let scratch = mcp_oauth_provider_memory::MemoryStore::new().storage();
    match registry
        .check_users_directory(settings, storage.as_ref().unwrap_or(&scratch))
        .await
    {
        Ok(()) if local => {}
        Ok(()) => say!("  directory: reachable"),
        Err(e) => problems.push(format!("directory: {}", error_report(&e))),
    }
    if problems.is_empty() {
        say!("configuration OK");
        return Ok(());
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    anyhow::bail!(
        "config check found {} problem(s) (`--offline` checks the settings alone)",
        problems.len()
    )
}

/// The schema line, the problem it is for `serve` (if any), and whether the store may be opened.
fn schema_line(status: &SchemaStatus, policy: MigrationPolicy) -> (String, Option<String>, bool) {
    if let Some(bad) = status.unknown.first() {
        let p = format!(
            "the schema has migration {} ({}) that this mcp-oauth does not know or that was \
             changed; upgrade mcp-oauth",
            bad.version, bad.name
        );
        return (p.clone(), Some(p), false);
    }
    if status.pending.is_empty() {
        return (
            format!(
                "reachable; schema up to date ({} migration(s) applied)",
                status.applied.len()
            ),
            None,
            true,
        );
    }
    let names: Vec<String> = status
        .pending
        .iter()
        .map(|m| format!("{:04}_{}", m.version, m.name))
        .collect();
    let pending = format!("{} pending migration(s): {}", names.len(), names.join(", "));
    match policy {
        MigrationPolicy::Explicit => {
            let p = format!("{pending}; run `mcp-oauth migrate` before `mcp-oauth serve`");
            (p.clone(), Some(p), false)
        }
        MigrationPolicy::OnServe => (format!("{pending} (`serve` applies them)"), None, false),
        MigrationPolicy::None => ("reachable".into(), None, true),
    }
}

/// A duration as an operator wrote it: whole days as "90d", else humantime ("15m").
fn human(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        format!("{}d", secs / 86_400)
    } else {
        humantime::format_duration(d).to_string()
    }
}
