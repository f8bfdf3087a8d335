//! The password authenticator of `[users]` together with the upstreams of `[upstreams.<name>]`: one
//! [`UserAuthenticator`] for the core, whose login page then shows the password form (when `[users]`
//! takes passwords) and one "Sign in with `<label>`" button per upstream.
//!
//! Subjects are how a refresh finds who to ask (RFC 6749 §6: the server decides whether a grant is
//! still good). An upstream's users are `<name>:<upstream subject>` (the upstream names them so:
//! OIDC Core §2, `sub` is unique only at its issuer), so a subject whose prefix names a configured
//! upstream is that upstream's to check; every other subject is `[users]`'s. A subject of an
//! upstream that was removed from the configuration therefore reaches `[users]`, which knows no such
//! user: `Gone` for local accounts and LDAP search mode, and its grants end as after `users delete`.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    AuthOutcome, ProviderError, ProviderResult, SubjectStatus, UpstreamAuthenticator,
    UserAuthenticator,
};

/// `[users]` plus the upstreams configured beside it.
pub struct WithUpstreams {
    inner: Arc<dyn UserAuthenticator>,
    /// `inner`'s own upstreams first, then `[upstreams.*]` in the order of their names.
    upstreams: Vec<Arc<dyn UpstreamAuthenticator>>,
}

impl WithUpstreams {
    /// `inner` with `extra` beside it. Fails when two upstreams share a name, naming both places.
    pub fn new(
        inner: Arc<dyn UserAuthenticator>,
        extra: Vec<(String, Arc<dyn UpstreamAuthenticator>)>,
    ) -> anyhow::Result<Self> {
        let mut upstreams = inner.upstreams();
        let mut places: Vec<(String, String)> = upstreams
            .iter()
            .map(|u| (u.name().to_string(), "[users]".to_string()))
            .collect();
        for (section, upstream) in extra {
            if let Some((_, first)) = places.iter().find(|(n, _)| n == upstream.name()) {
                anyhow::bail!(
                    "{first} and {section} both configure an upstream named {:?}; upstream names \
                     (the last segment of the callback URL /login/callback/<name>) must be unique",
                    upstream.name()
                );
            }
            places.push((upstream.name().to_string(), section));
            upstreams.push(upstream);
        }
        Ok(Self { inner, upstreams })
    }

    /// The configured upstream whose users' subjects start with `<name>:`, if any.
    fn owner(&self, subject: &str) -> Option<&Arc<dyn UpstreamAuthenticator>> {
        let (name, _) = subject.split_once(':')?;
        self.upstreams.iter().find(|u| u.name() == name)
    }
}

#[async_trait]
impl UserAuthenticator for WithUpstreams {
    async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome> {
        self.inner.authenticate(username, password).await
    }

    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        match self.owner(subject) {
            Some(upstream) => upstream.check_subject(subject, None).await,
            None => self.inner.check_subject(subject).await,
        }
    }

    /// `[users]`'s directory, then every upstream (discovery and keys for OpenID Connect); the
    /// first that fails is named.
    async fn check_health(&self) -> ProviderResult<()> {
        self.inner.check_health().await?;
        for upstream in &self.upstreams {
            upstream.check_health().await.map_err(|e| {
                let message = format!("the upstream {:?}: {e}", upstream.name());
                if e.is_unavailable() {
                    ProviderError::unavailable_msg(message)
                } else {
                    ProviderError::backend_msg(message)
                }
            })?;
        }
        Ok(())
    }

    fn accepts_passwords(&self) -> bool {
        self.inner.accepts_passwords()
    }

    fn upstreams(&self) -> Vec<Arc<dyn UpstreamAuthenticator>> {
        self.upstreams.clone()
    }
}
