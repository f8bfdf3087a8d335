//! rmcp glue: a [`StreamableHttpClient`] that runs the authorization inside the request path (the
//! original project's `async_auth_flow`). Every request carries a valid bearer token (MCP *Token
//! Requirements*); a 401 gets one refresh-or-login and one retry; a 403 `insufficient_scope` steps
//! up (bounded by the authorizer). Any request can therefore trigger discovery, login or refresh.
//!
//! Authorization failures travel through rmcp as `StreamableHttpError::Io` wrapping the crate's
//! [`Error`], so their message reaches the caller intact.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use super::authorizer::Authorizer;
use crate::error::Error;

type HttpError = StreamableHttpError<reqwest::Error>;

/// The reqwest streamable-HTTP client of rmcp, authorised by an [`Authorizer`].
#[derive(Clone)]
pub struct AuthorizedHttpClient {
    http: reqwest::Client,
    auth: Authorizer,
}

impl AuthorizedHttpClient {
    pub fn new(http: reqwest::Client, auth: Authorizer) -> Self {
        AuthorizedHttpClient { http, auth }
    }

    async fn authorized<T, F, Fut>(&self, call: F) -> Result<T, HttpError>
    where
        F: Fn(String) -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let mut token = self.auth.access_token().await.map_err(wrap)?;
        let mut retried_401 = false;
        loop {
            match call(token.expose().to_string()).await {
                Err(StreamableHttpError::AuthRequired(c)) if !retried_401 => {
                    retried_401 = true;
                    token = self
                        .auth
                        .handle_unauthorized(Some(token.expose()), &c.www_authenticate_header)
                        .await
                        .map_err(wrap)?;
                }
                Err(StreamableHttpError::InsufficientScope(c)) => {
                    token = self
                        .auth
                        .handle_insufficient_scope(&c.www_authenticate_header)
                        .await
                        .map_err(wrap)?;
                }
                Ok(v) => {
                    self.auth.note_success().await;
                    return Ok(v);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Our error, carried through rmcp's error type.
fn wrap(e: Error) -> HttpError {
    StreamableHttpError::Io(std::io::Error::other(e))
}

impl StreamableHttpClient for AuthorizedHttpClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.authorized(|token| {
            self.http.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.authorized(|token| {
            self.http.post_message_with_max_sse_event_size(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.authorized(|token| {
            self.http.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        self.authorized(|token| {
            self.http.delete_session(
                uri.clone(),
                session_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.authorized(|token| {
            self.http.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.authorized(|token| {
            self.http.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                Some(token),
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
