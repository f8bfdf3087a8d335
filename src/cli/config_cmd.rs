//! `mcp-oauth config check`: loads and validates every layer, then prints a summary without secrets.

use clap::Subcommand;

use crate::config::Settings;
use crate::registry::Registry;

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
            let kinds = registry.storage_kinds();
            if !kinds.contains(&settings.storage.kind.as_str()) {
                anyhow::bail!(
                    "storage.kind {:?} is not registered (available: {})",
                    settings.storage.kind,
                    kinds.join(", ")
                );
            }
            registry.check_users(settings).await?;
            println!("configuration OK");
            println!("  issuer:    {}", settings.issuer_url()?);
            println!("  bind:      {}", settings.server.bind);
            println!("  storage:   {}", settings.storage.kind);
            println!(
                "  users:     {} ({} seeded account(s))",
                settings.users.kind,
                settings.users.accounts.len()
            );
            println!("  keys:      {}", settings.keys.algorithm);
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
