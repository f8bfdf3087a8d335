//! `mcp-oauth serve`: binds, builds the [`Server`] (provider, accounts, keys), listens, and stops
//! gracefully on SIGINT / SIGTERM.

use crate::config::Settings;
use crate::registry::Registry;
use crate::server::{Server, bind, bind_admin};

/// Binds first (a port in use fails before anything is created), builds the server, prints the
/// first admin's initial password when this start created the account, and serves until a signal.
pub async fn serve(settings: Settings, registry: Registry) -> anyhow::Result<()> {
    let listener = bind(&settings).await?;
    let admin = bind_admin(&settings).await?;
    let mut server = Server::build(&settings, &registry).await?;
    if let Some(password) = server.take_admin_password() {
        // Shown once on the terminal (not through the log pipeline), as the operator needs it.
        println!("Created user \"admin\" with initial password: {password}");
        println!(
            "(shown only this once; change it with `mcp-oauth users passwd admin`, or declare \
             your own accounts in [[users.accounts]])"
        );
    }
    if let Some(admin) = admin {
        tracing::info!(address = %admin.local_addr()?, "admin listener (/metrics, /healthz, /readyz)");
        server.set_admin_listener(admin);
    }
    tracing::info!(address = %listener.local_addr()?, issuer = %server.state().issuer, storage = %settings.storage.kind, users = %settings.users.kind, "mcp-oauth listening");
    server.run(listener, shutdown_signal()).await?;
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
