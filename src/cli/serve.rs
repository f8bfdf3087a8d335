//! `mcp-oauth serve`: binds, builds the [`Server`] (provider, accounts, keys), listens, and stops
//! gracefully on SIGINT / SIGTERM.

use crate::config::Settings;
use crate::registry::Registry;
use crate::server::{Server, bind, bind_admin};

/// Binds first (a port in use fails before anything is created), fixes a derived issuer to the
/// bound address, builds the server, prints where it serves and keeps its data, prints the first
/// admin's initial password when this start created the account, and serves until a signal.
pub async fn serve(settings: Settings, registry: Registry) -> anyhow::Result<()> {
    let listener = bind(&settings).await?;
    let admin = bind_admin(&settings).await?;
    let address = listener.local_addr()?;
    let settings = settings.with_bound_address(address)?;
    let location = registry.storage_location(&settings)?;
    let mut server = Server::build(&settings, &registry).await?;
    let issuer = server.state().issuer.clone();
    let data_dir = settings.data_dir();
    // On stdout for the operator, and in the log for whoever reads it later.
    crate::say!("mcp-oauth {}", env!("CARGO_PKG_VERSION"));
    crate::say!("  issuer:    {issuer}");
    crate::say!("  listening: {address}");
    crate::say!("  storage:   {location}");
    crate::say!("  data dir:  {}", data_dir.display());
    crate::say!("  users:     {}", settings.users.kind);
    if let Some(password) = server.take_admin_password() {
        // Shown once on the terminal (not through the log pipeline), as the operator needs it.
        crate::say!("Created user \"admin\" with initial password: {password}");
        crate::say!(
            "(an initial password, shown only this once: change it now with \
             `mcp-oauth users passwd admin`, or declare your own accounts in [[users.accounts]])"
        );
    }
    if let Some(admin) = admin {
        tracing::info!(address = %admin.local_addr()?, "admin listener (/metrics, /healthz, /readyz)");
        server.set_admin_listener(admin);
    }
    tracing::info!(%address, %issuer, storage = %location, data_dir = %data_dir.display(), users = %settings.users.kind, "mcp-oauth listening");
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
