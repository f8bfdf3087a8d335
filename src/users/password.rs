//! argon2id password hashing with the OWASP Password Storage Cheat Sheet parameters (m = 19 MiB,
//! t = 2, p = 1: the `argon2` crate's defaults), run on a bounded blocking pool.
//!
//! Hashing is CPU-bound (15–20 ms each); running it on the async workers would stall every other
//! request. A semaphore limits concurrent hashes (default: cores − 1, at least 1), so a burst of
//! logins queues here instead of starving the token endpoint.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use mcp_oauth_provider::{ProviderError, ProviderResult};
use tokio::sync::Semaphore;

/// How long a login may wait for a hashing slot before the server answers "temporarily unavailable".
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Hashes a password into a PHC string (blocking; call from a blocking context or the CLI).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    // Argon2::default() is argon2id v19, m = 19456 KiB, t = 2, p = 1; the salt comes from the OS RNG.
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

/// Verifies a password against a PHC string (blocking). A malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The bounded pool.
#[derive(Clone)]
pub struct PasswordPool {
    permits: Arc<Semaphore>,
}

impl PasswordPool {
    /// `concurrency` 0 = cores − 1 (at least 1).
    pub fn new(concurrency: usize) -> Self {
        let n = if concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1)
        } else {
            concurrency
        };
        Self {
            permits: Arc::new(Semaphore::new(n)),
        }
    }

    /// Verifies on the blocking pool, waiting for a slot at most `QUEUE_TIMEOUT` (10 s).
    pub async fn verify(&self, password: String, phc: String) -> ProviderResult<bool> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| ProviderError::unavailable_msg("too many sign-ins at once"))?
            .map_err(|_| ProviderError::backend_msg("password pool closed"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            verify_password(&password, &phc)
        })
        .await
        .map_err(|e| ProviderError::backend("password verification task failed", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a phc string"));
    }
}
