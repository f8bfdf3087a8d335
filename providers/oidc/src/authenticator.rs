//! The OpenID Connect upstream (OIDC Core 1.0 §3.1, the authorization code flow) and the users
//! authenticator that offers it.
//!
//! 1. [`authorization_url`](OidcUpstream::authorization_url): the discovered authorization endpoint
//!    with `response_type=code`, our `client_id` and callback, the configured `scope`, and the
//!    core's `state`, `nonce` and PKCE S256 challenge (RFC 7636 §4.3).
//! 2. [`finish`](OidcUpstream::finish): RFC 9207 `iss` on the response (required when the upstream
//!    advertises it, checked whenever present), then the code is redeemed at the token endpoint
//!    with the PKCE verifier (client authentication `client_secret_basic`, or `client_secret_post`
//!    when that is all the upstream supports; none for a public client), the ID token is validated
//!    ([`crate::id_token`]) and its claims mapped ([`crate::claims`]).
//!
//! The upstream's access and refresh tokens are dropped unread: nothing of them is stored, logged or
//! returned (our tokens are ours). The client secret travels only in the token request.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_oauth_provider::{
    AuthOutcome, ProviderError, ProviderResult, SubjectStatus, UpstreamAuthenticator,
    UpstreamLogin, UpstreamOutcome, UpstreamResponse, UserAuthenticator,
};
use serde::Deserialize;

use crate::claims::{facts_from_claims, recheck, user_from_claims};
use crate::discovery::{Upstream, unreachable};
use crate::http::{form_encode, plain_code};
use crate::id_token::{self, Expected};
use crate::settings::{ClientSecret, OidcSettings};

/// One OpenID Connect provider we send users to.
pub struct OidcUpstream {
    upstream: Upstream,
    secret: Option<ClientSecret>,
    label: String,
}

impl std::fmt::Debug for OidcUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcUpstream")
            .field("name", &self.upstream.settings.name)
            .field("issuer", &self.upstream.settings.issuer)
            .field("client_id", &self.upstream.settings.client_id)
            .finish_non_exhaustive()
    }
}

fn refused(reason: impl Into<String>) -> UpstreamOutcome {
    UpstreamOutcome::Refused {
        reason: reason.into(),
    }
}

/// The token endpoint's answer: only the ID token is read.
#[derive(Deserialize)]
struct TokenAnswer {
    id_token: Option<String>,
}

/// An RFC 6749 §5.2 error answer.
#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
}

impl OidcUpstream {
    pub fn new(settings: OidcSettings, secret: Option<ClientSecret>) -> ProviderResult<Self> {
        let label = settings.label();
        Ok(Self {
            upstream: Upstream::new(settings)?,
            secret,
            label,
        })
    }

    fn settings(&self) -> &OidcSettings {
        &self.upstream.settings
    }

    /// Redeems the code; `Ok(Err(outcome))` is a refusal to show.
    async fn redeem(
        &self,
        token_endpoint: &str,
        auth_methods: Option<&[String]>,
        code: &str,
        login: &UpstreamLogin,
    ) -> ProviderResult<Result<String, UpstreamOutcome>> {
        let s = self.settings();
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &login.redirect_uri),
            ("code_verifier", &login.pkce_verifier),
        ];
        let mut req = self.upstream.http().post(token_endpoint);
        match &self.secret {
            Some(secret) => {
                let post_only = auth_methods.is_some_and(|m| {
                    !m.iter().any(|x| x == "client_secret_basic")
                        && m.iter().any(|x| x == "client_secret_post")
                });
                if post_only {
                    form.push(("client_id", &s.client_id));
                    form.push(("client_secret", &secret.0));
                } else {
                    let basic = STANDARD.encode(format!(
                        "{}:{}",
                        form_encode(&s.client_id),
                        form_encode(&secret.0)
                    ));
                    req = req.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
                }
            }
            None => form.push(("client_id", &s.client_id)),
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
        let body = self.upstream.read_body(resp, "the token response").await?;
        if !status.is_success() {
            let code = serde_json::from_slice::<TokenError>(&body)
                .ok()
                .and_then(|e| e.error);
            return Ok(Err(refused(format!(
                "the identity provider refused to redeem the sign-in ({})",
                plain_code(code.as_deref())
            ))));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| ProviderError::backend_msg("the upstream's token response is not JSON"))?;
        match answer.id_token {
            Some(t) if !t.is_empty() => Ok(Ok(t)),
            _ => Ok(Err(refused(
                "the identity provider sent no ID token (is \"openid\" among the scopes?)",
            ))),
        }
    }
}

#[async_trait]
impl UpstreamAuthenticator for OidcUpstream {
    fn name(&self) -> &str {
        &self.settings().name
    }

    fn label(&self) -> &str {
        &self.label
    }

    async fn authorization_url(&self, login: &UpstreamLogin) -> ProviderResult<String> {
        let metadata = self.upstream.metadata().await?;
        let s = self.settings();
        let mut url = url::Url::parse(&metadata.authorization_endpoint)
            .map_err(|e| ProviderError::backend("the upstream's authorization endpoint", e))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &s.client_id)
            .append_pair("redirect_uri", &login.redirect_uri)
            .append_pair("scope", &s.scopes.join(" "))
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &login.pkce_challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    async fn finish(
        &self,
        login: &UpstreamLogin,
        response: &UpstreamResponse,
    ) -> ProviderResult<UpstreamOutcome> {
        let metadata = self.upstream.metadata().await?;
        let s = self.settings();
        // RFC 9207 §2.4: compare `iss` when present; require it when the upstream advertises it.
        match response.get("iss") {
            Some(iss) if iss != metadata.issuer => {
                return Ok(refused(
                    "the answer names another identity provider than this sign-in's (iss, RFC 9207)",
                ));
            }
            None if metadata.authorization_response_iss_parameter_supported => {
                return Ok(refused(
                    "the answer does not name its identity provider (iss, RFC 9207)",
                ));
            }
            _ => {}
        }
        let Some(code) = response.get("code") else {
            return Ok(refused("the identity provider's answer has no code"));
        };
        let id_token = match self
            .redeem(
                &metadata.token_endpoint,
                metadata.token_endpoint_auth_methods_supported.as_deref(),
                code,
                login,
            )
            .await?
        {
            Ok(t) => t,
            Err(outcome) => return Ok(outcome),
        };
        let (alg, kid) = match id_token::header(&id_token) {
            Ok(h) => h,
            Err(r) => return Ok(refused(r.0)),
        };
        let mut jwks = self.upstream.jwks(false).await?;
        if id_token::find_key(&jwks, kid.as_deref()).is_none() {
            // Perhaps a key added upstream since we fetched: fetch again (at most so often).
            jwks = self.upstream.jwks(true).await?;
        }
        let Some(jwk) = id_token::find_key(&jwks, kid.as_deref()) else {
            return Ok(refused(
                "the identity provider's ID token is signed with a key it does not publish",
            ));
        };
        let expected = Expected {
            issuer: &metadata.issuer,
            client_id: &s.client_id,
            nonce: &login.nonce,
            leeway_secs: s.clock_skew.as_secs(),
        };
        let claims = match id_token::validate(&id_token, alg, jwk, &expected) {
            Ok(c) => c,
            Err(r) => return Ok(refused(r.0)),
        };
        Ok(match user_from_claims(s, &claims) {
            Ok(user) => UpstreamOutcome::AuthenticatedWithFacts {
                user,
                facts: facts_from_claims(s, &claims),
            },
            Err(reason) => refused(reason),
        })
    }

    async fn check_health(&self) -> ProviderResult<()> {
        self.upstream.fetch_metadata().await?;
        self.upstream.jwks(true).await.map(drop)
    }

    /// The user judged again with the claims kept from their last sign-in against today's
    /// allow-list and scope map ([`crate::claims::recheck`]); the provider is not contacted.
    async fn check_subject(
        &self,
        _subject: &str,
        facts: Option<&serde_json::Value>,
    ) -> ProviderResult<SubjectStatus> {
        Ok(recheck(self.settings(), facts))
    }
}

/// `[users] kind = "oidc"`: sign-in only through the configured OpenID Connect provider.
pub struct OidcAuthenticator {
    upstream: Arc<OidcUpstream>,
}

impl OidcAuthenticator {
    pub fn new(upstream: OidcUpstream) -> Self {
        Self {
            upstream: Arc::new(upstream),
        }
    }
}

#[async_trait]
impl UserAuthenticator for OidcAuthenticator {
    /// No passwords here: every password is refused without contacting anything.
    async fn authenticate(&self, _username: &str, _password: &str) -> ProviderResult<AuthOutcome> {
        Ok(AuthOutcome::Rejected)
    }

    async fn check_health(&self) -> ProviderResult<()> {
        self.upstream.check_health().await
    }

    fn accepts_passwords(&self) -> bool {
        false
    }

    fn upstreams(&self) -> Vec<Arc<dyn UpstreamAuthenticator>> {
        vec![self.upstream.clone()]
    }

    /// Only this upstream's users (`<name>:…`) exist here; any other subject (an upstream renamed
    /// or removed, a former local account) is gone.
    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        match subject.split_once(':') {
            Some((name, _)) if name == self.upstream.name() => {
                self.upstream.check_subject(subject, None).await
            }
            _ => Ok(SubjectStatus::Gone),
        }
    }
}
