//! Signing keys at rest: the private key is sealed with XChaCha20-Poly1305 under a 256-bit
//! key-encryption key (KEK) before it reaches the store, with the `kid` as associated data (a sealed
//! key cannot be swapped onto another kid). The store only ever sees `MOK1 ‖ nonce ‖ ciphertext`.
//!
//! Where the KEK comes from:
//! - `[keys] encryption_key` (base64 of 32 bytes, usually `MCP_OAUTH__KEYS__ENCRYPTION_KEY`), required
//!   for shared databases so every server can open the keys;
//! - otherwise, for the embedded SQLite default, a file `key-encryption-key` in the data directory,
//!   generated once with mode 0600;
//! - for the in-memory store, a random key for the life of the process.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use mcp_oauth_provider::{ProviderError, ProviderResult};

use crate::oauth::secrets::random_bytes;

const MAGIC: &[u8; 4] = b"MOK1";
const NONCE_LEN: usize = 24;
/// File name of the generated KEK in the data directory.
pub const KEK_FILE: &str = "key-encryption-key";

/// The key-encryption key. `Debug` never shows it.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(<redacted>)")
    }
}

impl KeyEncryptionKey {
    /// A random key (in-memory store).
    pub fn random() -> Self {
        Self(random_bytes())
    }

    /// Parses base64 (standard or URL-safe, padding optional) of exactly 32 bytes.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let t = text.trim();
        let bytes = STANDARD
            .decode(t)
            .or_else(|_| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')))
            .map_err(|_| {
                anyhow::anyhow!(
                    "keys.encryption_key is not base64 (generate one with: openssl rand -base64 32)"
                )
            })?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!(
                "keys.encryption_key must decode to exactly 32 bytes (openssl rand -base64 32)"
            )
        })?;
        Ok(Self(key))
    }

    /// Reads `dir/key-encryption-key`, creating it (mode 0600) when missing; an existing file or
    /// directory that others can read is made owner-only, with a warning.
    pub fn load_or_create_file(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEK_FILE);
        if path.exists() {
            // A key file (or its directory) others can read is repaired with a warning (see
            // `mcp_oauth_provider::files` for why repair, not refuse).
            mcp_oauth_provider::files::create_private_dir(dir)?;
            mcp_oauth_provider::files::secure_existing_file(&path)?;
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
            return Self::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
        }
        mcp_oauth_provider::files::create_private_dir(dir)?;
        let key = Self::random();
        let text = STANDARD.encode(key.0);
        write_private(&path, text.as_bytes())?;
        tracing::info!(path = %path.display(), "generated a key-encryption key for signing keys");
        Ok(key)
    }

    /// Seals a private key for the store.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> ProviderResult<Vec<u8>> {
        let cipher = XChaCha20Poly1305::new(&self.0.into());
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes()[..NONCE_LEN]
            .try_into()
            .map_err(|_| ProviderError::backend_msg("nonce length"))?;
        let nonce = XNonce::from(nonce_bytes);
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| ProviderError::backend_msg("sealing a signing key failed"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE_LEN + ct.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens a sealed private key.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> ProviderResult<Vec<u8>> {
        let body = sealed.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
            ProviderError::backend_msg(format!(
                "signing key {kid} is not sealed (stored by an incompatible version?)"
            ))
        })?;
        if body.len() < NONCE_LEN {
            return Err(ProviderError::backend_msg(format!(
                "signing key {kid} is truncated"
            )));
        }
        let (nonce, ct) = body.split_at(NONCE_LEN);
        let nonce_bytes: [u8; NONCE_LEN] = nonce
            .try_into()
            .map_err(|_| ProviderError::backend_msg("nonce length"))?;
        XChaCha20Poly1305::new(&self.0.into())
            .decrypt(&XNonce::from(nonce_bytes), Payload { msg: ct, aad: kid.as_bytes() })
            .map_err(|_| {
                ProviderError::backend_msg(format!(
                    "cannot decrypt signing key {kid}: the key-encryption key (keys.encryption_key) is not the one it was sealed with"
                ))
            })
    }
}

/// Writes a new file readable only by the owner.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let kek = KeyEncryptionKey::random();
        let sealed = kek.seal("kid1", b"secret key bytes").unwrap();
        assert!(
            !sealed.windows(6).any(|w| w == b"secret"),
            "ciphertext hides the plaintext"
        );
        assert_eq!(kek.open("kid1", &sealed).unwrap(), b"secret key bytes");
        assert!(kek.open("kid2", &sealed).is_err(), "bound to its kid");
        assert!(
            KeyEncryptionKey::random().open("kid1", &sealed).is_err(),
            "wrong KEK"
        );
        assert!(format!("{kek:?}").contains("redacted"));
    }

    #[test]
    fn parse_and_file() {
        assert!(KeyEncryptionKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
        assert!(KeyEncryptionKey::parse("short").is_err());
        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-kek-{}",
            crate::oauth::secrets::new_secret()
        ));
        let a = KeyEncryptionKey::load_or_create_file(&dir).unwrap();
        let b = KeyEncryptionKey::load_or_create_file(&dir).unwrap();
        assert_eq!(a.0, b.0, "the file is reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEK_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
