//! A stdio ↔ streamable-HTTP bridge with OAuth (MCP 2025-11-25 *Transports*: stdio is
//! newline-delimited JSON-RPC; streamable HTTP is POST with `Accept: application/json,
//! text/event-stream`, `Mcp-Session-Id`, `MCP-Protocol-Version`, and an optional GET stream).
//!
//! An MCP host that only speaks stdio runs the proxy as a local server and gets this crate's
//! login, store and refresh. Messages are forwarded byte for byte (a body spread over several lines
//! is re-serialised onto one, since stdio is line-delimited). A request the server answers with an
//! HTTP error, or that cannot be authorised, gets a JSON-RPC error response so the host never
//! waits forever.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::authorizer::Authorizer;
use crate::error::{Error, Result};

#[derive(Clone)]
struct Bridge {
    auth: Authorizer,
    http: reqwest::Client,
    session: Arc<Mutex<Option<String>>>,
    protocol: Arc<Mutex<Option<String>>>,
    out: mpsc::UnboundedSender<String>,
}

/// Runs until `input` ends; then ends the HTTP session (DELETE) and returns.
pub async fn run<R, W>(auth: Authorizer, input: R, mut output: W) -> Result<()>
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            if output.write_all(line.as_bytes()).await.is_err()
                || output.write_all(b"\n").await.is_err()
                || output.flush().await.is_err()
            {
                break;
            }
        }
    });
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| Error::Usage(format!("cannot build an HTTP client: {e}")))?;
    let bridge = Bridge {
        auth,
        http,
        session: Arc::default(),
        protocol: Arc::default(),
        out: tx,
    };
    let mut tasks = JoinSet::new();
    let mut listener: Option<tokio::task::JoinHandle<()>> = None;
    let mut lines = input.lines();
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| Error::Usage(format!("reading stdin: {e}")))?
    {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Option<Value> = serde_json::from_str(&line).ok();
        let is_initialize = parsed
            .as_ref()
            .and_then(|v| v.get("method"))
            .and_then(Value::as_str)
            == Some("initialize");
        let is_notification = parsed.as_ref().is_some_and(|v| v.get("id").is_none());
        if is_notification {
            // Notifications keep their order relative to what follows (notifications/initialized
            // must reach the server before the requests after it); the server answers them at
            // once with 202.
            bridge.forward(line, parsed).await;
        } else if is_initialize {
            // The session id comes back with the initialize answer: nothing else may go first.
            bridge.forward(line, parsed).await;
            let b = bridge.clone();
            if let Some(old) = listener.replace(tokio::spawn(async move { b.listen().await })) {
                old.abort();
            }
        } else {
            let b = bridge.clone();
            tasks.spawn(async move { b.forward(line, parsed).await });
        }
        // Reap finished requests as we go.
        while tasks.try_join_next().is_some() {}
    }
    // stdin closed: let in-flight requests finish, then end the session and its stream.
    while tasks.join_next().await.is_some() {}
    bridge.end_session().await;
    if let Some(l) = listener {
        l.abort();
    }
    drop(bridge);
    let _ = writer.await;
    Ok(())
}

impl Bridge {
    /// POSTs one message; forwards whatever comes back.
    async fn forward(&self, raw: String, parsed: Option<Value>) {
        let id = parsed.as_ref().and_then(|v| v.get("id")).cloned();
        match self.post(&raw).await {
            Ok(resp) => self.relay(resp, id.as_ref()).await,
            Err(e) => self.fail(id.as_ref(), &e.to_string()),
        }
    }

    async fn post(&self, raw: &str) -> Result<reqwest::Response> {
        let mut token = self.auth.access_token().await?;
        let mut retried_401 = false;
        loop {
            let mut req = self
                .http
                .post(self.auth.server())
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json")
                .bearer_auth(token.expose())
                .body(raw.to_string());
            req = self.with_session_headers(req);
            let resp = req
                .send()
                .await
                .map_err(|e| Error::unreachable(self.auth.server(), e))?;
            let challenge = resp
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            match resp.status() {
                reqwest::StatusCode::UNAUTHORIZED if !retried_401 => {
                    retried_401 = true;
                    token = self
                        .auth
                        .handle_unauthorized(Some(token.expose()), &challenge)
                        .await?;
                }
                reqwest::StatusCode::FORBIDDEN if challenge.contains("insufficient_scope") => {
                    token = self.auth.handle_insufficient_scope(&challenge).await?;
                }
                _ => {
                    if resp.status().is_success() {
                        self.auth.note_success().await;
                    }
                    if let Some(s) = resp
                        .headers()
                        .get("mcp-session-id")
                        .and_then(|v| v.to_str().ok())
                        && let Ok(mut slot) = self.session.lock()
                    {
                        *slot = Some(s.to_string());
                    }
                    return Ok(resp);
                }
            }
        }
    }

    fn with_session_headers(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(s) = self.session.lock().ok().and_then(|s| s.clone()) {
            req = req.header("mcp-session-id", s);
        }
        // MCP *Protocol Version Header*: after initialization, the negotiated version (the
        // initialize request itself carries its version in its params).
        match self.protocol.lock().ok().and_then(|p| p.clone()) {
            Some(version) => req.header("mcp-protocol-version", version),
            None => req,
        }
    }

    /// Forwards a POST answer: nothing for 202, the JSON body, or each SSE `data` event.
    async fn relay(&self, resp: reqwest::Response, id: Option<&Value>) {
        let status = resp.status();
        if status == reqwest::StatusCode::ACCEPTED || status == reqwest::StatusCode::NO_CONTENT {
            return;
        }
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("text/event-stream") {
            self.relay_sse(resp).await;
            return;
        }
        let body = resp.text().await.unwrap_or_default();
        if content_type.starts_with("application/json") && !body.trim().is_empty() {
            self.emit(&body);
            return;
        }
        if !status.is_success() {
            self.fail(
                id,
                &format!(
                    "the MCP server answered HTTP {status}{}",
                    if body.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", body.chars().take(200).collect::<String>())
                    }
                ),
            );
        }
    }

    async fn relay_sse(&self, mut resp: reqwest::Response) {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            buf.push_str(&String::from_utf8_lossy(&chunk));
            buf = buf.replace("\r\n", "\n");
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                let data = data.join("\n");
                if !data.trim().is_empty() {
                    self.emit(&data);
                }
            }
        }
    }

    /// One message to stdout, kept exactly unless it spans lines.
    fn emit(&self, message: &str) {
        let line = if message.contains('\n') {
            serde_json::from_str::<Value>(message)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| message.replace('\n', " "))
        } else {
            message.to_string()
        };
        if let Some(v) = serde_json::from_str::<Value>(&line).ok()
            && let Some(p) = v.pointer("/result/protocolVersion").and_then(Value::as_str)
            && let Ok(mut slot) = self.protocol.lock()
        {
            *slot = Some(p.to_string());
        }
        let _ = self.out.send(line);
    }

    /// A JSON-RPC error for request `id` (notifications get nothing back, per JSON-RPC 2.0).
    fn fail(&self, id: Option<&Value>, message: &str) {
        tracing::warn!(%message, "proxy request failed");
        if let Some(id) = id {
            let _ = self.out.send(
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": message}})
                    .to_string(),
            );
        }
    }

    /// The server-to-client stream (GET); servers that do not offer one answer 405.
    async fn listen(&self) {
        let Ok(token) = self.auth.access_token().await else {
            return;
        };
        let req = self
            .http
            .get(self.auth.server())
            .header("accept", "text/event-stream")
            .bearer_auth(token.expose());
        let Ok(resp) = self.with_session_headers(req).send().await else {
            return;
        };
        let is_sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        if resp.status().is_success() && is_sse {
            self.relay_sse(resp).await;
        }
    }

    async fn end_session(&self) {
        let Some(session) = self.session.lock().ok().and_then(|s| s.clone()) else {
            return;
        };
        let Ok(token) = self.auth.access_token().await else {
            return;
        };
        let req = self
            .http
            .delete(self.auth.server())
            .bearer_auth(token.expose())
            .header("mcp-session-id", session);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), req.send()).await;
    }
}
