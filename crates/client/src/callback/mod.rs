//! The loopback callback server (RFC 8252 §7.3; the original project's CallbackServer and
//! CallbackHandler).
//!
//! It binds `127.0.0.1` on an ephemeral port (or a given one), serves `GET /callback` only (other
//! paths get 404), captures `code`, `state`, `iss`, `error` and `error_description`, and accepts
//! exactly one callback whose `state` matches (compared in constant time); mismatches are answered
//! and ignored (MCP: discard results whose state does not match). [`CallbackServer::wait`] times
//! out (default 5 minutes) and can be cancelled. The answer is an escaped HTML page.

pub mod page;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::flow::authorize::state_eq;
use crate::secret::Secret;

/// The path the redirect URI names.
pub const CALLBACK_PATH: &str = "/callback";
/// How long a login may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The authorization response's parameters (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207 §2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CallbackResult {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Why no callback arrived.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(
        "cannot listen for the login callback on 127.0.0.1:{port}: {reason}. Pick another port \
         with --callback-port, or free this one"
    )]
    Bind { port: u16, reason: String },
    #[error(
        "no login callback arrived within {0:?}. Start the login again (and finish it in the \
         browser sooner)"
    )]
    Timeout(Duration),
    #[error("the login was cancelled")]
    Cancelled,
}

struct Shared {
    expected_state: Mutex<Option<Secret>>,
    sender: Mutex<Option<oneshot::Sender<CallbackResult>>>,
}

/// A running callback server; it stops when dropped or when [`CallbackServer::wait`] returns.
pub struct CallbackServer {
    port: u16,
    shared: Arc<Shared>,
    receiver: Option<oneshot::Receiver<CallbackResult>>,
    cancel: CancellationToken,
    stop: CancellationToken,
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl CallbackServer {
    /// Binds `127.0.0.1:port` (0 = ephemeral) and starts serving.
    pub async fn start(port: u16) -> Result<Self, CallbackError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| CallbackError::Bind {
                port,
                reason: e.to_string(),
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| CallbackError::Bind {
                port,
                reason: e.to_string(),
            })?
            .port();
        let (tx, rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            expected_state: Mutex::new(None),
            sender: Mutex::new(Some(tx)),
        });
        let app = Router::new()
            .route(CALLBACK_PATH, axum::routing::get(callback))
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    Html(page::render("Not found", "There is nothing here.")),
                )
            })
            .with_state(Arc::clone(&shared));
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
        });
        Ok(CallbackServer {
            port,
            shared,
            receiver: Some(rx),
            cancel: CancellationToken::new(),
            stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/callback` (RFC 8252 §7.3: the loopback IP, not `localhost`).
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK_PATH}", self.port)
    }

    /// The `state` of the authorization request; callbacks with another state are refused.
    pub fn expect_state(&self, state: &Secret) {
        if let Ok(mut s) = self.shared.expected_state.lock() {
            *s = Some(state.clone());
        }
    }

    /// A token that makes [`CallbackServer::wait`] return [`CallbackError::Cancelled`].
    pub fn cancel_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// Waits for the one matching callback, then stops the server.
    pub async fn wait(&mut self, timeout: Duration) -> Result<CallbackResult, CallbackError> {
        let Some(rx) = self.receiver.take() else {
            return Err(CallbackError::Cancelled);
        };
        let result = tokio::select! {
            r = rx => r.map_err(|_| CallbackError::Cancelled),
            _ = tokio::time::sleep(timeout) => Err(CallbackError::Timeout(timeout)),
            _ = self.cancel.cancelled() => Err(CallbackError::Cancelled),
        };
        self.stop.cancel();
        result
    }
}

async fn callback(State(shared): State<Arc<Shared>>, Query(q): Query<CallbackResult>) -> Response {
    let matches = {
        let expected = shared.expected_state.lock().ok().and_then(|s| s.clone());
        match (&expected, &q.state) {
            (Some(e), Some(got)) => state_eq(e.expose(), got),
            _ => false,
        }
    };
    if !matches {
        tracing::warn!("ignored a login callback whose state does not match the request");
        return (
            StatusCode::BAD_REQUEST,
            Html(page::render(
                "Login not accepted",
                "This response does not belong to the login in progress (its state does not \
                 match), so it was ignored. Start the login again from the application.",
            )),
        )
            .into_response();
    }
    let sender = shared.sender.lock().ok().and_then(|mut s| s.take());
    let Some(sender) = sender else {
        return (
            StatusCode::BAD_REQUEST,
            Html(page::render(
                "Already done",
                "This login was already completed. You can close this window.",
            )),
        )
            .into_response();
    };
    let body = match &q.error {
        Some(err) => (
            StatusCode::OK,
            Html(page::failure(err, q.error_description.as_deref())),
        ),
        None if q.code.is_none() => (
            StatusCode::BAD_REQUEST,
            Html(page::failure(
                "invalid_request",
                Some("the response carries neither a code nor an error"),
            )),
        ),
        None => (StatusCode::OK, Html(page::success())),
    };
    let _ = sender.send(q);
    body.into_response()
}
