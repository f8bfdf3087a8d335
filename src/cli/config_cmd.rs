//! `mcp-oauth config check`: loads and validates every layer, then prints a summary without secrets.

use clap::Subcommand;

use crate::config::Settings;
use crate::registry::{KeySource, Registry};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print what would be used.
    Check,
}

pub async fn run(
    command: ConfigCommand,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    match command {
        ConfigCommand::Check => {
            // Every plugin's own table: kinds registered, keys known, values valid.
            registry.check_settings(settings).await?;
            let key_source = crate::registry::key_encryption_key_source(settings, registry)?;
            println!("configuration OK");
            println!("  issuer:    {}", settings.issuer_url()?);
            println!("  bind:      {}", settings.server.bind);
            println!("  storage:   {}", settings.storage.kind);
            println!(
                "  users:     {} ({} seeded account(s))",
                settings.users.kind,
                settings.users.accounts.len()
            );
            println!("  policy:    {}", settings.policy.kind);
            println!(
                "  keys:      {}, sealed with {}",
                settings.keys.algorithm.as_str(),
                match key_source {
                    KeySource::Configured => "keys.encryption_key".to_string(),
                    KeySource::Random => "a random key (nothing outlives the process)".to_string(),
                    KeySource::File(dir) => format!("the key file in {}", dir.display()),
                }
            );
            let reg = &settings.registration;
            println!(
                "  register:  {} ({}; unapproved registrations kept {})",
                if reg.open {
                    "open to authorization_code clients"
                } else {
                    "closed"
                },
                if reg.initial_access_token()?.is_some() {
                    "initial access token set"
                } else {
                    "no initial access token"
                },
                human(reg.unused_client_ttl)
            );
            println!(
                "  grants:    at most {}, consent remembered {}",
                human(settings.tokens.max_grant_lifetime),
                human(settings.login.consent_ttl)
            );
            for r in settings.resources()? {
                println!(
                    "  resource:  {} ({}) scopes: {}",
                    r.uri,
                    r.name,
                    r.scopes.join(" ")
                );
            }
            match settings.demo_mcp_resource()? {
                Some(r) => println!("  demo MCP:  {} (co-hosted verifier)", r.uri),
                None if settings.demo_mcp.enabled => println!(
                    "  demo MCP:  not mounted: no [[resources]] entry has uri {}",
                    settings.demo_mcp_uri()?
                ),
                None => println!("  demo MCP:  disabled"),
            }
            Ok(())
        }
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
