//! The accept loop: HTTP/1.1 connections served by hyper with a header read timeout, a limit on open
//! connections in all and per peer address, and graceful shutdown (issue 8 §7; OWASP *Denial of
//! Service Cheat Sheet*, "slow HTTP" attacks; CWE-400).
//!
//! - **Header read timeout.** A connection must deliver a request's headers within
//!   `[limits] header_read_timeout` of opening or of its previous response, else it is closed
//!   (hyper's `header_read_timeout`, which also ends idle keep-alive connections). Half-sent
//!   requests (slowloris) therefore cost an attacker a new connection every few seconds.
//! - **Connection limit.** At most `max_connections` are open; further clients wait in the kernel's
//!   listen queue instead of being accepted into a process that has run out of file descriptors
//!   (then nobody is served). `0` derives the limit from the open-file limit. While more than half
//!   of the slots are taken, new connections get a fifth of the header read timeout (at least
//!   1 s), so slots held by idle attackers turn over faster.
//! - **Per-address connection limit.** One peer address holds at most `max_connections_per_address`
//!   (at most half of `max_connections`); further connections from it are closed at once, so one
//!   address cannot take every slot. Trusted proxies (`[server] trusted_proxies`) are exempt: they
//!   carry many clients.
//!
//! Each request carries its peer address as axum's `ConnectInfo<SocketAddr>` (see
//! [`crate::oauth::client_address`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::oauth::client_address::TrustedProxies;

/// Descriptors kept back for the database, log files and the runtime when the connection limit is
/// derived from the open-file limit.
const RESERVED_DESCRIPTORS: u64 = 256;

/// The limits the accept loop enforces.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    /// Open connections in all (already resolved: never 0).
    pub max_connections: usize,
    /// Open connections per peer address; `None` = no per-address limit.
    pub max_per_address: Option<usize>,
    pub trusted_proxies: TrustedProxies,
}

impl ConnectionLimits {
    /// Resolves `[limits]`: `max_connections = 0` becomes the open-file limit minus
    /// `RESERVED_DESCRIPTORS` (at least half of it), or 1024 where that limit cannot be read; the
    /// per-address limit is capped at half the total.
    pub fn resolve(
        header_read_timeout: Duration,
        max_connections: u32,
        max_per_address: u32,
        trusted_proxies: TrustedProxies,
    ) -> Self {
        let max_connections = match max_connections {
            0 => open_file_limit().map_or(1024, auto_connection_limit),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let max_per_address = (max_per_address > 0).then(|| {
            usize::try_from(max_per_address)
                .unwrap_or(usize::MAX)
                .min((max_connections / 2).max(1))
        });
        Self {
            header_read_timeout,
            max_connections,
            max_per_address,
            trusted_proxies,
        }
    }
}

/// The header read timeout of connections accepted while more than half of the connection slots
/// are taken: a fifth of the configured one, at least 1 s. Real clients send their headers at once;
/// an attacker holding slots has to come back five times as often.
fn under_load_timeout(configured: Duration) -> Duration {
    (configured / 5).max(Duration::from_secs(1)).min(configured)
}

/// The automatic connection limit for an open-file limit of `files`.
fn auto_connection_limit(files: u64) -> usize {
    let n = files
        .saturating_sub(RESERVED_DESCRIPTORS)
        .max(files / 2)
        .max(2);
    usize::try_from(n).unwrap_or(usize::MAX).min(65_536)
}

/// The soft open-file limit of this process (Linux: `/proc/self/limits`).
fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_file_limit(&text)
}

fn parse_open_file_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .trim_start_matches("Max open files")
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

/// Open connections per peer address; a guard gives its connection back on drop.
#[derive(Debug, Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

struct AddressGuard {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn try_open(table: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressGuard> {
        let mut open = table.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressGuard {
            table: Arc::clone(table),
            ip,
        })
    }
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for open requests to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut http_under_load = http.clone();
    http_under_load.header_read_timeout(under_load_timeout(limits.header_read_timeout));
    tokio::pin!(shutdown);
    loop {
        // A slot first: at the limit, clients wait in the listen queue, not in a starved process.
        let permit = tokio::select! {
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let peer_ip = peer.ip().to_canonical();
        let guard = match limits.max_per_address {
            Some(max) if !limits.trusted_proxies.contains(peer_ip) => {
                match PerAddress::try_open(&per_address, peer_ip, max) {
                    Some(g) => Some(g),
                    None => {
                        tracing::debug!(peer = %peer_ip, "per-address connection limit reached; closing");
                        continue;
                    }
                }
            }
            _ => None,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        // Under load, a new connection gets less time to say what it wants.
        let under_load = slots.available_permits() < limits.max_connections / 2;
        let builder = if under_load { &http_under_load } else { &http };
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(peer = %peer_ip, error = %e, "connection ended with an error");
            }
            drop(guard);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Per-connection accept errors are ignored; anything else (out of descriptors, most likely) is
/// logged and retried after a pause so the loop does not spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_limit_leaves_descriptors_free() {
        assert_eq!(auto_connection_limit(128), 64);
        assert_eq!(auto_connection_limit(1024), 768);
        assert_eq!(auto_connection_limit(20_000), 19_744);
        assert_eq!(auto_connection_limit(u64::MAX), 65_536);
        assert_eq!(auto_connection_limit(1), 2);
    }

    #[test]
    fn under_load_the_header_timeout_shrinks() {
        assert_eq!(
            under_load_timeout(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
        assert_eq!(
            under_load_timeout(Duration::from_secs(3)),
            Duration::from_secs(1)
        );
        assert_eq!(
            under_load_timeout(Duration::from_millis(500)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn reads_the_soft_open_file_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             95283                95283                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_file_limit(text), Some(1024));
        assert_eq!(
            parse_open_file_limit(
                "Max open files            unlimited            unlimited            files"
            ),
            Some(u64::MAX)
        );
        assert_eq!(parse_open_file_limit("nothing here"), None);
    }

    #[test]
    fn per_address_limit_is_at_most_half_of_all() {
        let l =
            ConnectionLimits::resolve(Duration::from_secs(1), 10, 32, TrustedProxies::default());
        assert_eq!(l.max_connections, 10);
        assert_eq!(l.max_per_address, Some(5));
        let l =
            ConnectionLimits::resolve(Duration::from_secs(1), 100, 0, TrustedProxies::default());
        assert_eq!(l.max_per_address, None);
    }

    #[test]
    fn address_guards_count_and_give_back() {
        let table = Arc::new(PerAddress::default());
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        let a = PerAddress::try_open(&table, ip, 2).unwrap();
        let b = PerAddress::try_open(&table, ip, 2).unwrap();
        assert!(PerAddress::try_open(&table, ip, 2).is_none());
        assert!(PerAddress::try_open(&table, "198.51.100.2".parse().unwrap(), 2).is_some());
        drop(a);
        let c = PerAddress::try_open(&table, ip, 2).unwrap();
        drop((b, c));
        assert!(table.0.lock().unwrap().is_empty());
    }
}
