//! The resource-server toolkit: the [`mcp_oauth_resource`] crate, re-exported whole (so
//! `mcp_oauth::resource::BearerAuthLayer` and `mcp_oauth_resource::BearerAuthLayer` are one type),
//! plus [`CoHostedVerifier`], the verifier that reads this server's own state and so stays here.
//!
//! An MCP server that does not run the authorization server in-process depends on
//! `mcp-oauth-resource` alone.

mod cohosted;

pub use cohosted::CoHostedVerifier;
pub use mcp_oauth_resource::*;
