//! The command line (DESIGN §5): one module per command group.

pub mod admin;
pub mod backup;
pub mod client;
pub mod clients;
pub mod config_cmd;
pub mod demo_mcp;
pub mod grants;
pub mod keys;
pub mod migrate;
pub mod output;
pub mod password_input;
pub mod serve;
pub mod users;

use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Copy the store (and the key file it needs) into an empty directory while servers run.
    Backup {
        /// Where to write the copy (created owner-only; must be new or empty).
        dir: PathBuf,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: config_cmd::ConfigCommand,
    },
    /// Run the demo MCP server alone, protected by a remote authorization server (JWKS or
    /// introspection). Every setting is an option below: it reads no configuration file and
    /// ignores --config.
    DemoMcp(Box<demo_mcp::DemoMcpArgs>),
    /// Client: log in to an OAuth-protected MCP server and store the tokens encrypted.
    Login(Box<client::login::LoginCmd>),
    /// Client: list an MCP server's tools (logs in first when needed).
    Tools(Box<client::tools::ToolsCmd>),
    /// Client: call a tool and print its result (logs in and steps up when needed).
    Call(Box<client::call::CallCmd>),
    /// Client: print a valid access token for scripts (refreshes when needed).
    Token(Box<client::token::TokenCmd>),
    /// Client: revoke the tokens (RFC 7009) and delete the stored login.
    Logout(Box<client::logout::LogoutCmd>),
    /// Client: list stored logins (servers, issuers, scopes, expiry; never tokens).
    Status(client::status::StatusCmd),
    /// Client: a stdio MCP server that forwards to a streamable-HTTP one with OAuth (for desktop
    /// MCP hosts).
    Proxy(Box<client::proxy::ProxyCmd>),
}

/// The whole `mcp-oauth` program with `registry`'s factories: installs the TLS crypto provider and
/// logging, parses the command line, runs the command, and turns the outcome into an exit code
/// (an error is printed once, with its causes). The stock binary is
/// `main_with(Registry::builtin())`; a plugin's binary registers its factories first:
///
/// ```no_run
/// use mcp_oauth::registry::Registry;
/// use mcp_oauth_provider::{FactoryContext, NoSettings, ProviderFactory, ProviderResult, Storage};
///
/// /// `[storage] kind = "mine"`: here simply the in-memory store under another name.
/// struct MyStore;
///
/// #[async_trait::async_trait]
/// impl ProviderFactory for MyStore {
///     fn kind(&self) -> &'static str {
///         "mine"
///     }
///     fn check_settings(&self, ctx: &FactoryContext) -> ProviderResult<()> {
///         ctx.parse_settings::<NoSettings>().map(drop)
///     }
///     async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage> {
///         self.check_settings(ctx)?;
///         Ok(mcp_oauth_provider_memory::MemoryStore::new().storage())
///     }
/// }
///
/// fn main() -> std::process::ExitCode {
///     mcp_oauth::cli::main_with(Registry::builtin().with_storage(MyStore))
/// }
/// ```
pub fn main_with(registry: Registry) -> ExitCode {
    // One TLS crypto provider for every outbound client (JWKS, introspection, LDAP): ring. Building
    // a reqwest client without one panics; an error here only means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    // `[log]` comes from the same configuration the command reads; a configuration that does not
    // load gets the default log settings here and its error from the command below.
    let log = Settings::load(cli.config.as_deref())
        .map(|s| s.log)
        .unwrap_or_default();
    crate::observability::logging::init(&log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: starting the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_with(cli, registry)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", output::error_report(&err));
            ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command with the built-in factories.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    run_with(cli, Registry::builtin()).await
}

/// Runs a parsed command with `registry`'s factories (a kind registered twice is an error here,
/// before any command that reads the configuration).
pub async fn run_with(cli: Cli, registry: Registry) -> anyhow::Result<()> {
    // Commands that need no configuration at all.
    if let Command::Users {
        command: users::UsersCommand::HashPassword,
    } = &cli.command
    {
        return users::hash_password_cmd();
    }
    if let Command::DemoMcp(args) = &cli.command {
        if let Some(path) = &cli.config {
            tracing::warn!(
                config = %path.display(),
                "demo-mcp reads no configuration file: --config (or MCP_OAUTH_CONFIG) is ignored; \
                 its settings are its options (mcp-oauth demo-mcp --help)"
            );
        }
        return demo_mcp::run((**args).clone()).await;
    }
    // The client commands read no server configuration.
    let command = match cli.command {
        Command::Login(c) => return client::login::run(*c).await,
        Command::Tools(c) => return client::tools::run(*c).await,
        Command::Call(c) => return client::call::run(*c).await,
        Command::Token(c) => return client::token::run(*c).await,
        Command::Logout(c) => return client::logout::run(*c).await,
        Command::Status(c) => return client::status::run(c),
        Command::Proxy(c) => return client::proxy::run(*c).await,
        other => other,
    };
    registry.check()?;
    let settings = Settings::load(cli.config.as_deref())?;
    match command {
        Command::Serve => serve::serve(settings, registry).await,
        Command::Migrate { command } => migrate::run(command, &settings, &registry).await,
        Command::Users { command } => users::run(command, &settings, &registry).await,
        Command::Clients { command } => clients::run(command, &settings, &registry).await,
        Command::Keys { command } => keys::run(command, &settings, &registry).await,
        Command::Grants { command } => grants::run(command, &settings, &registry).await,
        Command::Config { command } => config_cmd::run(command, &settings, &registry).await,
        Command::Backup { dir } => backup::run(&dir, &settings, &registry).await,
        // Already served above, without configuration; kept total rather than panicking.
        Command::DemoMcp(args) => demo_mcp::run(*args).await,
        // Already served above, without configuration.
        Command::Login(_)
        | Command::Tools(_)
        | Command::Call(_)
        | Command::Token(_)
        | Command::Logout(_)
        | Command::Status(_)
        | Command::Proxy(_) => {
            anyhow::bail!("client commands run before the configuration is loaded")
        }
    }
}
