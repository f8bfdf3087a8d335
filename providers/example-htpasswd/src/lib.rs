//! # mcp-oauth-example-htpasswd
//!
//! An example **user-authenticator plugin** for `mcp-oauth`, written the way you would write your
//! own: it depends only on the published provider API (`mcp-oauth-provider`), and lets the users of
//! an existing Apache `htpasswd` file sign in to the authorization server.
//!
//! ## What it does
//!
//! - Reads `user:hash` lines. Accepted hashes: bcrypt (`$2y$`, `$2b$`, `$2a$`, as `htpasswd -B`
//!   writes them) and argon2id PHC strings (`$argon2id$…`, as `mcp-oauth users hash-password`
//!   prints them). Weak schemes (MD5 `$apr1$`, SHA-1 `{SHA}`, crypt) are refused with an error
//!   naming the line, never the hash.
//! - Optionally reads an Apache group file (`group: user1 user2`); a user's groups land in
//!   [`AuthenticatedUser::groups`](mcp_oauth_provider::AuthenticatedUser), where a policy plugin
//!   can turn them into scopes (see `mcp-oauth-example-policy`).
//! - Re-reads both files when their size or modification time changes, checked at most once a
//!   second when someone signs in or refreshes: add a user with `htpasswd -B users.htpasswd bob`
//!   and they can sign in a second later; delete them and their grants end at the next refresh
//!   ([`check_subject`](mcp_oauth_provider::UserAuthenticator::check_subject) answers `Gone`).
//! - Checks passwords on the server's bounded hashing pool
//!   ([`FactoryContext::hashing`](mcp_oauth_provider::FactoryContext)), never on the async
//!   workers; an unknown user costs the same verification as a known one (against an entry of the
//!   file's most common scheme), so response times do not reveal who exists.
//!
//! ## Configuration
//!
//! ```toml
//! [users]
//! kind = "htpasswd"
//!
//! [users.htpasswd]
//! file = "/etc/mcp-oauth/users.htpasswd"      # required
//! groups_file = "/etc/mcp-oauth/users.groups"  # optional: `group: user1 user2` lines
//! ```
//!
//! A key the plugin does not know, a missing file or a bad line stops `serve` and `config check`
//! with a message naming `[users.htpasswd]` and the key (and the line). After start, a file that
//! cannot be read or has a bad line makes sign-ins answer "temporarily unavailable" (503) until it
//! is fixed; the server keeps running.
//!
//! ## How it is built (the parts of a plugin)
//!
//! 1. Settings ([`HtpasswdSettings`]) read with
//!    [`FactoryContext::parse_settings`](mcp_oauth_provider::FactoryContext::parse_settings) into a
//!    struct with `#[serde(deny_unknown_fields)]`: that alone turns a typo or a missing key into an
//!    error naming the section and the key. Each value is then checked on its own so that a bad
//!    value (`file = 3`) names its key too.
//! 2. The authenticator ([`HtpasswdAuthenticator`]), implementing
//!    [`UserAuthenticator`] and its contract (same answer
//!    for an unknown user and a wrong password, `Rejected` for an empty password, `Unavailable`
//!    when the directory cannot be read).
//! 3. A factory ([`HtpasswdFactory`]) implementing
//!    [`UserAuthenticatorFactory`]: its `kind` is
//!    the name used in `[users] kind`, its `build` reads the settings.
//! 4. The tests run the provider API's authenticator conformance kit
//!    (`mcp_oauth_provider::authenticator_conformance_tests!`, feature `testkit`) against it.
//!
//! ## Registering it
//!
//! Plugins are compiled in: your own binary registers the factory and hands over to the same
//! command line as the stock `mcp-oauth` (see `mcp-oauth-example-server`):
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     mcp_oauth::cli::main_with(
//!         mcp_oauth::registry::Registry::builtin()
//!             .with_users(mcp_oauth_example_htpasswd::HtpasswdFactory),
//!     )
//! }
//! ```

mod authenticator;
pub mod file;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    FactoryContext, ProviderResult, Storage, UserAuthenticator, UserAuthenticatorFactory,
};
use serde::Deserialize;

pub use authenticator::{DEFAULT_RELOAD_INTERVAL, HtpasswdAuthenticator, LoadError};

/// `[users.htpasswd]`.
#[derive(Debug, Clone)]
pub struct HtpasswdSettings {
    /// The htpasswd file (`user:hash` lines).
    pub file: PathBuf,
    /// An Apache group file (`group: user1 user2` lines), optional.
    pub groups_file: Option<PathBuf>,
}

/// The table as written: serde names unknown and missing keys; each value is then read on its
/// own, so a bad one (`file = 3`) is named too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    file: serde_json::Value,
    #[serde(default)]
    groups_file: Option<serde_json::Value>,
}

impl HtpasswdSettings {
    /// Reads `[users.htpasswd]` from the table the server hands over; every error names the
    /// section and the key.
    pub fn from_context(ctx: &FactoryContext) -> ProviderResult<Self> {
        let raw: Raw = ctx.parse_settings()?;
        let path = |key: &str, v: serde_json::Value| -> ProviderResult<PathBuf> {
            match v {
                serde_json::Value::String(s) if !s.trim().is_empty() => Ok(PathBuf::from(s)),
                other => Err(ctx.invalid(format_args!(
                    "{key}: expected the path of a file as a string, found {other}"
                ))),
            }
        };
        Ok(Self {
            file: path("file", raw.file)?,
            groups_file: raw
                .groups_file
                .map(|v| path("groups_file", v))
                .transpose()?,
        })
    }
}

/// Registers `[users] kind = "htpasswd"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtpasswdFactory;

#[async_trait]
impl UserAuthenticatorFactory for HtpasswdFactory {
    fn kind(&self) -> &'static str {
        "htpasswd"
    }

    async fn build(
        &self,
        ctx: &FactoryContext,
        _storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
        let settings = HtpasswdSettings::from_context(ctx)?;
        // A local file is not a directory that may be down at start: reading it now turns a wrong
        // path or a bad line into a configuration error instead of a first failed sign-in.
        let auth = HtpasswdAuthenticator::open(&settings, ctx.hashing.clone())
            .await
            .map_err(|e| {
                let key = match &e {
                    LoadError::Read(p, _) | LoadError::Parse(p, _)
                        if Some(p) == settings.groups_file.as_ref() =>
                    {
                        "groups_file"
                    }
                    _ => "file",
                };
                ctx.invalid(format_args!("{key}: {e}"))
            })?;
        Ok(Arc::new(auth))
    }
}
