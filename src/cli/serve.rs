//! `mcp-oauth serve`: opens the configured provider, seeds accounts, loads keys, listens, and stops
//! gracefully on SIGINT / SIGTERM.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::app;
use crate::config::Settings;
use crate::registry::{Registry, key_encryption_key};
use crate::state::AppState;
use crate::users::seed::{create_admin_if_empty, seed_accounts};

/// Builds everything `serve` needs; also used by tests.
pub async fn prepare(settings: &Settings, registry: &Registry) -> anyhow::Result<AppState> {
    // Configuration errors first, before anything touches the database.
    let kek = key_encryption_key(settings)?;
    registry.ensure_schema_for_serve(settings).await?;
    let built = registry.build(settings).await?;
    if let Some(users) = &built.storage.users {
        seed_accounts(users.as_ref(), &settings.users)
            .await
            .context("seeding [[users.accounts]]")?;
        if settings.users.create_admin
            && settings.users.kind == "local"
            && let Some(password) = create_admin_if_empty(users.as_ref()).await?
        {
            // Shown once on the terminal (not through the log pipeline), as the operator needs it.
            println!("Created user \"admin\" with one-time password: {password}");
            println!("(it is not shown again; set your own accounts in [[users.accounts]])");
        }
    }
    AppState::new(settings, built.provider, kek).await
}

pub async fn serve(settings: Settings, registry: Registry) -> anyhow::Result<()> {
    let state = prepare(&settings, &registry).await?;
    let addr: SocketAddr = settings.server.bind.parse()?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, issuer = %state.issuer, storage = %settings.storage.kind, "mcp-oauth listening");
    app::run(listener, state, shutdown_signal()).await?;
    tracing::info!("mcp-oauth stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        _ = term => tracing::info!("SIGTERM received, shutting down"),
    }
}
