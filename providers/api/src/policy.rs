//! Policy: the decisions an operator may want to make differently, as hooks with safe defaults.
//!
//! `[policy] kind = "<kind>"` picks a [`PolicyFactory`](crate::PolicyFactory); the built-in
//! `standard` policy is [`DefaultPolicy`]. A policy only narrows: the core intersects every answer
//! with what the protocol and the configuration already allow (a hook cannot grant a scope the
//! resource does not declare, nor admit a redirect URI the core refused), and it still runs every
//! protocol check itself.

use async_trait::async_trait;

use crate::{AuthenticatedUser, Client, TokenLifetimes};

/// Why a policy refused a dynamic registration; sent to the registrant as the RFC 7591 §3.2.2 error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationRefusal {
    /// `invalid_redirect_uri`: a redirect URI is not acceptable (e.g. its host is not allowed).
    RedirectUri(String),
    /// `invalid_client_metadata`: another field is not acceptable.
    Metadata(String),
}

/// The decisions a deployment may customise.
#[async_trait]
pub trait Policy: Send + Sync {
    /// Which of the `requested` scopes `user` may grant `client`. The core keeps only those that
    /// are also in `requested`. Default: every requested scope the user is allowed (all, when the
    /// user carries no restriction).
    async fn grantable_scopes(
        &self,
        user: &AuthenticatedUser,
        client: &Client,
        requested: &[String],
    ) -> Vec<String> {
        let _ = client;
        match &user.allowed_scopes {
            None => requested.to_vec(),
            Some(allowed) => requested
                .iter()
                .filter(|s| allowed.contains(s))
                .cloned()
                .collect(),
        }
    }

    /// Token lifetimes (seconds) for `client`. The core never lets one exceed the configured value.
    /// Default: the configured lifetimes.
    fn token_lifetimes(&self, client: &Client, configured: TokenLifetimes) -> TokenLifetimes {
        let _ = client;
        configured
    }

    /// Whether a dynamic registration (RFC 7591) may be stored. `candidate` is the client the core
    /// built after its own checks (redirect URIs, grant types, scope, name); `origin` says whether
    /// the registrant presented the initial access token. Default: admitted.
    async fn allow_registration(&self, candidate: &Client) -> Result<(), RegistrationRefusal> {
        let _ = candidate;
        Ok(())
    }

    /// Which of the `requested` scopes a `client_credentials` client receives. `requested` is
    /// already limited to the client's allow-list and the resource's scopes; the core keeps only
    /// those that are also in `requested`. Default: all of them.
    async fn allow_client_credentials(&self, client: &Client, requested: &[String]) -> Vec<String> {
        let _ = client;
        requested.to_vec()
    }
}

/// The built-in `standard` policy: every default above.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

#[async_trait]
impl Policy for DefaultPolicy {}
