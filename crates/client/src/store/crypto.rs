//! Records at rest: XChaCha20-Poly1305 (RFC 8439 AEAD with the extended 192-bit nonce), a fresh
//! random nonce per write, and the record's file name as associated data so a record copied over
//! another one does not open.
//!
//! Layout: `MAGIC || nonce (24) || ciphertext+tag`.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use super::key::StoreKey;
use crate::secret::random_bytes;

pub const MAGIC: &[u8] = b"mcp-oauth-client-record-v1\n";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Encrypts `plaintext` for the record `aad`.
pub fn seal(key: &StoreKey, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, String> {
    let nonce_bytes = random_bytes::<NONCE_LEN>().map_err(|e| format!("no randomness: {e}"))?;
    let cipher = XChaCha20Poly1305::new(&key.bytes().into());
    let ct = cipher
        .encrypt(
            &XNonce::from(nonce_bytes),
            Payload {
                msg: plaintext,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| "encryption failed".to_string())?;
    let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ct.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts a sealed record; the error says which of the three ways it failed.
pub fn open(key: &StoreKey, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
    let Some(body) = sealed.strip_prefix(MAGIC) else {
        return Err(if MAGIC.starts_with(sealed) {
            "the file is truncated (it ends inside its header)".into()
        } else {
            "the file is not an mcp-oauth token-store record (unknown header)".into()
        });
    };
    if body.len() < NONCE_LEN + TAG_LEN {
        return Err("the file is truncated".into());
    }
    let (nonce, ct) = body.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| "the file is truncated".to_string())?;
    XChaCha20Poly1305::new(&key.bytes().into())
        .decrypt(
            &XNonce::from(nonce),
            Payload {
                msg: ct,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| {
            "it does not decrypt: the store key is not the one it was written with, or the file \
             is truncated or corrupted"
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_failures() {
        let k = StoreKey::from_bytes([7; 32]);
        let sealed = seal(&k, "rec", b"hello").unwrap();
        assert_eq!(open(&k, "rec", &sealed).unwrap(), b"hello");
        assert!(open(&StoreKey::from_bytes([8; 32]), "rec", &sealed).is_err());
        assert!(
            open(&k, "other", &sealed).is_err(),
            "bound to the record name"
        );
        assert!(open(&k, "rec", &sealed[..sealed.len() - 1]).is_err());
        assert!(
            open(&k, "rec", &sealed[..10])
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            open(&k, "rec", b"{\"plain\": 1}")
                .unwrap_err()
                .contains("not an mcp-oauth")
        );
    }
}
