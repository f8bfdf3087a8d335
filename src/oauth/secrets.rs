//! Random secrets and their hashes.
//!
//! Codes, refresh tokens, client secrets and login-transaction ids are 256-bit random values from
//! the OS generator (OAuth 2.1 §7.5.1 asks ≥128 bits), base64url without padding. They are stored only
//! as SHA-256 hashes: they are high-entropy, so a fast hash is right (a slow password hash on
//! machine-generated secrets only costs throughput).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_oauth_provider::SecretHash;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// 32 random bytes from the OS.
pub fn random_bytes() -> [u8; 32] {
    let mut buf = [0u8; 32];
    // The OS generator failing means the machine cannot produce secrets at all; nothing sensible can
    // continue, and returning a predictable value would be worse than stopping.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("the operating system random generator failed");
    buf
}

/// A new 256-bit secret, base64url (43 characters).
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes())
}

/// SHA-256 of a secret, lowercase hex.
pub fn hash_secret(secret: &str) -> SecretHash {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    SecretHash(hex)
}

/// Constant-time check of a presented secret against a stored hash.
pub fn secret_matches(presented: &str, stored: &SecretHash) -> bool {
    let h = hash_secret(presented);
    h.0.as_bytes().ct_eq(stored.0.as_bytes()).into()
}

/// Constant-time string equality (CSRF tokens, browser bindings).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_and_distinct() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_sha256_hex() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_secret("abc").0,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(secret_matches("abc", &hash_secret("abc")));
        assert!(!secret_matches("abd", &hash_secret("abc")));
    }
}
