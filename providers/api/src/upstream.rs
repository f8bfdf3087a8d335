//! Interactive sign-in through an upstream identity provider (OpenID Connect, OAuth 2): the second
//! kind of authenticator, next to the password [`UserAuthenticator`](crate::UserAuthenticator).
//!
//! An upstream never sees our login transaction and never decides anything the core owns. The core
//! keeps the transaction, CSRF, the browser binding, consent and everything after; for one sign-in
//! it generates `state`, `nonce` and a PKCE verifier (RFC 7636 §4.1), remembers them bound to the
//! transaction and the browser, and hands them to the upstream twice:
//!
//! 1. [`UpstreamAuthenticator::authorization_url`]: where to send the browser (RFC 6749 §4.1.1).
//! 2. [`UpstreamAuthenticator::finish`]: on our callback `<issuer>/login/callback/<name>`, after the
//!    core checked `state` against what it remembered, and refused an `error` answer (RFC 6749
//!    §4.1.2.1) with its own page. The upstream redeems the code and answers who signed in.
//!
//! What it answers is the same [`AuthenticatedUser`] a password authenticator answers. Upstream
//! tokens stay inside the upstream: the type carries none, so none can reach an MCP client (MCP
//! "token passthrough" is forbidden).
//!
//! An authenticator offers its upstreams through
//! [`UserAuthenticator::upstreams`](crate::UserAuthenticator::upstreams); each has a `name` that is
//! the last segment of its callback URL, which is also how the core refuses an answer arriving for
//! another upstream than the one the sign-in started with (mix-up, RFC 9700 §4.4).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{AuthenticatedUser, FactoryContext, ProviderResult, SubjectStatus};

/// The values the core generated for one upstream sign-in. They are fresh per sign-in, secret
/// (`nonce` and `pkce_verifier` never leave our server except as the upstream protocol sends them)
/// and the same in both calls of one sign-in.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamLogin {
    /// The `state` to send upstream (RFC 6749 §4.1.1); the core checks it on the callback.
    pub state: String,
    /// The OpenID Connect `nonce` (OIDC Core §3.1.2.1); the upstream checks the ID token carries it.
    pub nonce: String,
    /// The PKCE `code_verifier` (RFC 7636 §4.1), sent only to the upstream's token endpoint.
    pub pkce_verifier: String,
    /// `BASE64URL(SHA256(pkce_verifier))`, the S256 `code_challenge` (RFC 7636 §4.2).
    pub pkce_challenge: String,
    /// Our callback for this upstream, `<issuer>/login/callback/<name>`: the `redirect_uri` to send.
    pub redirect_uri: String,
}

impl std::fmt::Debug for UpstreamLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamLogin")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The upstream's answer at our callback: its query parameters (each appeared once; the core
/// refuses repeated parameters). `state` was checked and `error` handled by the core.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct UpstreamResponse {
    pub params: BTreeMap<String, String>,
}

impl UpstreamResponse {
    /// The parameter `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

impl std::fmt::Debug for UpstreamResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The code is a credential until redeemed: names only.
        f.debug_struct("UpstreamResponse")
            .field("params", &self.params.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// How an upstream sign-in ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamOutcome {
    /// Who signed in.
    Authenticated(AuthenticatedUser),
    /// Who signed in, and what the core should remember of them to judge them again at every
    /// refresh of their grants: the upstream's own facts (e.g. the e-mail and whether it was
    /// verified, the groups), handed back to [`UpstreamAuthenticator::check_subject`]. The core
    /// keeps them in the store's shared state until `[tokens] max_grant_lifetime` after the
    /// sign-in (a later sign-in replaces them). They MUST NOT contain a token, a code or a secret,
    /// and SHOULD be small (at most 64 KiB are kept).
    AuthenticatedWithFacts {
        user: AuthenticatedUser,
        facts: serde_json::Value,
    },
    /// The answer is not acceptable: an ID token that fails validation, or a user this server does
    /// not admit (outside an allow-list). `reason` is shown on the error page and logged: it MUST
    /// NOT contain a token, a code or a secret.
    Refused { reason: String },
}

/// One upstream identity provider that signs users in by redirecting their browser to it.
///
/// Every method's contract is on the method.
#[async_trait]
pub trait UpstreamAuthenticator: Send + Sync {
    /// The name in our callback URL `<issuer>/login/callback/<name>`: MUST be stable, unique among
    /// the upstreams of one server and made of `a-z`, `0-9`, `-` and `_` only.
    fn name(&self) -> &str;

    /// What the login page's button says after "Sign in with", e.g. `Example SSO`.
    fn label(&self) -> &str;

    /// The upstream authorization URL for this sign-in (RFC 6749 §4.1.1).
    ///
    /// MUST carry `login.state` and `login.redirect_uri` unchanged, and MUST send PKCE
    /// (`code_challenge` = `login.pkce_challenge`, method `S256`) and, for OpenID Connect,
    /// `nonce` = `login.nonce`. MAY contact the upstream (e.g. discovery); an unreachable upstream
    /// is [`ProviderError::Unavailable`](crate::ProviderError::Unavailable).
    async fn authorization_url(&self, login: &UpstreamLogin) -> ProviderResult<String>;

    /// Finishes the sign-in with the upstream's answer at our callback.
    ///
    /// The core has checked `state` and answered an `error` itself; the upstream:
    /// - MUST redeem the code with `login.pkce_verifier` and `login.redirect_uri`;
    /// - MUST check the issuer of the answer where the upstream says it sends one (RFC 9207 `iss`);
    /// - for OpenID Connect MUST validate the ID token (signature, `iss`, `aud`, `exp`, `nonce` =
    ///   `login.nonce`, `azp`) and answer [`UpstreamOutcome::Refused`] when any check fails;
    /// - MUST answer `Refused` for a user its configuration does not admit;
    /// - MUST NOT return, log or store an upstream token, code or client secret (it MAY keep tokens
    ///   it needs, sealed, only where its configuration says so);
    /// - MUST return a stable `subject` for one upstream user across sign-ins;
    /// - MUST return [`ProviderError::Unavailable`](crate::ProviderError::Unavailable) when the
    ///   upstream cannot be reached or times out.
    async fn finish(
        &self,
        login: &UpstreamLogin,
        response: &UpstreamResponse,
    ) -> ProviderResult<UpstreamOutcome>;

    /// Whether the upstream answers now and its metadata is usable (`config check`, readiness).
    /// Bounded in time, read-only; the default is `Ok(())`.
    async fn check_health(&self) -> ProviderResult<()> {
        Ok(())
    }

    /// Whether `subject` (from an earlier sign-in through this upstream, so it starts with
    /// `<name>:`) may still use its grants: asked at every refresh of our tokens, with the `facts`
    /// this upstream returned at the user's last sign-in
    /// ([`UpstreamOutcome::AuthenticatedWithFacts`]; `None` when it returned none, or the store
    /// no longer has them).
    ///
    /// It judges the user against its *current* configuration (an operator who narrows an
    /// allow-list or a scope map expects it to apply to grants already issued), with the same
    /// contract as [`UserAuthenticator::check_subject`](crate::UserAuthenticator::check_subject):
    /// [`SubjectStatus::Gone`] for a user it no longer admits (the core then ends every grant of
    /// the subject), `Active` with the scopes the user may grant now, `Unavailable` for an outage,
    /// never `Gone`. Without facts (`None`: the store forgot them, or the grant predates them) it
    /// SHOULD fail closed, judging the user as one it knows nothing about. The default is
    /// [`SubjectStatus::Unknown`] (grants end at `[tokens] max_grant_lifetime`).
    async fn check_subject(
        &self,
        subject: &str,
        facts: Option<&serde_json::Value>,
    ) -> ProviderResult<SubjectStatus> {
        let _ = (subject, facts);
        Ok(SubjectStatus::Unknown)
    }
}

/// Builds one upstream of `[upstreams.<name>]` (`kind = "<kind>"`), registered by kind like every
/// plugin. Several upstreams of one kind may be configured; each is built with its own table.
#[async_trait]
pub trait UpstreamFactory: Send + Sync {
    /// The `kind` this factory answers to in `[upstreams.<name>]`.
    fn kind(&self) -> &'static str;

    /// Builds the upstream called `name` (already checked with [`is_upstream_name`]) from
    /// `ctx.settings`: the table `[upstreams.<name>]` without `kind`; `ctx.section` is
    /// `upstreams.<name>`. It MUST NOT contact the upstream (an upstream that is down at start must
    /// not stop the server: discovery belongs in the first sign-in and in
    /// [`UpstreamAuthenticator::check_health`]); it checks every key ([`FactoryContext::parse_settings`]
    /// with `deny_unknown_fields`), reads its client secret from the environment or a file, and
    /// returns [`ProviderError::InvalidSettings`](crate::ProviderError::InvalidSettings) naming the
    /// key when one is wrong.
    async fn build(
        &self,
        ctx: &FactoryContext,
        name: &str,
    ) -> ProviderResult<std::sync::Arc<dyn UpstreamAuthenticator>>;
}

/// Whether `name` is usable as an upstream name (a URL path segment we never need to escape).
pub fn is_upstream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_path_segments() {
        for ok in ["oidc", "company-sso", "google_2"] {
            assert!(is_upstream_name(ok), "{ok}");
        }
        for bad in ["", "Upper", "a/b", "a b", "..", "é", &"x".repeat(65)] {
            assert!(!is_upstream_name(bad), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let login = UpstreamLogin {
            state: "s3cret-state".into(),
            nonce: "s3cret-nonce".into(),
            pkce_verifier: "s3cret-verifier".into(),
            pkce_challenge: "challenge".into(),
            redirect_uri: "http://127.0.0.1:9000/login/callback/oidc".into(),
        };
        let shown = format!("{login:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let response = UpstreamResponse {
            params: [("code".to_string(), "s3cret-code".to_string())].into(),
        };
        let shown = format!("{response:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("code"),
            "{shown}"
        );
    }
}
