//! The server as a library: settings + a registry → a running authorization server.
//!
//! The CLI's `serve`, the end-to-end tests, the load driver and a plugin's own binary all start the
//! server through [`Server`], so they run exactly the same assembly:
//!
//! 1. the settings of every configured plugin are checked (unknown kinds, keys and values stop here,
//!    naming the section and the key), and the key-encryption key is resolved;
//! 2. the schema is brought up to date where the store allows it (`MigrationPolicy`);
//! 3. storage, user authenticator and policy are built into one `OAuthServerProvider`;
//! 4. `[[users.accounts]]` are seeded and, on a store without accounts, the first `admin` is created
//!    (only when the authenticator uses the store's local accounts);
//! 5. signing keys are loaded or created, and the router is assembled with the demo MCP server.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use mcp_oauth::{config::Settings, registry::Registry, server::Server};
//!
//! let settings = Settings::load(None)?;
//! let listener = mcp_oauth::server::bind(&settings).await?;
//! let server = Server::build(&settings, &Registry::builtin()).await?;
//! server.run(listener, std::future::pending()).await?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app;
use crate::config::Settings;
use crate::demo::DemoMount;
use crate::registry::{Registry, key_encryption_key};
use crate::state::AppState;
use crate::users::seed::{create_admin_if_empty, seed_accounts};

/// A built authorization server, ready to run on a listener.
pub struct Server {
    state: AppState,
    demo: Option<DemoMount>,
    /// The initial password of the `admin` account created on this start, if one was.
    admin_password: Option<String>,
    /// `[server] admin_bind`, and its listener once bound.
    admin_bind: Option<SocketAddr>,
    admin_listener: Option<TcpListener>,
}

/// Binds `[server] bind`. `serve` binds before anything else happens, so a port in use is reported
/// before an account is created or a password printed.
pub async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = settings.server.bind.parse().with_context(|| {
        format!(
            "server.bind {:?} is not an address like 127.0.0.1:9000",
            settings.server.bind
        )
    })?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr} ([server] bind)"))
}

/// Binds `[server] admin_bind` when it is set (the operators' listener, see
/// [`crate::observability::admin`]); `serve` binds it together with `[server] bind`, first.
pub async fn bind_admin(settings: &Settings) -> anyhow::Result<Option<TcpListener>> {
    let Some(addr) = settings.admin_bind()? else {
        return Ok(None);
    };
    TcpListener::bind(addr)
        .await
        .map(Some)
        .with_context(|| format!("binding {addr} ([server] admin_bind)"))
}

impl Server {
    /// Builds everything the server needs from validated settings and the registry's factories.
    pub async fn build(settings: &Settings, registry: &Registry) -> anyhow::Result<Self> {
        // Configuration errors first, before anything touches the database.
        registry.check_settings(settings).await?;
        let kek = key_encryption_key(settings, registry)?;
        registry.ensure_schema_for_serve(settings).await?;
        let built = registry.build(settings).await?;
        let mut admin_password = None;
        if built.uses_local_accounts
            && let Some(users) = &built.storage.users
        {
            seed_accounts(users.as_ref(), &settings.users)
                .await
                .context("seeding [[users.accounts]]")?;
            if settings.users.create_admin {
                admin_password = create_admin_if_empty(users.as_ref()).await?;
            }
        }
        // A directory that is down must not stop the server (it may come back), but the operator
        // learns of it now rather than at the first failed sign-in. In the background: a slow
        // directory does not delay the start.
        let authenticator = built.authenticator.clone();
        let users_kind = settings.users.kind.clone();
        let remote = !built.uses_local_accounts;
        tokio::spawn(async move {
            match authenticator.check_health().await {
                Ok(()) if remote => tracing::info!(users = %users_kind, "user directory reachable"),
                Ok(()) => {}
                Err(error) => tracing::warn!(
                    users = %users_kind,
                    error = %crate::cli::output::error_report(&anyhow::Error::new(error)),
                    "user directory unreachable at start; sign-ins fail until it answers"
                ),
            }
        });
        let sources = crate::observability::metrics::Sources {
            hashing: Some(built.hashing),
            pool: built.storage.pool.clone(),
        };
        let state = AppState::new(settings, built.provider, kek, sources).await?;
        let demo = DemoMount::from_settings(settings)?;
        Ok(Self {
            state,
            demo,
            admin_password,
            admin_bind: settings.admin_bind()?,
            admin_listener: None,
        })
    }

    /// What every handler sees (tests reach the provider and keys through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The initial password of the `admin` account this start created (shown once, on the terminal).
    pub fn take_admin_password(&mut self) -> Option<String> {
        self.admin_password.take()
    }

    /// The listener for `[server] admin_bind`, bound earlier with [`bind_admin`]. Without one,
    /// [`Server::run`] binds `admin_bind` itself.
    pub fn set_admin_listener(&mut self, listener: TcpListener) {
        self.admin_listener = Some(listener);
    }

    /// Serves on `listener` (and the admin listener, when `[server] admin_bind` is set) until
    /// `shutdown` resolves (see [`app::run`]).
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let admin = match (self.admin_listener, self.admin_bind) {
            (Some(l), _) => Some(l),
            (None, Some(addr)) => Some(TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("binding {addr} ([server] admin_bind): {e}"),
                )
            })?),
            (None, None) => None,
        };
        app::run(listener, admin, self.state, self.demo, shutdown).await
    }
}
