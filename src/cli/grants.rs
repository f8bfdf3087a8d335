//! `mcp-oauth grants …`: the live grants (one per sign-in and consent, or per `client_credentials`
//! token), listed without any token value, and revoked by user, client or id.

use clap::{ArgGroup, Subcommand};
use mcp_oauth_provider::{GrantFilter, Storage};

use crate::cli::admin::{format_time, open};
use crate::config::Settings;
use crate::oauth::grants::{end_user_grants, remember_revoked_until};
use crate::registry::Registry;
use crate::state::now;

#[derive(Debug, Subcommand)]
pub enum GrantsCommand {
    /// List live grants (never token values).
    List {
        /// Only this user's grants (a local username, or a subject).
        #[arg(long)]
        user: Option<String>,
        /// Only this client's grants.
        #[arg(long)]
        client: Option<String>,
    },
    /// Revoke grants: every grant of a user (and their remembered consent), of a client, or one.
    #[command(group(ArgGroup::new("which").required(true).args(["user", "client", "id"])))]
    Revoke {
        #[arg(long)]
        user: Option<String>,
        #[arg(long)]
        client: Option<String>,
        /// A grant id from `grants list`.
        #[arg(long)]
        id: Option<String>,
    },
}

/// The subject of `user`: a local account's subject when one has that username, else `user` itself
/// (directory users are known by their subject).
async fn subject_of(storage: &Storage, user: &str) -> anyhow::Result<String> {
    if let Some(users) = &storage.users
        && let Some(record) = users.get_user(user).await?
    {
        return Ok(record.subject);
    }
    Ok(user.to_string())
}

pub async fn run(
    command: GrantsCommand,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    let storage = open(settings, registry).await?;
    let t = now();
    let remember_until = remember_revoked_until(&settings.tokens.lifetimes(), t);
    match command {
        GrantsCommand::List { user, client } => {
            let subject = match user {
                Some(u) => Some(subject_of(&storage, &u).await?),
                None => None,
            };
            let filter = GrantFilter {
                subject,
                client_id: client,
            };
            let grants = storage.tokens.list_grants(&filter, t).await?;
            if grants.is_empty() {
                crate::say!("no live grants");
            }
            for g in grants {
                crate::say!(
                    "{}\tuser={}\tclient={}\tresource={}\tissued={}\texpires={}\t{}",
                    g.family_id,
                    g.subject,
                    g.client_id,
                    g.resource,
                    format_time(g.issued_at),
                    format_time(g.expires_at),
                    if g.refreshable {
                        "refreshable"
                    } else {
                        "access only"
                    }
                );
            }
        }
        GrantsCommand::Revoke { user, client, id } => {
            if let Some(user) = user {
                let subject = subject_of(&storage, &user).await?;
                let n = end_user_grants(
                    storage.tokens.as_ref(),
                    storage.interactions.as_ref(),
                    &subject,
                    remember_until,
                )
                .await?;
                crate::say!("revoked {n} grant(s) of {user} and forgot their remembered consent");
            } else if let Some(client) = client {
                let filter = GrantFilter {
                    subject: None,
                    client_id: Some(client.clone()),
                };
                let n = storage
                    .tokens
                    .revoke_grants(&filter, remember_until)
                    .await?;
                crate::say!("revoked {n} grant(s) of client {client}");
            } else if let Some(id) = id {
                storage.tokens.revoke_family(&id, remember_until).await?;
                crate::say!("revoked grant {id}");
            }
        }
    }
    Ok(())
}
