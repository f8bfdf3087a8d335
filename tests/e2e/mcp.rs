//! A minimal MCP streamable-HTTP client for the tests: JSON-RPC over POST with
//! `Accept: application/json, text/event-stream`, the `Mcp-Session-Id` header, and SSE `data:`
//! lines parsed for the response.
#![allow(dead_code)]

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const PROTOCOL_VERSION: &str = "2025-06-18";

pub struct McpClient {
    pub url: String,
    pub token: Option<String>,
    pub session: Option<String>,
    next_id: u64,
}

impl McpClient {
    pub fn new(url: &str, token: Option<&str>) -> Self {
        Self {
            url: url.to_string(),
            token: token.map(str::to_string),
            session: None,
            next_id: 1,
        }
    }

    /// One POST of a JSON-RPC message, with the bearer token and session.
    pub async fn post(&self, message: &Value) -> Response {
        let mut req = crate::support::http()
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .json(message);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        req.send().await.unwrap()
    }

    /// A request; `Ok(result)` or `Err(response)` when the HTTP status is not 200.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, Response> {
        let id = self.next_id;
        self.next_id += 1;
        let resp = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        if resp.status() != StatusCode::OK {
            return Err(resp);
        }
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_string());
        }
        let message = response_message(resp, id).await;
        assert!(message.get("error").is_none(), "JSON-RPC error: {message}");
        Ok(message["result"].clone())
    }

    /// `initialize` then `notifications/initialized`.
    pub async fn initialize(&mut self) -> Result<Value, Response> {
        let result = self
            .request(
                "initialize",
                json!({"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                       "clientInfo": {"name": "e2e", "version": "1"}}),
            )
            .await?;
        let resp = self
            .post(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        Ok(result)
    }

    /// `tools/call`; the result object (structured content when the tool gives one).
    pub async fn call(&mut self, tool: &str, arguments: Value) -> Result<Value, Response> {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }
}

/// The JSON-RPC response with `id` from a JSON or an SSE body.
pub async fn response_message(resp: Response, id: u64) -> Value {
    let is_sse = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/event-stream"));
    if !is_sse {
        return resp.json().await.unwrap();
    }
    // The stream stays open after the response on some servers: read chunk by chunk.
    let mut resp = resp;
    let mut buffer = String::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        for line in buffer.lines() {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && v["id"] == json!(id)
            {
                return v;
            }
        }
    }
    panic!("no response with id {id} in the event stream: {buffer}");
}

/// The `WWW-Authenticate` header of a response.
pub fn challenge(resp: &Response) -> String {
    resp.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
