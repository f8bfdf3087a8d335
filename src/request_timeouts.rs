//! Request timeouts (issue 8 §7; OWASP *Denial of Service Cheat Sheet*, "slow HTTP" attacks):
//!
//! - **Body read timeout.** A request body must be complete within `[limits] body_read_timeout` of
//!   its headers. The deadline is for the whole body, not per read, so a body trickled a byte at a
//!   time is cut off too. The handler's body read then fails and it answers in its own format
//!   (`invalid_request` for the JSON endpoints, an error page for the browser ones); hyper closes
//!   the connection, as the rest of the body was never read.
//! - **Handler timeout.** A handler must produce its response head within
//!   `[limits] handler_timeout`, else the request is answered with 503 (`temporarily_unavailable`
//!   in JSON, or a page for the browser endpoints) and its work is dropped. A response that has
//!   started (an MCP event stream) is not cut.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::error::{ErrorCode, OAuthError};
use crate::state::AppState;

/// The error a body yields once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
pub struct BodyTimedOut;

/// A request body that fails once `deadline` has passed.
pub struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    pub fn new(inner: Body, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        // Both fields are `Unpin` (a boxed body and a boxed sleep).
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// True for the endpoints that answer browsers with pages.
fn is_browser_path(path: &str) -> bool {
    matches!(path, "/authorize" | "/login" | "/consent")
}

/// Middleware over the whole router: the body deadline and the handler timeout.
pub async fn limit_request_time(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limits = &state.limits;
    let browser = is_browser_path(req.uri().path());
    let (parts, body) = req.into_parts();
    let body = if http_body::Body::is_end_stream(&body) {
        body
    } else {
        Body::new(DeadlineBody::new(body, limits.body_read_timeout))
    };
    let req = Request::from_parts(parts, body);
    match tokio::time::timeout(limits.handler_timeout, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(
                timeout = ?limits.handler_timeout,
                "handler timed out; answering 503"
            );
            let mut resp = if browser {
                state.pages.error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again",
                    "The server took too long to answer. Please try again.",
                )
            } else {
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "the server took too long to answer; retry later",
                )
                .into_response()
            };
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_body_that_arrives_in_time_is_read() {
        let body = DeadlineBody::new(Body::from("a=1"), Duration::from_secs(5));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"a=1");
    }

    /// A body that sends one frame and then nothing, ever.
    struct Stalled(bool);

    impl http_body::Body for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            if self.0 {
                return Poll::Pending;
            }
            self.0 = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"a=")))))
        }
    }

    #[tokio::test]
    async fn a_body_that_never_ends_fails_at_the_deadline() {
        let started = std::time::Instant::now();
        let err = DeadlineBody::new(Body::new(Stalled(false)), Duration::from_millis(300))
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not received in time"), "{err}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(3),
            "{took:?}"
        );
    }

    #[test]
    fn browser_paths_get_pages() {
        assert!(is_browser_path("/login"));
        assert!(is_browser_path("/authorize"));
        assert!(!is_browser_path("/token"));
    }
}
