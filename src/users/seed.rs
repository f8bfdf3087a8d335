//! Accounts at start-up: `[[users.accounts]]` from config are written to the local user store, and
//! when no account exists at all an `admin` account is created with a random initial password.

use mcp_oauth_provider::{ProviderResult, UserRecord, UserStore};

use crate::config::UsersSettings;
use crate::state::now;

/// Writes the configured accounts (config is authoritative for them: a changed hash is updated).
pub async fn seed_accounts(store: &dyn UserStore, settings: &UsersSettings) -> ProviderResult<()> {
    for account in &settings.accounts {
        match store.get_user(&account.username).await? {
            Some(existing) if existing.password_hash == account.password_hash => {}
            Some(_) => {
                store
                    .set_password_hash(&account.username, &account.password_hash)
                    .await?;
            }
            None => {
                store
                    .insert_user(UserRecord {
                        username: account.username.clone(),
                        subject: account
                            .subject
                            .clone()
                            .unwrap_or_else(|| account.username.clone()),
                        password_hash: account.password_hash.clone(),
                        created_at: now(),
                    })
                    .await?;
            }
        }
    }
    Ok(())
}

/// Creates `admin` with a random password when the store holds no account; returns the password,
/// which the caller shows once and never logs.
pub async fn create_admin_if_empty(store: &dyn UserStore) -> anyhow::Result<Option<String>> {
    if !store.list_users().await?.is_empty() {
        return Ok(None);
    }
    let password = crate::oauth::secrets::new_secret()[..20].to_string();
    let to_hash = password.clone();
    let hash = tokio::task::spawn_blocking(move || crate::users::password::hash_password(&to_hash))
        .await??;
    store
        .insert_user(UserRecord {
            username: "admin".into(),
            subject: "admin".into(),
            password_hash: hash,
            created_at: now(),
        })
        .await?;
    Ok(Some(password))
}
