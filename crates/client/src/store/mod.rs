//! The token store (the original project's TokenStorage; MCP *Token Handling*: clients MUST store
//! tokens securely).
//!
//! One [`Record`] per (MCP server URL, issuer): the authorization server's endpoints, the client
//! registration, the tokens with absolute expiry times, and the granted scopes (MCP 2026-07-28:
//! credentials are keyed by issuer and never reused across authorization servers).
//!
//! - [`file`]: the default store: one AEAD-encrypted file per record, atomic 0600 writes.
//! - [`crypto`]: XChaCha20-Poly1305 sealing, bound to the record's file name.
//! - [`key`]: where the store key comes from (application keyring hook, `MCP_OAUTH_STORE_KEY`,
//!   0600 key file).
//! - [`lock`]: the per-record cross-process lock that serialises refreshes.
//!
//! Applications bring their own storage by implementing [`TokenStore`].

pub mod crypto;
pub mod file;
pub mod key;
pub mod lock;

use serde::{Deserialize, Serialize};

use crate::discovery::AuthServerMetadata;
use crate::error::Result;
use crate::registration::ClientRegistration;
use crate::secret::Secret;

pub use file::FileStore;
pub use key::StoreKey;

/// Tokens as issued, with absolute times (Unix seconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    pub issued_at: i64,
    /// `None` when the server did not say (`expires_in` is optional).
    pub expires_at: Option<i64>,
    /// Granted scopes (the token response's `scope`, else what was asked for).
    pub scopes: Vec<String>,
}

impl Tokens {
    /// True when the access token should be refreshed now: less than `skew` seconds left, with the
    /// skew capped at half the token's lifetime (a 5-second token is not "always expiring").
    pub fn needs_refresh(&self, now: i64, skew: i64) -> bool {
        match self.expires_at {
            None => false,
            Some(exp) => {
                let lifetime = (exp - self.issued_at).max(0);
                let skew = skew.min(lifetime / 2);
                exp - skew <= now
            }
        }
    }
}

/// Which record: the canonical MCP server URL and the authorization server's issuer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordKey {
    pub server: String,
    pub issuer: String,
}

/// Everything stored for one (server, issuer).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub key: RecordKey,
    pub auth_server: AuthServerMetadata,
    /// `None` after the server forgot the client (`invalid_client`); redone at the next login.
    pub registration: Option<ClientRegistration>,
    pub tokens: Option<Tokens>,
    pub updated_at: i64,
}

/// A held per-record lock; dropping it releases the lock.
pub trait RecordLock: Send {}

/// Storage for records. Implementations MUST make `save` atomic (a reader sees the old record or
/// the new one, never a mix), MUST NOT overwrite or delete a record they cannot read except
/// through `delete`, and MUST make `lock` exclusive across every process sharing the storage.
pub trait TokenStore: Send + Sync {
    /// The record for `key`; `Ok(None)` when there is none; an error when it exists but cannot be
    /// read.
    fn load(&self, key: &RecordKey) -> Result<Option<Record>>;
    /// Every record of `server` (one per issuer), newest first.
    fn find(&self, server: &str) -> Result<Vec<Record>>;
    /// Every record, each loaded or with the error that prevents reading it.
    fn list(&self) -> Result<Vec<Result<Record>>>;
    fn save(&self, record: &Record) -> Result<()>;
    /// Deletes the record even when it cannot be read; `Ok(false)` when there was none.
    fn delete(&self, key: &RecordKey) -> Result<bool>;
    /// Deletes every record file of `server`, readable or not; returns how many.
    fn delete_server(&self, server: &str) -> Result<usize>;
    /// Blocks until this process holds the record's exclusive lock.
    fn lock(&self, key: &RecordKey) -> Result<Box<dyn RecordLock>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_skew_is_capped_at_half_the_lifetime() {
        let t = |issued, exp| Tokens {
            access_token: Secret::new("a"),
            refresh_token: None,
            issued_at: issued,
            expires_at: exp,
            scopes: vec![],
        };
        assert!(!t(0, Some(3600)).needs_refresh(3000, 60));
        assert!(t(0, Some(3600)).needs_refresh(3541, 60));
        assert!(
            !t(0, Some(5)).needs_refresh(1, 60),
            "a fresh 5 s token is used"
        );
        assert!(t(0, Some(5)).needs_refresh(3, 60));
        assert!(!t(0, None).needs_refresh(1_000_000, 60));
    }
}
