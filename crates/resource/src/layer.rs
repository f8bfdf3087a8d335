//! [`BearerAuthLayer`]: the tower layer that puts a protected resource in front of any axum router
//! or tower service (an rmcp `StreamableHttpService` included).
//!
//! Every request, in order (MCP *Token Handling*: validated "on every request", never by session):
//!
//! 1. `Host` allow-list and `Origin` check ([`OriginPolicy`]) → 403.
//! 2. No token in the query string (RFC 6750 §2.3 is forbidden by MCP) → 400 `invalid_request`.
//! 3. Exactly one `Authorization: Bearer <token68>` (RFC 6750 §2.1): none → 401 without `error`;
//!    malformed or repeated → 400 `invalid_request`.
//! 4. The [`TokenVerifier`] → 401 `invalid_token` (or 503 when the issuer cannot be asked).
//! 5. Issuer trusted and audience = this resource (RFC 8707 §2, MCP *Token Audience Binding*)
//!    → 401 `invalid_token`.
//! 6. The resource's required scopes, then the scopes of any tool a `tools/call` body names
//!    (declared with `ProtectedResource::with_tool_scopes`) → 403 `insufficient_scope`.
//! 7. An `Mcp-Session-Id` must belong to the same user and client that created the session
//!    ([`SessionOwners`]) → 404 as for an unknown session.
//! 8. The [`Identity`] and a [`ResourceContext`] go into the request extensions; the request goes on.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use tower::{Layer, Service};

use crate::challenge::Rejection;
use crate::origin::OriginPolicy;
use crate::protected::ProtectedResource;
use crate::scope::{ResourceContext, called_tools, step_up};
use crate::session_binding::{SESSION_HEADER, SessionOwners};
use crate::verifier::{Identity, TokenVerifier, VerifyError};

/// The largest body read for the per-tool scope check (rmcp's own default limit).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Requires a valid bearer token for `resource` on every request. Cheap to clone.
#[derive(Clone)]
pub struct BearerAuthLayer {
    resource: Arc<ProtectedResource>,
    verifier: Arc<dyn TokenVerifier>,
    origins: Arc<OriginPolicy>,
    sessions: Arc<SessionOwners>,
    max_body_bytes: usize,
}

impl std::fmt::Debug for BearerAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuthLayer")
            .field("resource", &self.resource.uri())
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl BearerAuthLayer {
    /// Protects `resource` with `verifier`; origins and hosts default to
    /// [`OriginPolicy::for_resource`].
    pub fn new(resource: ProtectedResource, verifier: impl TokenVerifier) -> Self {
        Self {
            origins: Arc::new(OriginPolicy::for_resource(&resource)),
            resource: Arc::new(resource),
            verifier: Arc::new(verifier),
            sessions: Arc::new(SessionOwners::default()),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    pub fn with_origin_policy(mut self, policy: OriginPolicy) -> Self {
        self.origins = Arc::new(policy);
        self
    }

    /// How many MCP sessions the layer remembers the owner of (default
    /// [`DEFAULT_MAX_SESSIONS`](crate::session_binding::DEFAULT_MAX_SESSIONS)), and how long an
    /// idle one is remembered (default
    /// [`DEFAULT_SESSION_IDLE_TTL`](crate::session_binding::DEFAULT_SESSION_IDLE_TTL), a day). A
    /// session forgotten is claimed again by its next user.
    pub fn with_session_limits(
        mut self,
        max_sessions: usize,
        idle_ttl: std::time::Duration,
    ) -> Self {
        self.sessions = Arc::new(SessionOwners::new(max_sessions, idle_ttl));
        self
    }

    /// The largest `tools/call` body read for the per-tool scope check (default
    /// [`DEFAULT_MAX_BODY_BYTES`], 4 MiB); larger bodies are refused with 413.
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    pub fn resource(&self) -> &ProtectedResource {
        &self.resource
    }

    pub fn origin_policy(&self) -> &OriginPolicy {
        &self.origins
    }

    /// Runs the checks; the request to pass on, or why not.
    pub async fn authorize(&self, req: Request) -> Result<Request, Rejection> {
        self.origins.check(req.uri(), req.headers())?;
        if req
            .uri()
            .query()
            .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"))
        {
            return Err(Rejection::MalformedRequest(
                "access tokens must be sent in the Authorization header, never in the URI",
            ));
        }
        let token = bearer_token(req.headers())?;
        let identity = self
            .verifier
            .verify(token, &self.resource)
            .await
            .map_err(|e| match e {
                VerifyError::Invalid(reason) => Rejection::InvalidToken(reason),
                VerifyError::Unavailable(reason) => {
                    tracing::warn!(resource = %self.resource.uri(), reason = %reason, "token verification unavailable");
                    Rejection::Unavailable
                }
            })?;
        if !identity.is_from_trusted_issuer(&self.resource) {
            return Err(Rejection::InvalidToken(
                "the token was issued by another issuer",
            ));
        }
        if !identity.is_for(&self.resource) {
            return Err(Rejection::InvalidToken(
                "the token was not issued for this resource",
            ));
        }
        let missing = identity.missing_scopes(self.resource.required_scopes());
        if !missing.is_empty() {
            return Err(step_up(
                &self.resource,
                &identity,
                &missing,
                "this resource",
            ));
        }
        let mut req = if self.resource.has_tool_scopes() && req.method() == Method::POST {
            self.check_tool_scopes(req, &identity).await?
        } else {
            req
        };
        tracing::debug!(
            resource = %self.resource.uri(),
            subject = %identity.subject,
            client_id = identity.client_id.as_deref().unwrap_or(""),
            "bearer token accepted"
        );
        req.extensions_mut().insert(identity);
        req.extensions_mut()
            .insert(ResourceContext(self.resource.clone()));
        Ok(req)
    }

    /// Reads a POST body, checks the scopes of every tool it calls, and puts the body back.
    async fn check_tool_scopes(
        &self,
        req: Request,
        identity: &Identity,
    ) -> Result<Request, Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, self.max_body_bytes)
            .await
            .map_err(|_| Rejection::BodyTooLarge)?;
        // Not JSON: not ours to judge; the server behind answers the parse error.
        if let Ok(message) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            for tool in called_tools(&message) {
                if let Some(needed) = self.resource.tool_scopes(tool) {
                    let missing = identity.missing_scopes(needed);
                    if !missing.is_empty() {
                        return Err(step_up(
                            &self.resource,
                            identity,
                            &missing,
                            &format!("tool '{tool}'"),
                        ));
                    }
                }
            }
        }
        Ok(Request::from_parts(parts, Body::from(bytes)))
    }
}

/// 404 for a session the caller does not own, as the MCP transport answers an unknown session.
fn session_not_found() -> Response {
    let body = serde_json::json!({
        "error": "session_not_found",
        "error_description": "no such session for this user; start a new one with initialize",
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = axum::http::StatusCode::NOT_FOUND;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// `resp` with `Connection: close` when the request's body may still be unread.
fn closing_if(unread_body: bool, mut resp: Response) -> Response {
    if unread_body {
        resp.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// The token of the one `Authorization: Bearer` header (RFC 6750 §2.1: `b64token`).
fn bearer_token(headers: &HeaderMap) -> Result<&str, Rejection> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (all.next(), all.next()) {
        (None, _) => return Err(Rejection::MissingToken),
        (Some(v), None) => v,
        (Some(_), Some(_)) => {
            return Err(Rejection::MalformedRequest(
                "more than one Authorization header",
            ));
        }
    };
    let value = value
        .to_str()
        .map_err(|_| Rejection::MalformedRequest("the Authorization header is not ASCII"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Credentials of another scheme are no bearer credentials: the plain challenge.
        return Err(Rejection::MissingToken);
    }
    let token = rest.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(Rejection::MalformedRequest(
            "the Authorization header is not 'Bearer' followed by one token",
        ));
    }
    Ok(token)
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`BearerAuthLayer`] wraps around `S`.
#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    layer: BearerAuthLayer,
}

impl<S, B> Service<Request> for BearerAuth<S>
where
    S: Service<Request, Response = axum::http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The clone that was polled ready serves this call; a fresh clone stays for the next.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let layer = self.layer.clone();
        // A request refused before its body is read leaves that body unread on the connection,
        // which then cannot carry another request: say so (`Connection: close`, RFC 9112 §9.6),
        // or a client may send its next request on it and see the connection dropped unanswered.
        let unread_body = !req.body().is_end_stream();
        Box::pin(async move {
            match layer.authorize(req).await {
                Ok(req) => {
                    let identity = req.extensions().get::<Identity>().cloned();
                    let presented = req
                        .headers()
                        .get(SESSION_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string);
                    if let (Some(session), Some(identity)) = (&presented, &identity)
                        && !layer.sessions.admit(session, identity)
                    {
                        tracing::warn!(
                            resource = %layer.resource.uri(),
                            subject = %identity.subject,
                            "a session was presented by another user or client"
                        );
                        return Ok(closing_if(unread_body, session_not_found()));
                    }
                    let resp = inner.call(req).await?;
                    if let (Some(created), Some(identity)) = (
                        resp.headers()
                            .get(SESSION_HEADER)
                            .and_then(|v| v.to_str().ok()),
                        &identity,
                    ) && presented.as_deref() != Some(created)
                    {
                        layer.sessions.record(created, identity);
                    }
                    Ok(resp.map(Body::new))
                }
                Err(rejection) => {
                    tracing::info!(
                        resource = %layer.resource.uri(),
                        status = rejection.status().as_u16(),
                        rejection = ?rejection,
                        "request refused"
                    );
                    Ok(closing_if(
                        unread_body,
                        rejection.into_response(&layer.resource),
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use axum::Router;
    use axum::http::{HeaderValue, StatusCode};
    use axum::routing::{get, post};
    use serde_json::{Map, Value, json};
    use tower::ServiceExt;

    use super::*;

    /// Accepts `good-<scopes>` tokens (`bob-good-<scopes>` for the subject bob) (scopes separated by `~`, `_` standing for `:`) for the test resource, `foreign`
    /// for another audience, `other-issuer`, and `down` as an unreachable issuer.
    struct FakeVerifier;

    #[async_trait]
    impl TokenVerifier for FakeVerifier {
        async fn verify(
            &self,
            token: &str,
            _: &ProtectedResource,
        ) -> Result<Identity, VerifyError> {
            let sub = if token.starts_with("bob-") {
                "bob"
            } else {
                "alice"
            };
            let token = token.strip_prefix("bob-").unwrap_or(token);
            let claims = |aud: &str, iss: &str, scope: &str| -> Map<String, Value> {
                json!({"sub": sub, "client_id": "c", "aud": aud, "iss": iss, "scope": scope})
                    .as_object()
                    .cloned()
                    .unwrap()
            };
            let c = match token {
                "foreign" => claims("http://127.0.0.1:9000/other", ISSUER, "mcp:tools"),
                "other-issuer" => claims(RESOURCE, "http://127.0.0.1:9001", "mcp:tools"),
                "down" => return Err(VerifyError::Unavailable("test".into())),
                t => match t.strip_prefix("good-") {
                    Some(scopes) => claims(
                        RESOURCE,
                        ISSUER,
                        &scopes.replace('~', " ").replace('_', ":"),
                    ),
                    None => return Err(VerifyError::Invalid("not a test token")),
                },
            };
            Ok(Identity::from_claims(c, ISSUER).unwrap())
        }
    }

    const ISSUER: &str = "http://127.0.0.1:9000";
    const RESOURCE: &str = "http://127.0.0.1:9000/mcp";

    fn app() -> Router {
        let resource = ProtectedResource::new(RESOURCE, ISSUER)
            .unwrap()
            .with_scopes(["mcp:tools", "mcp:admin"])
            .unwrap()
            .with_tool_scopes("admin_stats", ["mcp:admin"])
            .unwrap();
        Router::new()
            .route(
                "/mcp",
                post(|req: Request| async move {
                    let id = req.extensions().get::<Identity>().unwrap().subject.clone();
                    let body = axum::body::to_bytes(req.into_body(), 8 << 20)
                        .await
                        .unwrap();
                    format!("{id}:{}", body.len())
                }),
            )
            .route(
                "/mcp/admin",
                get(|req: Request| async move {
                    crate::scope::require_scopes(req.extensions(), &["mcp:admin"])
                        .map(|id| id.subject.clone())
                }),
            )
            .layer(BearerAuthLayer::new(resource, FakeVerifier))
    }

    async fn send(
        req: axum::http::request::Builder,
        body: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let req = req
            .header("host", "127.0.0.1:9000")
            .body(Body::from(body.to_string()))
            .unwrap();
        let resp = app().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    fn post_mcp(token: Option<&str>) -> axum::http::request::Builder {
        let b = Request::post("/mcp");
        match token {
            Some(t) => b.header("authorization", format!("Bearer {t}")),
            None => b,
        }
    }

    fn challenge(h: &HeaderMap) -> &str {
        h.get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[tokio::test]
    async fn no_token_is_challenged_without_error() {
        let (status, h, body) = send(post_mcp(None), "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge(&h),
            "Bearer resource_metadata=\"http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp\", scope=\"mcp:tools\""
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "unauthorized");
        // Another scheme carries no bearer credentials: the same plain challenge.
        let (status, h, _) = send(
            Request::post("/mcp").header("authorization", "Basic YTpi"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!challenge(&h).contains("error="));
    }

    #[tokio::test]
    async fn a_refusal_leaving_a_body_unread_closes_the_connection() {
        // An MCP client's first request is a POST refused with 401 before its body is read; the
        // connection cannot be reused, and the client must be told so.
        let (status, h, _) = send(post_mcp(None), "{\"jsonrpc\":\"2.0\"}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(h.get("connection").unwrap(), "close");
        let (status, h, _) = send(post_mcp(Some("garbage")), "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(h.get("connection").unwrap(), "close");
        // Without a body the connection stays usable.
        let (status, h, _) = send(Request::get("/mcp"), "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(h.get("connection").is_none());
    }

    #[tokio::test]
    async fn refused_tokens_are_invalid_token() {
        for token in ["garbage", "foreign", "other-issuer"] {
            let (status, h, body) = send(post_mcp(Some(token)), "{}").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
            assert!(challenge(&h).contains("error=\"invalid_token\""), "{token}");
            assert!(challenge(&h).contains("resource_metadata=\""), "{token}");
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["error"],
                "invalid_token"
            );
        }
        let (status, h, _) = send(post_mcp(Some("down")), "{}").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(h.get("www-authenticate").is_none());
    }

    #[tokio::test]
    async fn malformed_authorization_is_400() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer ===",
        ] {
            let (status, h, body) =
                send(Request::post("/mcp").header("authorization", value), "").await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{value:?}");
            assert!(challenge(&h).contains("error=\"invalid_request\""));
            assert_eq!(
                serde_json::from_str::<Value>(&body).unwrap()["error"],
                "invalid_request"
            );
        }
        let mut req = Request::post("/mcp")
            .header("host", "127.0.0.1:9000")
            .body(Body::empty())
            .unwrap();
        req.headers_mut().append(
            "authorization",
            HeaderValue::from_static("Bearer good-mcp_tools"),
        );
        req.headers_mut().append(
            "authorization",
            HeaderValue::from_static("Bearer good-mcp_tools"),
        );
        assert_eq!(
            app().oneshot(req).await.unwrap().status(),
            StatusCode::BAD_REQUEST
        );
        let (status, _, _) = send(Request::post("/mcp?access_token=good-mcp_tools"), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn valid_tokens_reach_the_handler_with_their_identity_and_body() {
        let (status, _, body) = send(post_mcp(Some("good-mcp_tools")), "{\"x\":1}").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice:7"));
        let call = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo"}}"#;
        let (status, _, body) = send(post_mcp(Some("good-mcp_tools")), call).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, format!("alice:{}", call.len()));
    }

    #[tokio::test]
    async fn missing_scopes_are_403_insufficient_scope() {
        let (status, h, body) = send(post_mcp(Some("good-other")), "{}").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(challenge(&h).contains("error=\"insufficient_scope\""));
        assert!(challenge(&h).contains("scope=\"mcp:tools\""));
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "insufficient_scope"
        );

        let call =
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"admin_stats"}}"#;
        let (status, h, _) = send(post_mcp(Some("good-mcp_tools")), call).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            challenge(&h).contains("scope=\"mcp:tools mcp:admin\""),
            "{}",
            challenge(&h)
        );
        assert!(
            challenge(&h)
                .contains("error_description=\"tool 'admin_stats' requires scope 'mcp:admin'\"")
        );
        let (status, _, _) = send(post_mcp(Some("good-mcp_tools~mcp_admin")), call).await;
        assert_eq!(status, StatusCode::OK);

        // A handler demanding a scope itself.
        let admin =
            |t: &str| Request::get("/mcp/admin").header("authorization", format!("Bearer {t}"));
        let (status, h, _) = send(admin("good-mcp_tools"), "").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(challenge(&h).contains("error=\"insufficient_scope\""));
        let (status, _, body) = send(admin("good-mcp_tools~mcp_admin"), "").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    }

    #[tokio::test]
    async fn foreign_origins_and_hosts_are_403_before_anything_else() {
        let (status, h, _) = send(
            post_mcp(Some("good-mcp_tools")).header("origin", "http://evil.example.com"),
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(h.get("www-authenticate").is_none());
        let (status, _, _) = send(
            post_mcp(None).header("origin", "http://evil.example.com"),
            "{}",
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let req = Request::post("/mcp")
            .header("host", "rebound.example.com")
            .header("authorization", "Bearer good-mcp_tools")
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            app().oneshot(req).await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }

    async fn send_to(
        app: &Router,
        req: axum::http::request::Builder,
        body: String,
    ) -> (StatusCode, HeaderMap, String) {
        let req = req
            .header("host", "127.0.0.1:9000")
            .body(Body::from(body))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    /// A `tools/call` padded to `len` bytes.
    fn padded_call(len: usize) -> String {
        let head =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","pad":""#;
        let tail = r#""}}"#;
        format!("{head}{}{tail}", "x".repeat(len - head.len() - tail.len()))
    }

    #[tokio::test]
    async fn tool_calls_up_to_four_mebibytes_are_read_for_the_scope_check() {
        let app = app();
        let (status, _, body) =
            send_to(&app, post_mcp(Some("good-mcp_tools")), padded_call(2 << 20)).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, format!("alice:{}", 2 << 20))
        );
        let (status, _, body) = send_to(
            &app,
            post_mcp(Some("good-mcp_tools")),
            padded_call(DEFAULT_MAX_BODY_BYTES),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, _, body) = send_to(
            &app,
            post_mcp(Some("good-mcp_tools")),
            padded_call(DEFAULT_MAX_BODY_BYTES + 1),
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "invalid_request"
        );
    }

    #[tokio::test]
    async fn bodies_are_left_alone_where_no_tool_has_scopes() {
        // Without per-tool scopes the layer never reads the body, so its limit does not apply.
        let resource = ProtectedResource::new(RESOURCE, ISSUER)
            .unwrap()
            .with_scopes(["mcp:tools"])
            .unwrap();
        let app = Router::new()
            .route(
                "/mcp",
                post(|body: Bytes| async move { body.len().to_string() }),
            )
            .layer(BearerAuthLayer::new(resource, FakeVerifier).with_max_body_bytes(16));
        let (status, _, body) =
            send_to(&app, post_mcp(Some("good-mcp_tools")), padded_call(200)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "200"));
    }

    #[tokio::test]
    async fn a_session_answers_only_the_user_who_started_it() {
        // The handler starts session "s1" for a request without one, as an MCP server does.
        let session_app = |layer: BearerAuthLayer| {
            Router::new()
                .route(
                    "/mcp",
                    post(|req: Request| async move {
                        let subject = req.extensions().get::<Identity>().unwrap().subject.clone();
                        let mut resp = Response::new(Body::from(subject));
                        if !req.headers().contains_key(SESSION_HEADER) {
                            resp.headers_mut()
                                .insert(SESSION_HEADER, HeaderValue::from_static("s1"));
                        }
                        resp
                    }),
                )
                .layer(layer)
        };
        let layer = || {
            let resource = ProtectedResource::new(RESOURCE, ISSUER)
                .unwrap()
                .with_scopes(["mcp:tools"])
                .unwrap();
            BearerAuthLayer::new(resource, FakeVerifier)
        };
        let app = session_app(layer());
        let (status, h, _) = send_to(&app, post_mcp(Some("good-mcp_tools")), "{}".into()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(h.get(SESSION_HEADER).unwrap(), "s1");

        let in_session = |t: &str| post_mcp(Some(t)).header(SESSION_HEADER, "s1");
        let (status, h, body) = send_to(&app, in_session("bob-good-mcp_tools"), "{}".into()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(h.get(header::CONTENT_TYPE).unwrap(), "application/json");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"],
            "session_not_found"
        );
        let (status, _, body) = send_to(&app, in_session("good-mcp_tools"), "{}".into()).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));

        // Sessions remembered for no time at all: the next user claims a session.
        let forgetful = session_app(layer().with_session_limits(10, std::time::Duration::ZERO));
        let (status, _, _) =
            send_to(&forgetful, post_mcp(Some("good-mcp_tools")), "{}".into()).await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, body) =
            send_to(&forgetful, in_session("bob-good-mcp_tools"), "{}".into()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[test]
    fn readiness_is_the_inner_services() {
        /// Never ready.
        #[derive(Clone)]
        struct Busy;
        impl Service<Request> for Busy {
            type Response = Response;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Pending
            }
            fn call(&mut self, _: Request) -> Self::Future {
                std::future::ready(Ok(Response::new(Body::empty())))
            }
        }
        let resource = ProtectedResource::new(RESOURCE, ISSUER).unwrap();
        let mut service = BearerAuthLayer::new(resource, FakeVerifier).layer(Busy);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(service.poll_ready(&mut cx).is_pending());
    }

    #[test]
    fn debug_names_the_resource_and_nothing_secret() {
        let resource = ProtectedResource::new(RESOURCE, ISSUER).unwrap();
        let shown = format!("{:?}", BearerAuthLayer::new(resource, FakeVerifier));
        assert!(shown.starts_with("BearerAuthLayer"), "{shown}");
        assert!(shown.contains(RESOURCE), "{shown}");
    }

    #[test]
    fn b64tokens() {
        assert!(is_b64token("abc.DEF-_~+/=="));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a=b"));
    }
}
