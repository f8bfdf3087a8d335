//! The plain OAuth 2 upstream (RFC 6749 §4.1, the authorization code grant) with a userinfo API:
//! no ID token, so who signed in is what the upstream's user endpoint answers to the access token.
//!
//! 1. [`authorization_url`](OAuth2Upstream::authorization_url): the configured authorization
//!    endpoint with `response_type=code`, our `client_id` and callback, the configured `scope`, the
//!    core's `state` and the PKCE S256 challenge (RFC 7636 §4.3).
//! 2. [`finish`](OAuth2Upstream::finish): RFC 9207 `iss` when an `issuer` is configured (required
//!    then), the code redeemed at the token endpoint with the PKCE verifier (RFC 6749 §4.1.3; a
//!    `200` carrying `error`, as GitHub answers, is a refusal too), the userinfo URL read with the
//!    access token, GitHub's orgs and teams when the configuration needs them
//!    ([`crate::oauth2::github`]), the answer mapped ([`crate::oauth2::userinfo`]).
//!
//! The access token is used for those reads and dropped: it is never stored, logged or returned
//! (MCP forbids token passthrough). The client secret travels only in the token request. Mix-up
//! (RFC 9700 §4.4) is the core's: each upstream has its own callback URL.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_oauth_provider::{
    ProviderError, ProviderResult, SubjectStatus, UpstreamAuthenticator, UpstreamLogin,
    UpstreamOutcome, UpstreamResponse,
};
use serde::Deserialize;
use serde_json::Value;

use crate::discovery::unreachable;
use crate::http::{form_encode, plain_code};
use crate::oauth2::github;
use crate::oauth2::settings::{Flavour, OAuth2Settings, TokenAuth};
use crate::oauth2::userinfo::{facts_of, groups_at, recheck, user_from_userinfo};
use crate::settings::{ClientSecret, bad_metadata};

/// One OAuth 2 provider (GitHub, or any with a userinfo API) we send users to.
pub struct OAuth2Upstream {
    settings: OAuth2Settings,
    secret: Option<ClientSecret>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OAuth2Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2Upstream")
            .field("name", &self.settings.name)
            .field(
                "authorization_endpoint",
                &self.settings.authorization_endpoint,
            )
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn refused(reason: impl Into<String>) -> UpstreamOutcome {
    UpstreamOutcome::Refused {
        reason: reason.into(),
    }
}

/// The token endpoint's answer (RFC 6749 §5.1, or §5.2's `error`, which GitHub sends with 200).
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    token_type: Option<String>,
    error: Option<String>,
}

impl OAuth2Upstream {
    pub fn new(settings: OAuth2Settings, secret: Option<ClientSecret>) -> ProviderResult<Self> {
        // The workspace's one TLS provider; installing twice is a harmless error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            // GitHub's API refuses requests without a User-Agent.
            .user_agent(concat!("mcp-oauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::backend("building the HTTP client", e))?;
        Ok(Self {
            settings,
            secret,
            http,
        })
    }

    pub fn settings(&self) -> &OAuth2Settings {
        &self.settings
    }

    /// A response body, at most `max_response_bytes`.
    pub(crate) async fn read_body(
        &self,
        resp: reqwest::Response,
        what: &str,
    ) -> ProviderResult<Vec<u8>> {
        crate::http::read_limited(resp, what, self.settings.max_response_bytes).await
    }

    /// `GET url` with the user's access token: `Ok(Ok(json))`, `Ok(Err(status))` for a 4xx, an
    /// outage for a 5xx or a transport failure.
    pub(crate) async fn get_json(
        &self,
        url: &str,
        access_token: &str,
        what: &str,
    ) -> ProviderResult<Result<Value, reqwest::StatusCode>> {
        let resp = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unreachable(what, e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ProviderError::unavailable_msg(format!(
                "{what} at the upstream answered HTTP {status}"
            )));
        }
        if !status.is_success() {
            return Ok(Err(status));
        }
        let body = self.read_body(resp, what).await?;
        serde_json::from_slice(&body)
            .map(Ok)
            .map_err(|_| bad_metadata(format!("{what} from the upstream is not JSON")))
    }

    /// Redeems the code; `Ok(Err(outcome))` is a refusal to show.
    async fn redeem(
        &self,
        code: &str,
        login: &UpstreamLogin,
    ) -> ProviderResult<Result<String, UpstreamOutcome>> {
        let s = &self.settings;
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &login.redirect_uri),
            ("code_verifier", &login.pkce_verifier),
        ];
        let mut req = self.http.post(&s.token_endpoint);
        match (&self.secret, s.token_auth) {
            (Some(secret), TokenAuth::Basic) => {
                let basic = STANDARD.encode(format!(
                    "{}:{}",
                    form_encode(&s.client_id),
                    form_encode(&secret.0)
                ));
                req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
            }
            (Some(secret), TokenAuth::Post) => {
                form.push(("client_id", &s.client_id));
                form.push(("client_secret", &secret.0));
            }
            (None, _) => form.push(("client_id", &s.client_id)),
        }
        let resp = req
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| unreachable("the token request", e))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(ProviderError::unavailable_msg(format!(
                "the upstream's token endpoint answered HTTP {status}"
            )));
        }
        let body = self.read_body(resp, "the token response").await?;
        let answer = serde_json::from_slice::<TokenAnswer>(&body).ok();
        let refusal = |code: Option<&str>| {
            Ok(Err(refused(format!(
                "the identity provider refused to redeem the sign-in ({})",
                plain_code(code)
            ))))
        };
        let Some(answer) = answer else {
            if status.is_success() {
                return Err(ProviderError::backend_msg(
                    "the upstream's token response is not JSON",
                ));
            }
            return refusal(None);
        };
        if !status.is_success() || answer.error.is_some() {
            return refusal(answer.error.as_deref());
        }
        if let Some(t) = &answer.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Ok(Err(refused(format!(
                "the identity provider issued a token of type {:?}, not a bearer token",
                plain_code(Some(t))
            ))));
        }
        match answer.access_token {
            Some(t) if !t.is_empty() => Ok(Ok(t)),
            _ => Ok(Err(refused("the identity provider sent no access token"))),
        }
    }
}

#[async_trait]
impl UpstreamAuthenticator for OAuth2Upstream {
    fn name(&self) -> &str {
        &self.settings.name
    }

    fn label(&self) -> &str {
        &self.settings.label
    }

    async fn authorization_url(&self, login: &UpstreamLogin) -> ProviderResult<String> {
        let s = &self.settings;
        let mut url = url::Url::parse(&s.authorization_endpoint)
            .map_err(|e| ProviderError::backend("the upstream's authorization endpoint", e))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &s.client_id)
                .append_pair("redirect_uri", &login.redirect_uri);
            if !s.scopes.is_empty() {
                q.append_pair("scope", &s.scopes.join(" "));
            }
            q.append_pair("state", &login.state)
                .append_pair("code_challenge", &login.pkce_challenge)
                .append_pair("code_challenge_method", "S256");
            if s.flavour == Flavour::GitHub {
                // Sign-up is not sign-in: only existing GitHub accounts.
                q.append_pair("allow_signup", "false");
            }
        }
        Ok(url.into())
    }

    async fn finish(
        &self,
        login: &UpstreamLogin,
        response: &UpstreamResponse,
    ) -> ProviderResult<UpstreamOutcome> {
        let s = &self.settings;
        // RFC 9207 §2.4, when the operator says the upstream sends `iss`.
        if let Some(issuer) = &s.issuer {
            match response.get("iss") {
                Some(iss) if iss == issuer => {}
                Some(_) => {
                    return Ok(refused(
                        "the answer names another identity provider than this sign-in's (iss, \
                         RFC 9207)",
                    ));
                }
                None => {
                    return Ok(refused(
                        "the answer does not name its identity provider (iss, RFC 9207)",
                    ));
                }
            }
        }
        let Some(code) = response.get("code") else {
            return Ok(refused("the identity provider's answer has no code"));
        };
        let access_token = match self.redeem(code, login).await? {
            Ok(t) => t,
            Err(outcome) => return Ok(outcome),
        };
        let info = match self
            .get_json(&s.userinfo_url, &access_token, "the user information")
            .await?
        {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => {
                return Ok(refused(
                    "the identity provider's user information is not a JSON object",
                ));
            }
            Err(status) => {
                return Ok(refused(format!(
                    "the identity provider refused to tell who signed in (user information: HTTP \
                     {})",
                    status.as_u16()
                )));
            }
        };
        let groups = if s.reads_memberships() {
            match github::memberships(self, &access_token).await? {
                Ok(g) => g,
                Err(outcome) => return Ok(outcome),
            }
        } else {
            s.groups_path
                .as_deref()
                .map(|p| groups_at(&info, p))
                .unwrap_or_default()
        };
        let facts = facts_of(s, &info, &groups);
        Ok(match user_from_userinfo(s, &info, groups) {
            Ok(user) => UpstreamOutcome::AuthenticatedWithFacts { user, facts },
            Err(reason) => refused(reason),
        })
    }

    /// The user judged again with the username and groups kept from their last sign-in against
    /// today's allow-lists and scope map ([`crate::oauth2::userinfo::recheck`]); the provider is
    /// not contacted (we keep none of its tokens).
    async fn check_subject(
        &self,
        _subject: &str,
        facts: Option<&Value>,
    ) -> ProviderResult<SubjectStatus> {
        Ok(recheck(&self.settings, facts))
    }

    /// The endpoints are configured, not discovered: the authorization endpoint must answer (any
    /// HTTP status; a GitHub-style endpoint answers a bare GET with a page or a redirect).
    async fn check_health(&self) -> ProviderResult<()> {
        self.http
            .get(&self.settings.authorization_endpoint)
            .send()
            .await
            .map_err(|e| unreachable("the authorization endpoint", e))
            .map(drop)
    }
}
