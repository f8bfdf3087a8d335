//! The example binary (`mcp-oauth-example`, built with `cli::main_with`) as a real process, with
//! the shipped `config/example.toml` and the two example plugins selected in it:
//!
//! - [`flow`]: the full authorization-code flow through the MCP client library (discovery,
//!   dynamic registration, PKCE, headless sign-in as an htpasswd user, token, the demo MCP
//!   server's `whoami`); scopes by group; a registration off the redirect-host allow-list.
//! - [`config_errors`]: a misconfigured plugin stops `config check` and `serve` with exit code 1
//!   and a message naming the section and the key, never a panic.
//!
//! Everything runs on 127.0.0.1, in temp directories, bounded in time. No password or hash is
//! committed: the htpasswd file is made by each test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod config_errors;
mod flow;
mod support;
