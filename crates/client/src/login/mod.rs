//! Login modes (the original project's CallbackFunctions): how the user gets through the
//! authorization server's pages while the callback server waits.
//!
//! - [`browser`]: open the system browser without a shell (or print the URL) and wait with a
//!   spinner.
//! - [`headless`]: fill in the sign-in and consent forms with a user name and password.
//! - [`html`]: the form reader headless login uses.

pub mod browser;
pub mod headless;
pub mod html;

use crate::secret::Secret;

/// How a login that is needed gets done.
#[derive(Debug, Clone)]
pub enum LoginMode {
    /// The user signs in in a browser; `open` = start the system browser (else only print the URL).
    Browser { open: bool },
    /// Sign in with these credentials, no browser.
    Headless { username: String, password: Secret },
    /// Never log in here: fail with a message that names `mcp-oauth login`.
    Never,
}
