//! Connections to the directory and what their failures mean.
//!
//! - Transport: LDAP over TCP (RFC 4511 §5), TLS from the first byte for `ldaps://`, or the StartTLS
//!   extended operation (RFC 4511 §4.14, RFC 4513 §3) on `ldap://` when `starttls = true`. The
//!   certificate is checked against `ca_file` when given, else against the system's roots.
//! - Time: opening a connection (TCP, TLS) is bounded by `connect_timeout`; every operation (bind,
//!   search) by `operation_timeout`. A directory that is down or does not answer therefore fails the
//!   step that waits, with [`ProviderError::Unavailable`], never with a hang or a `Rejected`.
//! - Reuse: a password check binds on a *fresh* connection every time. A Bind changes the identity of
//!   the whole connection (RFC 4511 §4.2.1), so a shared one could be left bound as the previous user
//!   or be rebound under a concurrent search; a fresh one cannot. Searches as the service account
//!   share one connection ([`ServiceConnection`]): it is only ever bound as the service account, LDAP
//!   multiplexes concurrent operations on it by message ID (RFC 4511 §4.1.1), and it is re-opened
//!   when it closes or fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry, SearchOptions};
use mcp_oauth_provider::{ProviderError, ProviderResult};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Mutex;

use crate::settings::{LdapSettings, ServiceAccount, SettingsError};

/// RFC 4511 Appendix A result codes this module tells apart.
mod rc {
    pub const SUCCESS: u32 = 0;
    pub const TIME_LIMIT_EXCEEDED: u32 = 3;
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub const CONSTRAINT_VIOLATION: u32 = 19;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_DN_SYNTAX: u32 = 34;
    pub const INAPPROPRIATE_AUTHENTICATION: u32 = 48;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const INSUFFICIENT_ACCESS_RIGHTS: u32 = 50;
    pub const BUSY: u32 = 51;
    pub const UNAVAILABLE: u32 = 52;
    pub const UNWILLING_TO_PERFORM: u32 = 53;
    pub const ADMIN_LIMIT_EXCEEDED: u32 = 11;
}

/// What a simple Bind said about the credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    Bound,
    /// Wrong password, no such entry, account locked or disabled: the caller must not tell which.
    Refused,
}

/// Entries of a search and whether the server stopped at the size limit.
#[derive(Debug)]
pub struct Found {
    pub entries: Vec<SearchEntry>,
    pub truncated: bool,
}

/// Opens connections with the configured transport and limits.
pub struct Connector {
    url: String,
    conn_settings: LdapConnSettings,
    connect_timeout: Duration,
    operation_timeout: Duration,
}

impl Connector {
    /// Reads `ca_file` (when set) and prepares the TLS configuration.
    pub fn new(settings: &LdapSettings) -> Result<Self, SettingsError> {
        // ldap3 builds its rustls configurations from the process-wide provider; installing ring is
        // harmless when some other part of the program did it first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut conn_settings = LdapConnSettings::new().set_starttls(settings.starttls);
        if let Some(path) = &settings.ca_file {
            conn_settings = conn_settings.set_config(Arc::new(tls_config(path)?));
        }
        Ok(Self {
            url: settings.url.clone(),
            conn_settings,
            connect_timeout: settings.connect_timeout,
            operation_timeout: settings.operation_timeout,
        })
    }

    /// The directory's URL (`[users.ldap] url`; it holds no secret).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// A new connection, its I/O driven by a background task that ends when the last handle drops.
    pub async fn open(&self) -> ProviderResult<Ldap> {
        let opened = tokio::time::timeout(
            self.connect_timeout,
            LdapConnAsync::with_settings(self.conn_settings.clone(), &self.url),
        )
        .await;
        let (conn, ldap) = match opened {
            Err(_) => {
                return Err(ProviderError::unavailable_msg(format!(
                    "no connection to the LDAP directory within {:?}",
                    self.connect_timeout
                )));
            }
            Ok(result) => result.map_err(|e| failure("connecting to the LDAP directory", e))?,
        };
        tokio::spawn(async move {
            if let Err(error) = conn.drive().await {
                tracing::debug!(%error, "LDAP connection ended");
            }
        });
        Ok(ldap)
    }

    /// A simple Bind (RFC 4511 §4.2). The caller has refused an empty password already: with one,
    /// the server would answer an "unauthenticated bind" with success (RFC 4513 §5.1.2).
    pub async fn bind(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        password: &str,
    ) -> ProviderResult<BindOutcome> {
        if password.is_empty() {
            return Ok(BindOutcome::Refused);
        }
        let result = self
            .within(
                "binding to the LDAP directory",
                ldap.simple_bind(dn, password),
            )
            .await?;
        match result.rc {
            rc::SUCCESS => Ok(BindOutcome::Bound),
            rc::INVALID_CREDENTIALS
            | rc::NO_SUCH_OBJECT
            | rc::INVALID_DN_SYNTAX
            | rc::INAPPROPRIATE_AUTHENTICATION
            | rc::INSUFFICIENT_ACCESS_RIGHTS
            | rc::UNWILLING_TO_PERFORM
            | rc::CONSTRAINT_VIOLATION => Ok(BindOutcome::Refused),
            code => Err(result_failure(
                "binding to the LDAP directory",
                code,
                &result.text,
            )),
        }
    }

    /// A subtree search for at most `size_limit` entries (0 = the server's limit). `Ok` with an
    /// empty list when `base` does not exist or the bound identity may not see it.
    pub async fn search(
        &self,
        ldap: &mut Ldap,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
        size_limit: i32,
    ) -> ProviderResult<Found> {
        let op = ldap
            .with_search_options(SearchOptions::new().sizelimit(size_limit))
            .search(base, scope, filter, attrs.to_vec());
        let result = self.within("searching the LDAP directory", op).await?;
        let ldap3::SearchResult(raw, status) = result;
        let truncated = match status.rc {
            rc::SUCCESS => false,
            rc::SIZE_LIMIT_EXCEEDED | rc::ADMIN_LIMIT_EXCEEDED => true,
            rc::NO_SUCH_OBJECT => {
                return Ok(Found {
                    entries: Vec::new(),
                    truncated: false,
                });
            }
            code => {
                return Err(result_failure(
                    "searching the LDAP directory",
                    code,
                    &status.text,
                ));
            }
        };
        Ok(Found {
            entries: raw.into_iter().map(SearchEntry::construct).collect(),
            truncated,
        })
    }

    /// Runs one operation under `operation_timeout`.
    async fn within<T>(
        &self,
        what: &'static str,
        op: impl Future<Output = Result<T, LdapError>>,
    ) -> ProviderResult<T> {
        match tokio::time::timeout(self.operation_timeout, op).await {
            Err(_) => Err(ProviderError::unavailable_msg(format!(
                "{what}: no answer within {:?}",
                self.operation_timeout
            ))),
            Ok(result) => result.map_err(|e| failure(what, e)),
        }
    }
}

/// Closes a connection politely (an Unbind, RFC 4511 §4.3; the server sends no answer).
pub async fn close(ldap: &mut Ldap, operation_timeout: Duration) {
    let _ = tokio::time::timeout(operation_timeout, ldap.unbind()).await;
}

/// The service account's shared connection (search mode).
pub struct ServiceConnection {
    connector: Arc<Connector>,
    account: ServiceAccount,
    /// The open, bound connection and its generation (so a failure discards only the connection it
    /// happened on, not one a concurrent login has just re-opened).
    current: Mutex<Option<(u64, Ldap)>>,
    generations: AtomicU64,
}

impl ServiceConnection {
    pub fn new(connector: Arc<Connector>, account: ServiceAccount) -> Self {
        Self {
            connector,
            account,
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
        }
    }

    /// A subtree search as the service account. A connection that turns out to be dead (the
    /// directory restarted since it was opened) is replaced and the search tried once more; a
    /// timeout is not retried, so a slow directory costs one `operation_timeout`.
    pub async fn search(
        &self,
        base: &str,
        filter: &str,
        attrs: &[&str],
        size_limit: i32,
    ) -> ProviderResult<Found> {
        let mut retried = false;
        loop {
            let (generation, mut ldap) = self.handle().await?;
            match self
                .connector
                .search(&mut ldap, base, Scope::Subtree, filter, attrs, size_limit)
                .await
            {
                Ok(found) => return Ok(found),
                Err(err) => {
                    self.discard(generation).await;
                    // A connection the server closed (e.g. it restarted) is closed on our side by
                    // now; one that merely timed out is still open and is not worth a second wait.
                    let stale = ldap.is_closed();
                    if stale && !retried {
                        tracing::debug!(error = %err, "LDAP service connection failed; reconnecting");
                        retried = true;
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }

    /// Opens (or reuses) the connection bound as the service account: the directory answers and
    /// accepts the account.
    pub async fn check(&self) -> ProviderResult<()> {
        self.handle().await.map(drop)
    }

    /// The open connection, or a new one bound as the service account. Waiting for another login
    /// that is opening it counts against the same limits.
    async fn handle(&self) -> ProviderResult<(u64, Ldap)> {
        let limit = self.connector.connect_timeout() + self.connector.operation_timeout();
        match tokio::time::timeout(limit, self.open_or_reuse()).await {
            Ok(result) => result,
            Err(_) => Err(ProviderError::unavailable_msg(format!(
                "no LDAP service connection within {limit:?}"
            ))),
        }
    }

    async fn open_or_reuse(&self) -> ProviderResult<(u64, Ldap)> {
        let mut current = self.current.lock().await;
        if let Some((generation, ldap)) = current.as_mut()
            && !ldap.is_closed()
        {
            return Ok((*generation, ldap.clone()));
        }
        *current = None;
        let mut ldap = self.connector.open().await?;
        match self
            .connector
            .bind(&mut ldap, &self.account.dn, self.account.password.expose())
            .await?
        {
            BindOutcome::Bound => {}
            BindOutcome::Refused => {
                return Err(ProviderError::backend_msg(format!(
                    "the LDAP directory refused the service account {:?}: check bind_dn and its password",
                    self.account.dn
                )));
            }
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        *current = Some((generation, ldap.clone()));
        tracing::debug!(generation, "LDAP service connection opened");
        Ok((generation, ldap))
    }

    async fn discard(&self, generation: u64) {
        let mut current = self.current.lock().await;
        if matches!(current.as_ref(), Some((g, _)) if *g == generation) {
            *current = None;
        }
    }
}

/// Reads the PEM certificates of `path` into a TLS client configuration trusting only them.
fn tls_config(path: &std::path::Path) -> Result<rustls::ClientConfig, SettingsError> {
    let invalid = |message: String| SettingsError::Key {
        key: "ca_file",
        message,
    };
    let pem =
        std::fs::read(path).map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        roots
            .add(cert)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    }
    if roots.is_empty() {
        return Err(invalid(format!(
            "{} holds no PEM certificate",
            path.display()
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// An LDAP library error as a provider error: the directory being unreachable, closing the
/// connection or failing TLS is `Unavailable`; anything else (a bug, a bad filter) is `Backend`.
fn failure(what: &'static str, err: LdapError) -> ProviderError {
    match err {
        LdapError::LdapResult { result } => result_failure(what, result.rc, &result.text),
        LdapError::Io { .. }
        | LdapError::OpSend { .. }
        | LdapError::ResultRecv { .. }
        | LdapError::IdScrubSend { .. }
        | LdapError::MiscSend { .. }
        | LdapError::Timeout { .. }
        | LdapError::EndOfStream
        | LdapError::Rustls { .. }
        | LdapError::DNSName { .. } => ProviderError::unavailable(what, err),
        other => ProviderError::backend(what, other),
    }
}

/// A non-success result code: the server being busy or unavailable is `Unavailable`, the rest is
/// `Backend` (a configuration the directory refuses).
fn result_failure(what: &'static str, code: u32, text: &str) -> ProviderError {
    let message = format!("{what}: result code {code} {text:?}");
    match code {
        rc::BUSY | rc::UNAVAILABLE | rc::TIME_LIMIT_EXCEEDED => {
            ProviderError::unavailable_msg(message)
        }
        _ => ProviderError::backend_msg(message),
    }
}
