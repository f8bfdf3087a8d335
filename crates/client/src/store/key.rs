//! The store key: 32 random bytes, taken from, in order,
//!
//! 1. the OS keyring when one is reachable (Linux Secret Service through `secret-tool`, run
//!    without a shell; skipped when `MCP_OAUTH_STORE_KEYRING=0` or no session bus is there, as on
//!    headless machines and CI);
//! 2. `MCP_OAUTH_STORE_KEY` (base64 of 32 bytes);
//! 3. a 0600 key file `store.key` beside the records, created atomically on first use (several
//!    processes starting at once all end up with the same key).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::{Error, Result};
use crate::secret::random_bytes;

pub const KEY_ENV: &str = "MCP_OAUTH_STORE_KEY";
pub const KEYRING_ENV: &str = "MCP_OAUTH_STORE_KEYRING";
pub const KEY_FILE: &str = "store.key";
const KEYRING_SERVICE: &str = "mcp-oauth-client";

/// A 256-bit key. `Debug` never shows it.
#[derive(Clone)]
pub struct StoreKey([u8; 32]);

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey([redacted])")
    }
}

/// Where the key came from (for `status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    Keyring,
    Env,
    File(PathBuf),
}

impl std::fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyOrigin::Keyring => f.write_str("the OS keyring"),
            KeyOrigin::Env => write!(f, "${KEY_ENV}"),
            KeyOrigin::File(p) => write!(f, "the key file {}", p.display()),
        }
    }
}

impl StoreKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        StoreKey(bytes)
    }

    pub fn random() -> Result<Self> {
        random_bytes::<32>()
            .map(StoreKey)
            .map_err(|e| Error::Usage(format!("the system random generator failed: {e}")))
    }

    pub(crate) fn bytes(&self) -> [u8; 32] {
        self.0
    }

    /// Parses base64 of exactly 32 bytes.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("{} bytes, 32 expected", b.len()))?;
        Ok(StoreKey(arr))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key for the store in `dir`, from the first source that has one.
    pub fn resolve(dir: &Path) -> Result<(StoreKey, KeyOrigin)> {
        let key_file = dir.join(KEY_FILE);
        if keyring_wanted()
            && !key_file.exists()
            && let Some(key) = keyring::get_or_create()
        {
            return Ok((key, KeyOrigin::Keyring));
        }
        if let Ok(text) = std::env::var(KEY_ENV) {
            let key = StoreKey::parse(&text).map_err(|e| {
                Error::Usage(format!(
                    "{KEY_ENV} is not a valid store key ({e}). Set it to 32 random bytes in base64, \
                     e.g. `head -c 32 /dev/urandom | base64`"
                ))
            })?;
            return Ok((key, KeyOrigin::Env));
        }
        Ok((load_or_create_file(&key_file)?, KeyOrigin::File(key_file)))
    }
}

fn keyring_wanted() -> bool {
    !matches!(
        std::env::var(KEYRING_ENV).as_deref(),
        Ok("0" | "off" | "false" | "no")
    )
}

/// Reads the key file, or creates it: the key is written to a private temp file that is then
/// hard-linked into place, which fails if another process got there first (then its key is used).
fn load_or_create_file(path: &Path) -> Result<StoreKey> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return StoreKey::parse(&text).map_err(|e| Error::UnreadableRecord {
            path: path.to_path_buf(),
            reason: format!("the key file is damaged ({e})"),
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    super::file::create_private_dir(dir)?;
    let key = StoreKey::random()?;
    let tmp = dir.join(format!(
        ".{KEY_FILE}.{}.tmp",
        crate::secret::random_urlsafe().map_err(|e| Error::store(dir, e))?
    ));
    super::file::write_private_new(&tmp, key.to_base64().as_bytes())?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "created a token-store key file");
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(path).map_err(|e| Error::store(path, e))?;
            StoreKey::parse(&text).map_err(|e| Error::UnreadableRecord {
                path: path.to_path_buf(),
                reason: format!("the key file is damaged ({e})"),
            })
        }
        Err(e) => Err(Error::store(
            path,
            format!("cannot create the key file: {e}"),
        )),
    }
}

/// The Secret Service through `secret-tool` (libsecret), started without a shell.
mod keyring {
    use super::*;

    fn reachable() -> bool {
        cfg!(target_os = "linux") && std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
    }

    pub fn get_or_create() -> Option<StoreKey> {
        if !reachable() {
            return None;
        }
        let out = Command::new("secret-tool")
            .args(["lookup", "service", KEYRING_SERVICE, "key", "store"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if out.status.success()
            && let Ok(key) = StoreKey::parse(&String::from_utf8_lossy(&out.stdout))
        {
            return Some(key);
        }
        let key = StoreKey::random().ok()?;
        let mut child = Command::new("secret-tool")
            .args([
                "store",
                "--label=mcp-oauth client token store",
                "service",
                KEYRING_SERVICE,
                "key",
                "store",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        child
            .stdin
            .take()?
            .write_all(key.to_base64().as_bytes())
            .ok()?;
        let ok = child.wait().ok()?.success();
        ok.then_some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_needs_exactly_32_bytes() {
        let k = StoreKey::random().unwrap();
        assert_eq!(StoreKey::parse(&k.to_base64()).unwrap().bytes(), k.bytes());
        assert!(StoreKey::parse("c2hvcnQ=").unwrap_err().contains("5 bytes"));
        assert!(StoreKey::parse("!!!").is_err());
        assert_eq!(format!("{k:?}"), "StoreKey([redacted])");
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-client-key-{}",
            crate::secret::random_urlsafe().unwrap()
        ));
        let path = dir.join(KEY_FILE);
        let a = load_or_create_file(&path).unwrap();
        let b = load_or_create_file(&path).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "garbage").unwrap();
        let err = load_or_create_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("store.key") && err.contains("damaged"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
