//! `mcp-oauth demo-mcp`: the demo MCP server on its own, protecting itself with a remote
//! authorization server's tokens — verified offline with its JWKS (default) or by RFC 7662
//! introspection (`--introspect`, as a confidential client whose secret comes from an environment
//! variable, never from the command line). Needs no configuration file and no storage.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::demo::{self, DemoMount};
use crate::resource::{IntrospectionVerifier, JwksVerifier, ProtectedResource};

#[derive(Debug, Clone, Args)]
pub struct DemoMcpArgs {
    /// Issuer URL of the authorization server (its RFC 8414 metadata is read from there).
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub bind: String,
    /// This server's MCP endpoint URL as clients use it: the token audience, declared in the
    /// authorization server's `[[resources]]`. Its path is where the endpoint is served.
    #[arg(long, value_name = "URL")]
    pub resource: String,
    /// Scopes of the resource, comma-separated; the first is required for every call.
    #[arg(long, value_delimiter = ',', default_value = "mcp:tools,mcp:admin")]
    pub scopes: Vec<String>,
    /// Verify tokens by RFC 7662 introspection instead of the issuer's JWKS.
    #[arg(long, requires_all = ["client_id", "client_secret_env"])]
    pub introspect: bool,
    /// Client id for introspection (a confidential client of the authorization server).
    #[arg(long, value_name = "ID", requires = "introspect")]
    pub client_id: Option<String>,
    /// Name of the environment variable holding the introspection client secret.
    #[arg(long, value_name = "VAR", requires = "introspect")]
    pub client_secret_env: Option<String>,
    /// Cache active introspection answers this many seconds (0: ask every time, so revocation is
    /// immediate).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        requires = "introspect"
    )]
    pub introspection_cache_secs: u64,
    /// JWKS verification: verified tokens remembered (until their `exp`) so a token presented on
    /// every request pays one signature check; 0 checks every signature every time.
    #[arg(
        long,
        value_name = "N",
        default_value_t = crate::resource::verifier::DEFAULT_VERIFIED_CACHE_MAX_ENTRIES,
        conflicts_with = "introspect"
    )]
    pub verified_cache_entries: usize,
    /// Extra Host value to accept (repeatable): "host" (any port) or "host:port".
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Extra browser Origin to accept (repeatable): `scheme://host[:port]`.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

/// How tokens are verified.
#[derive(Debug, Clone)]
pub enum VerifierChoice {
    Jwks {
        verified_cache_entries: usize,
    },
    Introspection {
        client_id: String,
        client_secret: String,
        cache_ttl: Duration,
    },
}

/// Everything the standalone demo needs, with the secret already read.
#[derive(Debug, Clone)]
pub struct DemoMcpOptions {
    pub issuer: String,
    pub resource: String,
    pub scopes: Vec<String>,
    pub verifier: VerifierChoice,
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
}

impl DemoMcpArgs {
    /// Reads the secret from its environment variable.
    pub fn options(&self) -> anyhow::Result<DemoMcpOptions> {
        let verifier = if self.introspect {
            let var = self
                .client_secret_env
                .as_deref()
                .context("--introspect needs --client-secret-env VAR")?;
            let client_secret = std::env::var(var).with_context(|| {
                format!("environment variable {var} (the client secret) is not set")
            })?;
            VerifierChoice::Introspection {
                client_id: self
                    .client_id
                    .clone()
                    .context("--introspect needs --client-id")?,
                client_secret,
                cache_ttl: Duration::from_secs(self.introspection_cache_secs),
            }
        } else {
            VerifierChoice::Jwks {
                verified_cache_entries: self.verified_cache_entries,
            }
        };
        Ok(DemoMcpOptions {
            issuer: self.issuer.clone(),
            resource: self.resource.clone(),
            scopes: self.scopes.clone(),
            verifier,
            allowed_hosts: self.allowed_hosts.clone(),
            allowed_origins: self.allowed_origins.clone(),
        })
    }
}

pub async fn run(args: DemoMcpArgs) -> anyhow::Result<()> {
    let options = args.options()?;
    let addr: SocketAddr = args.bind.parse().with_context(|| {
        format!(
            "--bind {:?} is not an address like 127.0.0.1:8000",
            args.bind
        )
    })?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    serve_on(listener, options, super::serve::shutdown_signal()).await
}

/// Serves the demo on `listener` until `shutdown` resolves (tests call this directly).
pub async fn serve_on(
    listener: TcpListener,
    options: DemoMcpOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let resource = ProtectedResource::new(&options.resource, &options.issuer)?
        .with_scopes(options.scopes.iter().map(String::as_str))?;
    if resource.path().is_empty() {
        anyhow::bail!("--resource must have a path, e.g. http://127.0.0.1:8000/mcp");
    }
    let mut mount = DemoMount::new(resource);
    for host in &options.allowed_hosts {
        mount.origins = mount.origins.allow_host(host);
    }
    for origin in &options.allowed_origins {
        mount.origins = mount.origins.allow_origin(origin);
    }
    let cancel = CancellationToken::new();
    let app: axum::Router = match options.verifier {
        VerifierChoice::Jwks {
            verified_cache_entries,
        } => {
            let verifier = JwksVerifier::discover(&options.issuer)
                .await
                .context("reading the authorization server's metadata")?
                .with_verified_cache_max_entries(verified_cache_entries);
            demo::router(&mount, verifier, cancel.clone())
        }
        VerifierChoice::Introspection {
            client_id,
            client_secret,
            cache_ttl,
        } => {
            let verifier =
                IntrospectionVerifier::discover(&options.issuer, &client_id, &client_secret)
                    .await
                    .context("reading the authorization server's metadata")?
                    .with_cache_ttl(cache_ttl);
            demo::router(&mount, verifier, cancel.clone())
        }
    };
    tracing::info!(
        address = %listener.local_addr()?,
        resource = %mount.resource.uri(),
        issuer = %options.issuer,
        "demo MCP server listening"
    );
    let shutdown = async move {
        shutdown.await;
        cancel.cancel();
    };
    axum::serve(
        // Small MCP responses go out at once (no delayed-ACK stall of ~40 ms per request).
        axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        }),
        app,
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    tracing::info!("demo MCP server stopped");
    Ok(())
}
