//! The pending upstream sign-in: what the core remembers between sending the browser upstream and
//! the upstream's answer at our callback, kept in a cookie sealed with the key-encryption key.
//!
//! The cookie holds our login transaction's id, the upstream's name and the `state`, `nonce` and PKCE
//! verifier of this sign-in. Its name carries a digest of `state`, so the callback finds the one
//! cookie its `state` belongs to (several tabs may sign in at once), and a `state` that was tampered
//! with finds none. Sealing (XChaCha20-Poly1305, the purpose and cookie name as associated data)
//! keeps `nonce` and the verifier secret from the browser and makes a cookie made up elsewhere
//! unreadable. The cookie is bound to the browser binding cookie through the transaction (the
//! callback loads the transaction only for the browser that started it) and lives no longer than
//! the transaction. Several servers on one store share the key, so any of them can read it.
//!
//! Attributes as the browser binding: `HttpOnly`, `SameSite=Lax` (the upstream's answer is a
//! top-level GET navigation, which carries Lax cookies), and on https `Secure` with `__Host-`.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::oauth::secrets::hash_secret;
use crate::state::{AppState, now};

const PREFIX_HTTPS: &str = "__Host-mcp_oauth_upstream_";
const PREFIX_HTTP: &str = "mcp_oauth_upstream_";
/// Associated data of the seal: a cookie sealed for another purpose never opens as this one.
const PURPOSE: &str = "mcp-oauth upstream sign-in v1";
/// Longest cookie value read (a sealed pending sign-in is about 400 characters).
const MAX_VALUE_LEN: usize = 2048;

/// One upstream sign-in in flight.
#[derive(Clone, Serialize, Deserialize)]
pub struct Pending {
    /// Our login transaction's id (the secret, not its hash: the callback loads it like `/login`).
    pub tx: String,
    /// The upstream it went to.
    pub upstream: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// When this sign-in stops being usable (the transaction's own expiry).
    pub expires_at: i64,
}

fn prefix(state: &AppState) -> &'static str {
    if state.secure_cookies {
        PREFIX_HTTPS
    } else {
        PREFIX_HTTP
    }
}

/// The cookie name for the sign-in whose upstream `state` is `upstream_state`.
pub fn cookie_name(state: &AppState, upstream_state: &str) -> String {
    format!(
        "{}{}",
        prefix(state),
        &hash_secret(upstream_state).as_str()[..16]
    )
}

fn aad(name: &str) -> String {
    format!("{PURPOSE}:{name}")
}

/// The `Set-Cookie` header that stores `pending` until `max_age` seconds from now.
pub fn set_cookie(
    state: &AppState,
    pending: &Pending,
    max_age: i64,
) -> anyhow::Result<HeaderValue> {
    let name = cookie_name(state, &pending.state);
    let plain = serde_json::to_vec(pending)?;
    let sealed = state.kek.seal(&aad(&name), &plain)?;
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        URL_SAFE_NO_PAD.encode(sealed),
        max_age.max(1),
    );
    Ok(HeaderValue::from_str(&cookie)?)
}

/// The `Set-Cookie` header that removes the cookie of `upstream_state`.
pub fn clear_cookie(state: &AppState, upstream_state: &str) -> Option<HeaderValue> {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        cookie_name(state, upstream_state)
    ))
    .ok()
}

/// The pending sign-in the browser holds for `upstream_state`, if any, readable and unexpired.
pub fn presented(state: &AppState, headers: &HeaderMap, upstream_state: &str) -> Option<Pending> {
    let name = cookie_name(state, upstream_state);
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)?;
    if value.len() > MAX_VALUE_LEN {
        return None;
    }
    let sealed = URL_SAFE_NO_PAD.decode(value).ok()?;
    let plain = state.kek.open(&aad(&name), &sealed).ok()?;
    serde_json::from_slice::<Pending>(&plain)
        .ok()
        .filter(|p| p.expires_at > now())
}
