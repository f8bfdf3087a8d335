//! `mcp-oauth users …`: local accounts (argon2id password hashes in the storage backend).

use anyhow::Context;
use clap::Subcommand;
use mcp_oauth_provider::{ProviderError, Storage, UserRecord};

use crate::cli::admin::{format_time, open, read_stdin_secret};
use crate::config::Settings;
use crate::oauth::grants::{end_user_grants, remember_revoked_until};
use crate::oauth::login_throttle::normalize_username;
use crate::registry::Registry;
use crate::state::now;
use crate::users::password::hash_password;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account; the password is read from stdin.
    Add {
        name: String,
        /// Read the password from stdin (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// The token `sub` for this user (default: the username).
        #[arg(long)]
        subject: Option<String>,
    },
    /// List accounts.
    List,
    /// Change an account's password (read from stdin); ends the user's grants.
    Passwd {
        name: String,
        /// Read the password from stdin (the default; accepted for symmetry with `add`).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Delete an account; ends the user's grants.
    Delete { name: String },
    /// Read a password from stdin and print its argon2id PHC string (for [[users.accounts]]).
    HashPassword,
}

/// `users hash-password` needs no configuration.
pub fn hash_password_cmd() -> anyhow::Result<()> {
    let password = read_stdin_secret("password")?;
    println!("{}", hash_password(&password)?);
    Ok(())
}

/// Ends every grant of `subject` and forgets its remembered consent.
async fn end_grants(storage: &Storage, settings: &Settings, subject: &str) -> anyhow::Result<u64> {
    Ok(end_user_grants(
        storage.tokens.as_ref(),
        storage.interactions.as_ref(),
        subject,
        remember_revoked_until(&settings.tokens.lifetimes(), now()),
    )
    .await?)
}

async fn hash_blocking(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await?
}

pub async fn run(
    command: UsersCommand,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    let storage = open(settings, registry).await?;
    let users = storage
        .users
        .clone()
        .context("the configured storage backend keeps no local accounts")?;
    match command {
        UsersCommand::Add { name, subject, .. } => {
            let name = name.trim().to_string();
            if name.is_empty() {
                anyhow::bail!("the username must not be empty");
            }
            // The sign-in throttle counts names that differ only in case, width or invisible
            // characters as one; two such accounts would share (and could exhaust) one limit.
            let key = normalize_username(&name);
            if let Some(twin) = users
                .list_users()
                .await?
                .into_iter()
                .find(|u| u.username != name && normalize_username(&u.username) == key)
            {
                anyhow::bail!(
                    "user {} already exists, and {name} is the same sign-in name to the sign-in \
                     limit (names that differ only in case, character width or invisible \
                     characters count as one); choose another name",
                    twin.username
                );
            }
            let password = read_stdin_secret("password")?;
            let record = UserRecord {
                subject: subject.unwrap_or_else(|| name.clone()),
                username: name.clone(),
                password_hash: hash_blocking(password).await?,
                created_at: now(),
            };
            match users.insert_user(record).await {
                Ok(()) => println!("added user {name}"),
                Err(ProviderError::Conflict(_)) => anyhow::bail!("user {name} already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        UsersCommand::List => {
            for u in users.list_users().await? {
                println!(
                    "{}\tsub={}\tcreated={}",
                    u.username,
                    u.subject,
                    format_time(u.created_at)
                );
            }
        }
        UsersCommand::Passwd { name, .. } => {
            let Some(user) = users.get_user(&name).await? else {
                anyhow::bail!("no user named {name}");
            };
            let hash = hash_blocking(read_stdin_secret("password")?).await?;
            if !users.set_password_hash(&name, &hash).await? {
                anyhow::bail!("no user named {name}");
            }
            // A new password ends every session the old one opened (issue 8 §3).
            let n = end_grants(&storage, settings, &user.subject).await?;
            println!("password of {name} changed; revoked {n} grant(s)");
        }
        UsersCommand::Delete { name } => {
            let Some(user) = users.get_user(&name).await? else {
                anyhow::bail!("no user named {name}");
            };
            if !users.delete_user(&name).await? {
                anyhow::bail!("no user named {name}");
            }
            let n = end_grants(&storage, settings, &user.subject).await?;
            println!("deleted user {name}; revoked {n} grant(s)");
        }
        // Dispatched by `cli::run_with` before any configuration is read.
        UsersCommand::HashPassword => hash_password_cmd()?,
    }
    Ok(())
}
