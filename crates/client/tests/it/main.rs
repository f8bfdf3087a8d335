//! Integration tests of the client against a server that is not ours (an authorization server and
//! an MCP server written here with axum, laid out differently from mcp-oauth), the store, and the
//! callback server. Everything on 127.0.0.1, bounded in time.
#![allow(clippy::unwrap_used, clippy::expect_used)]
