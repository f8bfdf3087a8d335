//! `[users] kind = "ldap"`: builds an [`LdapAuthenticator`] from `[users.ldap]`.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    FactoryContext, ProviderError, ProviderResult, Storage, UserAuthenticator,
    UserAuthenticatorFactory,
};

use crate::authenticator::LdapAuthenticator;
use crate::settings::LdapSettings;

/// Registers the `ldap` user authenticator. It composes with any storage backend: it uses none of
/// the storage's parts (local accounts stay unused).
#[derive(Debug, Clone, Copy, Default)]
pub struct LdapAuthenticatorFactory;

#[async_trait]
impl UserAuthenticatorFactory for LdapAuthenticatorFactory {
    fn kind(&self) -> &'static str {
        "ldap"
    }

    async fn build(
        &self,
        ctx: &FactoryContext,
        _storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
        // The messages already name `[users.ldap]` and the key.
        let invalid =
            |e: crate::settings::SettingsError| ProviderError::InvalidSettings(e.to_string());
        let settings = LdapSettings::from_table(&ctx.settings).map_err(invalid)?;
        let authenticator = LdapAuthenticator::new(&settings).map_err(invalid)?;
        tracing::info!(
            url = %settings.url,
            mode = ?settings.mode,
            groups = ?settings.groups,
            "LDAP user authenticator configured (the directory is contacted at the first sign-in)"
        );
        Ok(Arc::new(authenticator))
    }
}
