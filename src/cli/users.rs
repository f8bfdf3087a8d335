//! `mcp-oauth users …`: local account administration.

use std::io::Read;

use clap::Subcommand;

use crate::config::Settings;
use crate::registry::Registry;
use crate::users::password::hash_password;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Read a password from stdin and print its argon2id PHC string (for [[users.accounts]]).
    HashPassword,
}

/// Reads one password from stdin (a trailing newline is dropped) and prints the hash.
pub fn hash_password_cmd() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let password = input
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&input);
    if password.is_empty() {
        anyhow::bail!(
            "no password on stdin (example: printf '%s' 'secret' | mcp-oauth users hash-password)"
        );
    }
    println!("{}", hash_password(password)?);
    Ok(())
}

pub async fn run(
    command: UsersCommand,
    _settings: &Settings,
    _registry: &Registry,
) -> anyhow::Result<()> {
    match command {
        UsersCommand::HashPassword => hash_password_cmd(),
    }
}
