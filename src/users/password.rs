//! argon2id password hashing with the OWASP Password Storage Cheat Sheet parameters (m = 19 MiB,
//! t = 2, p = 1: the `argon2` crate's defaults). Both functions block: the `local` authenticator
//! runs them on the server's bounded pool (`mcp_oauth_provider::HashingPool`), the CLI directly.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

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
