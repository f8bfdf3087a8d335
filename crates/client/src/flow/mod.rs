//! The authorization-code flow with PKCE (OAuth 2.1 §4.1, RFC 7636, RFC 8707, RFC 9207).
//!
//! - [`pkce`]: the S256 verifier and challenge.
//! - [`authorize`]: the authorization request URL and the checks on its response (`state` in
//!   constant time, `iss`).
//! - [`token`]: the token endpoint (code exchange, refresh) and RFC 7009 revocation, with the
//!   client authentication the registration names.

pub mod authorize;
pub mod pkce;
pub mod token;
