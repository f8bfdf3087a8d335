//! `mcp-oauth users …`: local accounts (argon2id password hashes in the storage backend).

use anyhow::Context;
use clap::Subcommand;
use mcp_oauth_provider::{ProviderError, Storage, UserRecord};

use crate::cli::admin::{format_time, open, read_stdin_secret, table};
use crate::cli::password_input::read_new_password;
use crate::config::Settings;
use crate::oauth::grants::{end_user_grants, remember_revoked_until};
use crate::oauth::login_throttle::{LoginThrottle, normalize_username, username_key};
use crate::registry::Registry;
use crate::say;
use crate::state::now;
use crate::users::password::hash_password;
use crate::users::rules::check_username;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account. The password is asked for twice on a terminal (hidden), or read from
    /// stdin with --password-stdin; it must have at least `[users] min_password_length` characters.
    /// Usernames: letters, digits and . _ - @, starting with a letter or digit, at most 64.
    Add {
        name: String,
        /// Read the password from stdin instead of a prompt (passwords never go on the command
        /// line).
        #[arg(long)]
        password_stdin: bool,
        /// The token `sub` for this user (default: the username).
        #[arg(long)]
        subject: Option<String>,
    },
    /// List accounts, with those the sign-in throttle holds locked.
    List,
    /// Change an account's password (prompted for on a terminal, or --password-stdin); ends the
    /// user's grants.
    Passwd {
        name: String,
        /// Read the password from stdin instead of a prompt.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Clear the failed sign-ins the throttle counts for a username (any account kind, local or
    /// directory), so it may sign in again at once.
    Unlock { name: String },
    /// Delete an account; ends the user's grants.
    Delete { name: String },
    /// Read a password from stdin and print its argon2id PHC string (for [[users.accounts]]).
    HashPassword,
}

/// `users hash-password` needs no configuration.
pub fn hash_password_cmd() -> anyhow::Result<()> {
    let password = read_stdin_secret("password")?;
    crate::say!("{}", hash_password(&password)?);
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
    let policy = *LoginThrottle::new(&settings.login).policy();
    if let UsersCommand::Unlock { name } = &command {
        let cleared = storage
            .throttle
            .clear_username(&username_key(name))
            .await
            .context("clearing the sign-in throttle")?;
        if cleared == 0 {
            say!("{name} was not locked (no failed sign-ins counted)");
        } else {
            say!("unlocked {name}: cleared {cleared} failed sign-in counter(s)");
        }
        return Ok(());
    }
    let users = storage
        .users
        .clone()
        .context("the configured storage backend keeps no local accounts")?;
    let min = settings.users.min_password_length;
    match command {
        UsersCommand::Add {
            name,
            subject,
            password_stdin,
        } => {
            check_username(&name)?;
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
            if users.get_user(&name).await?.is_some() {
                anyhow::bail!("user {name} already exists");
            }
            let password = read_new_password(&name, password_stdin, min)?;
            let record = UserRecord {
                subject: subject.unwrap_or_else(|| name.clone()),
                username: name.clone(),
                password_hash: hash_blocking(password).await?,
                created_at: now(),
            };
            match users.insert_user(record).await {
                Ok(()) => crate::say!("added user {name}"),
                Err(ProviderError::Conflict(_)) => anyhow::bail!("user {name} already exists"),
                Err(e) => return Err(e.into()),
            }
        }
        UsersCommand::List => {
            let t = now();
            let mut rows = vec![[
                "USERNAME".to_string(),
                "SUBJECT".into(),
                "CREATED".into(),
                "SIGN-IN".into(),
            ]];
            for u in users.list_users().await? {
                let lock = match storage
                    .throttle
                    .username_counters(&username_key(&u.username))
                    .await
                {
                    Ok(c) => match policy.locked_until(&c, t) {
                        Some(until) => format!(
                            "locked until {} (mcp-oauth users unlock {})",
                            format_time(until),
                            u.username
                        ),
                        None if c.user.failures > 0 => {
                            format!("ok ({} recent failure(s))", c.user.failures)
                        }
                        None => "ok".into(),
                    },
                    Err(ProviderError::Unsupported(_)) => "unknown".into(),
                    Err(e) => return Err(e.into()),
                };
                rows.push([u.username, u.subject, format_time(u.created_at), lock]);
            }
            for line in table(&rows) {
                say!("{line}");
            }
        }
        UsersCommand::Passwd {
            name,
            password_stdin,
        } => {
            let Some(user) = users.get_user(&name).await? else {
                anyhow::bail!("no user named {name}");
            };
            let hash = hash_blocking(read_new_password(&name, password_stdin, min)?).await?;
            if !users.set_password_hash(&name, &hash).await? {
                anyhow::bail!("no user named {name}");
            }
            // A new password ends every session the old one opened (issue 8 §3).
            let n = end_grants(&storage, settings, &user.subject).await?;
            crate::say!("password of {name} changed; revoked {n} grant(s)");
        }
        UsersCommand::Delete { name } => {
            let Some(user) = users.get_user(&name).await? else {
                anyhow::bail!("no user named {name}");
            };
            if !users.delete_user(&name).await? {
                anyhow::bail!("no user named {name}");
            }
            let n = end_grants(&storage, settings, &user.subject).await?;
            crate::say!("deleted user {name}; revoked {n} grant(s)");
        }
        // Dispatched by `cli::run_with` before any configuration is read.
        UsersCommand::HashPassword => hash_password_cmd()?,
        // Served above, before the local accounts are needed.
        UsersCommand::Unlock { .. } => {}
    }
    Ok(())
}
