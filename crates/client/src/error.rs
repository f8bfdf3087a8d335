//! The one error type of the client. Every message says what happened and what to do next; none
//! contains a token, secret or password.

use std::path::PathBuf;

/// Everything that can go wrong while discovering, logging in, storing or refreshing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL the client was given or was sent to is unsafe to follow (MCP security best practices,
    /// *OAuth Authorization URL Validation*).
    #[error(
        "refusing the URL {url}: {reason}. Only https URLs (or http to 127.0.0.1, ::1 or localhost) \
         are allowed; pass --insecure to allow plain http during development"
    )]
    UnsafeUrl { url: String, reason: String },

    /// A URL could not be parsed at all.
    #[error("{what} is not a valid URL ({url}): {reason}")]
    BadUrl {
        what: &'static str,
        url: String,
        reason: String,
    },

    /// The network or the server could not be reached.
    #[error("cannot reach {url}: {reason}. Check the URL and that the server is running")]
    Unreachable { url: String, reason: String },

    /// Discovery (RFC 9728 / RFC 8414 / OIDC) did not find what the client needs.
    #[error("discovery failed for {server}: {reason}")]
    Discovery { server: String, reason: String },

    /// The authorization server does not advertise PKCE S256 (MCP *Authorization Code
    /// Protection*: clients MUST refuse to proceed).
    #[error(
        "the authorization server {issuer} does not advertise PKCE S256 \
         (code_challenge_methods_supported), so this client refuses to log in there. \
         Ask its operator to enable S256"
    )]
    NoPkceS256 { issuer: String },

    /// No way to obtain a client registration.
    #[error("cannot register with {issuer}: {reason}")]
    Registration { issuer: String, reason: String },

    /// The authorization server answered an OAuth error (RFC 6749 §5.2 / §4.1.2.1).
    #[error("the authorization server refused the {step}: {code}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        step: &'static str,
        code: String,
        description: Option<String>,
    },

    /// The authorization response failed a check (state, iss) and was discarded.
    #[error("the authorization response was rejected: {0}. Start the login again")]
    BadAuthorizationResponse(String),

    /// The loopback callback server failed or gave up.
    #[error("{0}")]
    Callback(#[from] crate::callback::CallbackError),

    /// The authorization endpoint answered the authorization request itself with an error page
    /// (commonly: it does not know the client).
    #[error(
        "the authorization server refused the authorization request: {0}. If it no longer knows \
         this client, run `mcp-oauth logout URL` and log in again"
    )]
    AuthorizationRefused(String),

    /// Headless login could not get through the authorization server's pages.
    #[error("headless login failed: {0}")]
    Headless(String),

    /// A login is needed but this caller does not allow an interactive one.
    #[error(
        "not logged in to {server} (or the stored login can no longer be refreshed). \
         Run `mcp-oauth login {server}` first"
    )]
    LoginRequired { server: String },

    /// Step-up authorization gave up (MCP *Step-Up Authorization Flow*: retry limits).
    #[error(
        "the server {server} still answers 403 insufficient_scope after {attempts} re-authorizations \
         (last asked for scopes: {scopes}). Ask its administrator to grant you these scopes"
    )]
    StepUpExhausted {
        server: String,
        attempts: u32,
        scopes: String,
    },

    /// The token store could not be read or written.
    #[error("token store {}: {reason}", path.display())]
    Store { path: PathBuf, reason: String },

    /// A stored record exists but cannot be opened (wrong key, truncated, corrupted). The file is
    /// left exactly as it was.
    #[error(
        "the token store record {} cannot be read: {reason}. The file was left unchanged; \
         restore the right key (MCP_OAUTH_STORE_KEY or the key file), or run `mcp-oauth logout URL` \
         to delete the record and log in again", path.display()
    )]
    UnreadableRecord { path: PathBuf, reason: String },

    /// The MCP session failed.
    #[error("MCP error talking to {server}: {reason}")]
    Mcp { server: String, reason: String },

    /// Bad input from the user of the library or CLI.
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub(crate) fn unreachable(url: &str, err: reqwest::Error) -> Self {
        // The URL is named once, as the caller gives it (without its query); reqwest's own copy,
        // query included, is dropped.
        Error::Unreachable {
            url: url.to_string(),
            reason: source_chain(&err.without_url()),
        }
    }

    pub(crate) fn store(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Error::Store {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }

    /// True when the authorization server said the client is unknown (RFC 6749 §5.2).
    pub fn is_invalid_client(&self) -> bool {
        matches!(self, Error::OAuth { code, .. } if code == "invalid_client")
    }

    /// True when a refresh token or code was rejected for good (RFC 6749 §5.2 `invalid_grant`).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, Error::OAuth { code, .. } if code == "invalid_grant")
    }
}

/// An error and its causes in one line.
pub(crate) fn source_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
