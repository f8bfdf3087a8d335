//! The one error type every provider part returns.

use std::error::Error as StdError;

/// A boxed error source, kept so the core can log the real cause (never sent to clients).
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Failure of a provider operation.
///
/// "Not found" is never an error: lookups return `Ok(None)`. Each variant documents the HTTP status
/// the server core answers with when it surfaces to a client.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// A record with the same unique key already exists (e.g. a duplicate `client_id`). 409 / 400.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The backend does not support this operation (e.g. adding users to a read-only directory). 400.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A setting in the backend's own table is missing, unknown or has a bad value. The message
    /// names the section and the key (see `FactoryContext::invalid`). Stops `serve` and
    /// `config check`; never sent to clients.
    #[error("invalid settings: {0}")]
    InvalidSettings(String),
    /// The backend is temporarily unreachable (database or directory down, pool exhausted, timeout).
    /// Answered as `temporarily_unavailable` with 503; the server retries on the next request.
    #[error("backend temporarily unavailable: {message}")]
    Unavailable {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Any other backend failure (corrupt row, bug). Answered as `server_error` with 500.
    #[error("backend error: {message}")]
    Backend {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
}

impl ProviderError {
    /// A `Backend` error with a cause.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A `Backend` error without a separate cause.
    pub fn backend_msg(message: impl Into<String>) -> Self {
        Self::Backend {
            message: message.into(),
            source: None,
        }
    }

    /// An `Unavailable` error with a cause.
    pub fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An `Unavailable` error without a separate cause.
    pub fn unavailable_msg(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// True for errors a retry may cure (the core answers 503 for these).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// Result alias for provider operations.
pub type ProviderResult<T> = Result<T, ProviderError>;
