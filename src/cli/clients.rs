//! `mcp-oauth clients …`: clients created by an administrator (the same validation as RFC 7591
//! dynamic registration), listed, and deleted (which revokes their tokens); clients identified by a
//! metadata document URL are blocked by URL.

use clap::Subcommand;
use serde_json::json;

use crate::cli::admin::{format_time, open, table};
use crate::config::Settings;
use crate::oauth::grants::{delete_client, remember_revoked_until};
use crate::oauth::register::{RegistrationPolicy, client_from_metadata};
use crate::oauth::resources::Resources;
use crate::registry::Registry;
use crate::state::now;
use mcp_oauth_provider::{ClientOrigin, ProviderError};

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; a confidential client's secret is printed once.
    Add {
        #[arg(long)]
        name: String,
        /// A redirect URI (https, or http on a loopback host); repeat for several.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (no secret; PKCE protects its codes).
        #[arg(long)]
        public: bool,
        /// Space-separated scopes. For user-consented grants, the default when a request names
        /// none; for client_credentials, the explicit allow-list (without it the client gets no
        /// scope).
        #[arg(long)]
        scope: Option<String>,
        /// Grant types (default: authorization_code refresh_token, or client_credentials when no
        /// redirect URI is given); repeat for several.
        #[arg(long = "grant-type", alias = "grant")]
        grant_types: Vec<String>,
        /// Mark the client as a resource server: it may introspect any access token (RFC 7662).
        #[arg(long)]
        resource_server: bool,
    },
    /// List clients: who created each (registration or an administrator), its grant types, scope
    /// limit, authentication, when it was last used (a token issued to it; recorded at most once a
    /// minute) and its redirect URIs.
    List,
    /// Delete a client and revoke everything issued to it.
    Delete { client_id: String },
    /// Block a client identified by a metadata document URL (e.g.
    /// `https://app.example/client.json`) and revoke everything issued to it; `delete URL` unblocks.
    Block { url: String },
}

pub async fn run(
    command: ClientsCommand,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    let storage = open(settings, registry).await?;
    match command {
        ClientsCommand::Add {
            name,
            redirect_uris,
            public,
            scope,
            grant_types,
            resource_server,
        } => {
            let grant_types = if !grant_types.is_empty() {
                grant_types
            } else if redirect_uris.is_empty() {
                vec!["client_credentials".to_string()]
            } else {
                vec![
                    "authorization_code".to_string(),
                    "refresh_token".to_string(),
                ]
            };
            let mut metadata = json!({
                "client_name": name,
                "redirect_uris": redirect_uris,
                "grant_types": grant_types,
                "token_endpoint_auth_method": if public { "none" } else { "client_secret_basic" },
            });
            if let Some(scope) = scope {
                metadata["scope"] = json!(scope);
            }
            let resources = Resources::new(settings.resources()?);
            let policy = RegistrationPolicy::from_settings(&settings.registration)?;
            let (mut client, secret) = client_from_metadata(
                &resources,
                &policy,
                ClientOrigin::Administrator,
                &metadata,
                now(),
            )
            .map_err(|e| anyhow::anyhow!("{}: {}", e.code.as_str(), e.description))?;
            client.resource_server = resource_server;
            storage.clients.insert_client(client.clone()).await?;
            crate::say!("client_id: {}", client.client_id);
            if let Some(secret) = secret {
                crate::say!("client_secret: {secret}");
                crate::say!("(the secret is shown only now; only its hash is stored)");
            }
        }
        ClientsCommand::List => {
            let mut rows = vec![[
                "CLIENT_ID".to_string(),
                "NAME".into(),
                "CREATED_BY".into(),
                "GRANT_TYPES".into(),
                "SCOPE_LIMIT".into(),
                "AUTH".into(),
                "CREATED".into(),
                "LAST_USED".into(),
                "REDIRECT_URIS".into(),
            ]];
            // Unknown for a store that does not record it; "never" for a client with no token yet.
            let last_used = match storage.clients.clients_last_used().await {
                Ok(map) => Some(map),
                Err(ProviderError::Unsupported(_)) => None,
                Err(e) => return Err(e.into()),
            };
            for c in storage.clients.list_clients().await? {
                let created_by = match c.origin.as_str() {
                    "initial_access_token" => "registration (initial access token)".to_string(),
                    other => other.to_string(),
                };
                let name = c.client_name.as_deref().unwrap_or("-");
                rows.push([
                    c.client_id.clone(),
                    if c.resource_server {
                        format!("{name} [resource server]")
                    } else {
                        name.to_string()
                    },
                    created_by,
                    c.grant_types
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    c.scope
                        .as_ref()
                        .map(|s| s.join(" "))
                        .unwrap_or_else(|| "-".into()),
                    c.token_endpoint_auth_method.as_str().to_string(),
                    format_time(c.client_id_issued_at),
                    match &last_used {
                        None => "unknown".into(),
                        Some(map) => map
                            .get(&c.client_id)
                            .map(|t| format_time(*t))
                            .unwrap_or_else(|| "never".into()),
                    },
                    if c.redirect_uris.is_empty() {
                        "-".into()
                    } else {
                        c.redirect_uris.join(",")
                    },
                ]);
            }
            for line in table(&rows) {
                crate::say!("{line}");
            }
        }
        ClientsCommand::Delete { client_id } => {
            let remember_until = remember_revoked_until(&settings.tokens.lifetimes(), now());
            match delete_client(
                storage.clients.as_ref(),
                storage.tokens.as_ref(),
                &client_id,
                remember_until,
            )
            .await?
            {
                Some(grants) => {
                    crate::say!("deleted client {client_id} and revoked its {grants} grant(s)")
                }
                None => anyhow::bail!("no client with id {client_id}"),
            }
        }
        ClientsCommand::Block { url } => {
            let remember_until = remember_revoked_until(&settings.tokens.lifetimes(), now());
            match crate::oauth::cimd::block_client(
                storage.clients.as_ref(),
                storage.tokens.as_ref(),
                &url,
                remember_until,
                now(),
            )
            .await?
            {
                Some(grants) => println!("blocked client {url} and revoked its {grants} grant(s)"),
                None => println!("client {url} was already blocked"),
            }
        }
    }
    Ok(())
}
