//! `mcp-oauth status`: the stored logins (server, issuer, client, scopes, expiry), never a token.

use clap::Args;
use mcp_oauth_client::TokenStore;
use mcp_oauth_client::registration::RegistrationSource;
use mcp_oauth_client::secret::unix_now;

use super::{StoreArgs, relative};

#[derive(Debug, Clone, Args)]
pub struct StatusCmd {
    #[command(flatten)]
    pub store: StoreArgs,
}

pub fn run(cmd: StatusCmd) -> anyhow::Result<()> {
    let store = cmd.store.open()?;
    println!(
        "Token store: {} (key from {})",
        store.dir().display(),
        store.key_origin()
    );
    let records = store.list()?;
    if records.is_empty() {
        println!("No stored logins. Log in with `mcp-oauth login URL`.");
        return Ok(());
    }
    let now = unix_now();
    for r in records {
        match r {
            Err(e) => println!("\n! {e}"),
            Ok(rec) => {
                println!("\n{}", rec.key.server);
                println!("  issuer:  {}", rec.key.issuer);
                match &rec.registration {
                    Some(reg) => println!(
                        "  client:  {} ({})",
                        reg.client_id,
                        match reg.source {
                            RegistrationSource::Preregistered => "pre-registered",
                            RegistrationSource::MetadataDocument => "client metadata document",
                            RegistrationSource::Dynamic => "dynamically registered",
                        }
                    ),
                    None => println!(
                        "  client:  (registration dropped; the next login registers again)"
                    ),
                }
                match &rec.tokens {
                    None => println!("  tokens:  none (log in again)"),
                    Some(t) => {
                        let scopes = t.scopes.join(" ");
                        println!(
                            "  scopes:  {}",
                            if scopes.is_empty() { "(none)" } else { &scopes }
                        );
                        match t.expires_at {
                            Some(exp) if exp > now => {
                                println!("  access:  expires {}", relative(exp - now))
                            }
                            Some(exp) => println!("  access:  expired {}", relative(exp - now)),
                            None => println!("  access:  no expiry given"),
                        }
                        println!(
                            "  refresh: {}",
                            if t.refresh_token.is_some() {
                                "yes"
                            } else {
                                "no"
                            }
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
