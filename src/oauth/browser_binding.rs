//! The browser-binding cookie: a random value set when `/authorize` starts a login transaction; the
//! transaction stores its hash, and the login and consent forms are accepted only from a browser that
//! presents it. A page on another site can therefore not complete a transaction it started itself
//! (login CSRF), and a leaked login URL is useless in another browser.
//!
//! Cookie attributes follow the MCP security best practices: `HttpOnly`, `SameSite=Lax`, and on https
//! the `__Host-` prefix with `Secure`.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::oauth::secrets::new_secret;
use crate::state::AppState;

const NAME_HTTPS: &str = "__Host-mcp_oauth_browser";
const NAME_HTTP: &str = "mcp_oauth_browser";

fn cookie_name(state: &AppState) -> &'static str {
    if state.secure_cookies {
        NAME_HTTPS
    } else {
        NAME_HTTP
    }
}

/// The binding value the browser presented, if well-formed.
pub fn presented(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| {
            v.len() == 43
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The browser's binding value (reused so several tabs can log in at once) or a new one, and the
/// `Set-Cookie` header that (re)sets it.
pub fn issue(state: &AppState, headers: &HeaderMap) -> (String, HeaderValue) {
    let value = presented(state, headers).unwrap_or_else(new_secret);
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        cookie_name(state),
        value,
        state.login_ttl,
        secure
    );
    // The value is base64url and the attributes are ASCII, so this cannot fail; fall back to a
    // cookie-less response rather than panic.
    let header = HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"));
    (value, header)
}
