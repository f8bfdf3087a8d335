//! `[users] kind = "oidc"` (one upstream, no password form) builds an [`OidcAuthenticator`] from
//! `[users.oidc]`; `[upstreams.<name>] kind = "oidc"` builds one [`OidcUpstream`] beside any
//! password authenticator (and beside other upstreams).

use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{
    FactoryContext, ProviderResult, Storage, UpstreamAuthenticator, UpstreamFactory,
    UserAuthenticator, UserAuthenticatorFactory,
};

use crate::authenticator::{OidcAuthenticator, OidcUpstream};
use crate::settings::OidcSettings;

/// Registers the `oidc` user authenticator. It uses none of the storage's parts.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidcAuthenticatorFactory;

/// Checks the settings and reads the client secret; contacts nothing (discovery happens at the
/// first sign-in, and in `config check`).
fn build_upstream(ctx: &FactoryContext) -> ProviderResult<OidcUpstream> {
    let settings = OidcSettings::from_context(ctx)?;
    let secret = settings.client_secret(ctx)?;
    tracing::info!(
        issuer = %settings.issuer,
        client_id = %settings.client_id,
        name = %settings.name,
        confidential = secret.is_some(),
        "OpenID Connect upstream configured (discovery runs at the first sign-in)"
    );
    OidcUpstream::new(settings, secret)
}

#[async_trait]
impl UserAuthenticatorFactory for OidcAuthenticatorFactory {
    fn kind(&self) -> &'static str {
        "oidc"
    }

    async fn build(
        &self,
        ctx: &FactoryContext,
        _storage: &Storage,
    ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
        Ok(Arc::new(OidcAuthenticator::new(build_upstream(ctx)?)))
    }
}

/// Registers `[upstreams.<name>] kind = "oidc"`: the same keys as `[users.oidc]` except `name`,
/// which is the table's key.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidcUpstreamFactory;

#[async_trait]
impl UpstreamFactory for OidcUpstreamFactory {
    fn kind(&self) -> &'static str {
        "oidc"
    }

    async fn build(
        &self,
        ctx: &FactoryContext,
        name: &str,
    ) -> ProviderResult<Arc<dyn UpstreamAuthenticator>> {
        Ok(Arc::new(build_upstream(&with_name(ctx, name)?)?))
    }
}

/// `ctx` with `name` set to the table's key; a `name` key of its own is an error (two names for
/// one upstream).
pub fn with_name(ctx: &FactoryContext, name: &str) -> ProviderResult<FactoryContext> {
    let mut table = match &ctx.settings {
        serde_json::Value::Object(t) => t.clone(),
        serde_json::Value::Null => serde_json::Map::new(),
        _ => return Err(ctx.invalid("must be a table")),
    };
    if table.contains_key("name") {
        return Err(ctx.invalid(format_args!(
            "name: an upstream's name is its table's key ([upstreams.{name}]); remove `name`"
        )));
    }
    table.insert("name".into(), name.into());
    let mut ctx = ctx.clone();
    ctx.settings = serde_json::Value::Object(table);
    Ok(ctx)
}
