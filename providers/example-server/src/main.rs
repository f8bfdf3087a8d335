//! # mcp-oauth-example
//!
//! An example **plugin binary**: the stock `mcp-oauth` command line (`serve`, `config check`,
//! `migrate`, `clients`, `grants`, `keys`, and the client commands) with two example plugins
//! compiled in. This is how you ship your own plugins: there is no dynamic loading; a small
//! `main` registers the factories and hands over to
//! [`mcp_oauth::cli::main_with`].
//!
//! - `[users] kind = "htpasswd"`: users from an Apache htpasswd file
//!   (crate `mcp-oauth-example-htpasswd`, settings in `[users.htpasswd]`).
//! - `[policy] kind = "allowlist"`: dynamic registrations only for allow-listed redirect hosts,
//!   scopes by group (crate `mcp-oauth-example-policy`, settings in `[policy.allowlist]`).
//!
//! Every built-in backend stays registered ([`Registry::builtin`]); the configuration picks.
//! `config/example.toml` in this crate selects both plugins and says, at its top, how to try
//! it by hand. A kind registered twice, an unknown kind, an unknown key or a bad value stops
//! the program with exit code 1 and a message naming the section and the key.
//!
//! The integration tests (`tests/it`) run this binary with that configuration through the full
//! authorization-code flow, using the `mcp-oauth-client` library as an MCP client would.

use std::process::ExitCode;

use mcp_oauth::registry::Registry;
use mcp_oauth_example_htpasswd::HtpasswdFactory;
use mcp_oauth_example_policy::AllowlistFactory;

fn main() -> ExitCode {
    mcp_oauth::cli::main_with(
        Registry::builtin()
            .with_users(HtpasswdFactory)
            .with_policy(AllowlistFactory),
    )
}
