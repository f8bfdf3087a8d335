//! `[upstreams.<name>] kind = "oauth2"` and `kind = "github"`.

use std::sync::Arc;

use async_trait::async_trait;
use mcp_oauth_provider::{FactoryContext, ProviderResult, UpstreamAuthenticator, UpstreamFactory};

use crate::factory::with_name;
use crate::oauth2::settings::{Flavour, OAuth2Settings};
use crate::oauth2::upstream::OAuth2Upstream;

fn build(ctx: &FactoryContext, name: &str, flavour: Flavour) -> ProviderResult<OAuth2Upstream> {
    let ctx = with_name(ctx, name)?;
    let settings = OAuth2Settings::from_context(&ctx, flavour)?;
    let secret = settings.client_secret(&ctx)?;
    tracing::info!(
        name = %settings.name,
        authorization_endpoint = %settings.authorization_endpoint,
        client_id = %settings.client_id,
        confidential = secret.is_some(),
        "OAuth 2 upstream configured"
    );
    OAuth2Upstream::new(settings, secret)
}

/// Registers `kind = "oauth2"`: any OAuth 2 provider with a userinfo API.
#[derive(Debug, Clone, Copy, Default)]
pub struct OAuth2UpstreamFactory;

#[async_trait]
impl UpstreamFactory for OAuth2UpstreamFactory {
    fn kind(&self) -> &'static str {
        "oauth2"
    }
    async fn build(
        &self,
        ctx: &FactoryContext,
        name: &str,
    ) -> ProviderResult<Arc<dyn UpstreamAuthenticator>> {
        Ok(Arc::new(build(ctx, name, Flavour::Generic)?))
    }
}

/// Registers `kind = "github"`: GitHub (github.com by default), with org/team allow-lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct GitHubUpstreamFactory;

#[async_trait]
impl UpstreamFactory for GitHubUpstreamFactory {
    fn kind(&self) -> &'static str {
        "github"
    }
    async fn build(
        &self,
        ctx: &FactoryContext,
        name: &str,
    ) -> ProviderResult<Arc<dyn UpstreamAuthenticator>> {
        Ok(Arc::new(build(ctx, name, Flavour::GitHub)?))
    }
}
