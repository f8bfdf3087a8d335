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
    crate::say!(
        "Token store: {} (key from {})",
        store.dir().display(),
        store.key_origin()
    );
    let records = store.list()?;
    if records.is_empty() {
        crate::say!("No stored logins. Log in with `mcp-oauth login URL`.");
        return Ok(());
    }
    let now = unix_now();
    for r in records {
        match r {
            Err(e) => crate::say!("\n! {e}"),
            Ok(rec) => {
                crate::say!("\n{}", rec.key.server);
                crate::say!("  issuer:  {}", rec.key.issuer);
                match &rec.registration {
                    Some(reg) => crate::say!(
                        "  client:  {} ({})",
                        reg.client_id,
                        match reg.source {
                            RegistrationSource::Preregistered => "pre-registered",
                            RegistrationSource::MetadataDocument => "client metadata document",
                            RegistrationSource::Dynamic => "dynamically registered",
                        }
                    ),
                    None => crate::say!(
                        "  client:  (registration dropped; the next login registers again)"
                    ),
                }
                match &rec.tokens {
                    None => crate::say!("  tokens:  none (log in again)"),
                    Some(t) => {
                        let scopes = t.scopes.join(" ");
                        crate::say!(
                            "  scopes:  {}",
                            if scopes.is_empty() { "(none)" } else { &scopes }
                        );
                        match t.expires_at {
                            Some(exp) if exp > now => {
                                crate::say!("  access:  expires {}", relative(exp - now))
                            }
                            Some(exp) => crate::say!("  access:  expired {}", relative(exp - now)),
                            None => crate::say!("  access:  no expiry given"),
                        }
                        crate::say!(
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
