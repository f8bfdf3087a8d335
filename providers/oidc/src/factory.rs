//! `[users] kind = "oidc"`: builds an [`OidcAuthenticator`] from `[users.oidc]`.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    FactoryContext, ProviderResult, Storage, UserAuthenticator, UserAuthenticatorFactory,
};

use crate::authenticator::{OidcAuthenticator, OidcUpstream};
use crate::settings::OidcSettings;

/// Registers the `oidc` user authenticator. It uses none of the storage's parts.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidcAuthenticatorFactory;

#[async_trait]
impl UserAuthenticatorFactory for OidcAuthenticatorFactory {
    fn kind(&self) -> &'static str {
        "oidc"
    }

    /// Checks the settings and reads the client secret; contacts nothing (discovery happens at the
    /// first sign-in, and in `config check`).
    async fn build(
        &self,
        ctx: &FactoryContext,
        _storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
        let settings = OidcSettings::from_context(ctx)?;
        let secret = settings.client_secret(ctx)?;
        tracing::info!(
            issuer = %settings.issuer,
            client_id = %settings.client_id,
            name = %settings.name,
            confidential = secret.is_some(),
            "OpenID Connect upstream configured (discovery runs at the first sign-in)"
        );
        Ok(Arc::new(OidcAuthenticator::new(OidcUpstream::new(
            settings, secret,
        )?)))
    }
}
