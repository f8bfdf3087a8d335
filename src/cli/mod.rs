//! The command line (DESIGN §5): one module per command group.

pub mod admin;
pub mod clients;
pub mod config_cmd;
pub mod demo_mcp;
pub mod grants;
pub mod keys;
pub mod migrate;
pub mod serve;
pub mod users;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::registry::Registry;

#[derive(Debug, Parser)]
#[command(
    name = "mcp-oauth",
    version,
    about = "OAuth 2.1 authorization server for MCP servers"
)]
pub struct Cli {
    /// Configuration file (TOML), layered over the built-in defaults; env MCP_OAUTH__SECTION__KEY wins.
    #[arg(long, global = true, value_name = "FILE", env = "MCP_OAUTH_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the authorization server.
    Serve,
    /// Apply pending database migrations (`migrate status` lists them).
    Migrate {
        #[command(subcommand)]
        command: Option<migrate::MigrateCommand>,
    },
    /// Manage local user accounts.
    Users {
        #[command(subcommand)]
        command: users::UsersCommand,
    },
    /// Manage registered clients.
    Clients {
        #[command(subcommand)]
        command: clients::ClientsCommand,
    },
    /// List and revoke grants (by user, client or id).
    Grants {
        #[command(subcommand)]
        command: grants::GrantsCommand,
    },
    /// Manage access-token signing keys.
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Run the demo MCP server alone, protected by a remote authorization server (JWKS or
    /// introspection). Reads no configuration.
    DemoMcp(Box<demo_mcp::DemoMcpArgs>),
}

/// Runs a parsed command with the built-in backends. A custom `main` can call [`run_with`] with its
/// own registry to add plugins.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    run_with(cli, Registry::with_builtins).await
}

/// Runs a parsed command; `make_registry` builds the factories from the loaded settings.
pub async fn run_with(
    cli: Cli,
    make_registry: impl FnOnce(&Settings) -> Registry,
) -> anyhow::Result<()> {
    // Commands that need no configuration at all.
    if let Command::Users {
        command: users::UsersCommand::HashPassword,
    } = &cli.command
    {
        return users::hash_password_cmd();
    }
    if let Command::DemoMcp(args) = &cli.command {
        return demo_mcp::run((**args).clone()).await;
    }
    let settings = Settings::load(cli.config.as_deref())?;
    let registry = make_registry(&settings);
    match cli.command {
        Command::Serve => serve::serve(settings, registry).await,
        Command::Migrate { command } => migrate::run(command, &settings, &registry).await,
        Command::Users { command } => users::run(command, &settings, &registry).await,
        Command::Clients { command } => clients::run(command, &settings, &registry).await,
        Command::Keys { command } => keys::run(command, &settings, &registry).await,
        Command::Grants { command } => grants::run(command, &settings, &registry).await,
        Command::Config { command } => config_cmd::run(command, &settings, &registry).await,
        // Already served above, without configuration; kept total rather than panicking.
        Command::DemoMcp(args) => demo_mcp::run(*args).await,
    }
}
