//! `mcp-oauth keys rotate | list`: a rotated-in key is active in the store at once; running servers
//! sign with it from their next upkeep (every `[server] purge_interval`), and verify tokens it signed
//! at once (an unknown `kid` makes them reload). The previous key stays in the JWKS until every token
//! it signed has expired.

use clap::Subcommand;

use crate::cli::admin::{format_time, open};
use crate::config::Settings;
use crate::oauth::keys::KeyManager;
use crate::registry::{Registry, key_encryption_key};
use crate::state::now;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new signing key and make it active.
    Rotate,
    /// List signing keys.
    List,
}

pub async fn run(
    command: KeysCommand,
    settings: &Settings,
    registry: &Registry,
) -> anyhow::Result<()> {
    let storage = open(settings, registry).await?;
    match command {
        KeysCommand::Rotate => {
            let algorithm = settings.keys.algorithm.jwt();
            let manager = KeyManager::new(algorithm, key_encryption_key(settings, registry)?);
            let t = now();
            // Tokens signed by the old key live at most one access-token lifetime from now.
            let retire_at = t
                + i64::try_from(settings.tokens.access_token_ttl.as_secs()).unwrap_or(i64::MAX / 2)
                + 60;
            let had_active = storage.keys.list_keys().await?.iter().any(|k| k.active);
            let kid = manager.rotate(storage.keys.as_ref(), t, retire_at).await?;
            crate::say!("new active signing key: {kid}");
            crate::say!(
                "running servers on this store sign with it after their next upkeep, within \
                 [server] purge_interval ({}), and accept tokens it signed at once; a server \
                 started from now signs with it from the start",
                humantime::format_duration(settings.server.purge_interval)
            );
            if had_active {
                crate::say!(
                    "the previous key stays published until {}",
                    format_time(retire_at)
                );
            }
        }
        KeysCommand::List => {
            for k in storage.keys.list_keys().await? {
                let state = if k.active {
                    "active".to_string()
                } else {
                    match k.retire_at {
                        Some(at) => format!("retiring at {}", format_time(at)),
                        None => "inactive".to_string(),
                    }
                };
                crate::say!(
                    "{}\t{}\tcreated={}\t{}",
                    k.kid,
                    k.algorithm,
                    format_time(k.created_at),
                    state
                );
            }
        }
    }
    Ok(())
}
