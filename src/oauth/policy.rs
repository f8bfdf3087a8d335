//! The core's side of the policy hooks (`mcp_oauth_provider::Policy`): a policy may only narrow.
//!
//! Every answer is intersected with what the core already allows, so a buggy or hostile policy
//! cannot widen a grant: scopes outside the request are dropped (RFC 6749 §3.3: the granted scope
//! is a subset of the requested one), lifetimes never exceed the configured ones and are at least
//! one second, and a refused registration is an RFC 7591 §3.2.2 error.

use mcp_oauth_provider::{AuthenticatedUser, Client, Policy, RegistrationRefusal, TokenLifetimes};

use crate::error::{ErrorCode, OAuthError};

/// `policy.grantable_scopes`, keeping only requested scopes, in the request's order, once each.
pub async fn grantable_scopes(
    policy: &dyn Policy,
    user: &AuthenticatedUser,
    client: &Client,
    requested: &[String],
) -> Vec<String> {
    let allowed = policy.grantable_scopes(user, client, requested).await;
    narrow(requested, &allowed)
}

/// `policy.allow_client_credentials`, narrowed the same way.
pub async fn client_credentials_scopes(
    policy: &dyn Policy,
    client: &Client,
    requested: &[String],
) -> Vec<String> {
    let allowed = policy.allow_client_credentials(client, requested).await;
    narrow(requested, &allowed)
}

/// `policy.token_lifetimes`, each between one second and the configured value.
pub fn token_lifetimes(
    policy: &dyn Policy,
    client: &Client,
    configured: TokenLifetimes,
) -> TokenLifetimes {
    let asked = policy.token_lifetimes(client, configured);
    let clamp = |asked: i64, max: i64| asked.clamp(1, max.max(1));
    TokenLifetimes {
        access_token: clamp(asked.access_token, configured.access_token),
        refresh_token: clamp(asked.refresh_token, configured.refresh_token),
        code: clamp(asked.code, configured.code),
    }
}

/// `policy.allow_registration`, as the RFC 7591 §3.2.2 error the registrant receives.
pub async fn allow_registration(policy: &dyn Policy, candidate: &Client) -> Result<(), OAuthError> {
    match policy.allow_registration(candidate).await {
        Ok(()) => Ok(()),
        Err(RegistrationRefusal::RedirectUri(why)) => {
            tracing::info!(reason = %why, "the policy refused a registration's redirect URI");
            Err(OAuthError::new(ErrorCode::InvalidRedirectUri, why))
        }
        Err(RegistrationRefusal::Metadata(why)) => {
            tracing::info!(reason = %why, "the policy refused a registration");
            Err(OAuthError::new(ErrorCode::InvalidClientMetadata, why))
        }
    }
}

fn narrow(requested: &[String], allowed: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in requested {
        if allowed.contains(s) && !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    /// A policy that tries to widen everything.
    struct Greedy;

    #[async_trait]
    impl Policy for Greedy {
        async fn grantable_scopes(
            &self,
            _user: &AuthenticatedUser,
            _client: &Client,
            requested: &[String],
        ) -> Vec<String> {
            let mut all = vec!["mcp:admin".to_string(), "root".to_string()];
            all.extend(requested.iter().cloned());
            all.extend(requested.iter().cloned());
            all
        }
        fn token_lifetimes(&self, _client: &Client, _c: TokenLifetimes) -> TokenLifetimes {
            TokenLifetimes {
                access_token: i64::MAX,
                refresh_token: -5,
                code: 0,
            }
        }
        async fn allow_client_credentials(&self, _c: &Client, _r: &[String]) -> Vec<String> {
            vec!["root".into()]
        }
        async fn allow_registration(&self, c: &Client) -> Result<(), RegistrationRefusal> {
            match c.client_name.as_deref() {
                Some("bad-uri") => Err(RegistrationRefusal::RedirectUri("host not allowed".into())),
                Some("bad") => Err(RegistrationRefusal::Metadata("no".into())),
                _ => Ok(()),
            }
        }
    }

    fn client(name: &str) -> Client {
        let mut c = mcp_oauth_provider::testkit::sample_client("c1");
        c.client_name = Some(name.into());
        c
    }

    fn user() -> AuthenticatedUser {
        AuthenticatedUser {
            subject: "alice".into(),
            username: "alice".into(),
            display_name: None,
            email: None,
            groups: Vec::new(),
            allowed_scopes: None,
        }
    }

    #[tokio::test]
    async fn a_policy_cannot_widen_what_the_core_allows() {
        let requested = vec!["mcp:tools".to_string()];
        assert_eq!(
            grantable_scopes(&Greedy, &user(), &client("x"), &requested).await,
            requested,
            "only requested scopes, once"
        );
        assert!(
            client_credentials_scopes(&Greedy, &client("x"), &requested)
                .await
                .is_empty()
        );
        let configured = TokenLifetimes {
            access_token: 900,
            refresh_token: 86_400,
            code: 60,
        };
        assert_eq!(
            token_lifetimes(&Greedy, &client("x"), configured),
            TokenLifetimes {
                access_token: 900,
                refresh_token: 1,
                code: 1
            }
        );
    }

    #[tokio::test]
    async fn refusals_are_rfc7591_errors() {
        let err = allow_registration(&Greedy, &client("bad-uri"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRedirectUri);
        let err = allow_registration(&Greedy, &client("bad"))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidClientMetadata);
        allow_registration(&Greedy, &client("fine")).await.unwrap();
        let default = mcp_oauth_provider::DefaultPolicy;
        let requested = vec!["a".to_string(), "b".to_string()];
        let mut limited = user();
        limited.allowed_scopes = Some(vec!["b".into()]);
        assert_eq!(
            grantable_scopes(&default, &limited, &client("x"), &requested).await,
            ["b"]
        );
        assert_eq!(
            client_credentials_scopes(&default, &client("x"), &requested).await,
            requested,
            "the standard policy gives a machine client every scope the core allowed"
        );
    }
}
