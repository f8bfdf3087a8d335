//! The default [`TokenStore`]: a private directory with one encrypted file per record.
//!
//! - File names are hashes of the server URL and the issuer, so the directory listing reveals
//!   neither; the record itself says which it is.
//! - Writes are atomic: a private temp file in the same directory, `fsync`, `rename`, then `fsync`
//!   of the directory. Mode 0600 for files, 0700 for the directory.
//! - A record that does not open (wrong key, truncated, corrupted) is an error that names the file;
//!   it is never overwritten by `save` and never deleted except by an explicit `delete`.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::crypto;
use super::key::{KeyOrigin, StoreKey};
use super::lock::lock_file;
use super::{Record, RecordKey, RecordLock, TokenStore};
use crate::error::{Error, Result};

pub const STORE_DIR_ENV: &str = "MCP_OAUTH_CLIENT_STORE";
const EXT: &str = "record";

/// Encrypted records in a directory.
#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
    key: StoreKey,
    key_origin: KeyOrigin,
}

impl FileStore {
    /// The store in `dir` with the key from [`StoreKey::resolve`].
    pub fn open(dir: &Path) -> Result<Self> {
        create_private_dir(dir)?;
        let (key, key_origin) = StoreKey::resolve(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            key,
            key_origin,
        })
    }

    /// The store in `dir` with an explicit key (applications with their own keyring).
    pub fn with_key(dir: &Path, key: StoreKey) -> Result<Self> {
        create_private_dir(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            key,
            key_origin: KeyOrigin::Env,
        })
    }

    /// `$MCP_OAUTH_CLIENT_STORE`, else `$XDG_DATA_HOME/mcp-oauth/client`, else
    /// `~/.local/share/mcp-oauth/client` (`%APPDATA%\mcp-oauth\client` on Windows).
    pub fn default_dir() -> Result<PathBuf> {
        if let Some(d) = std::env::var_os(STORE_DIR_ENV) {
            return Ok(PathBuf::from(d));
        }
        if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
            return Ok(PathBuf::from(d).join("mcp-oauth").join("client"));
        }
        if let Some(d) = std::env::var_os("APPDATA") {
            return Ok(PathBuf::from(d).join("mcp-oauth").join("client"));
        }
        if let Some(h) = std::env::var_os("HOME") {
            return Ok(PathBuf::from(h).join(".local/share/mcp-oauth/client"));
        }
        Err(Error::Usage(format!(
            "cannot tell where to keep tokens (no HOME). Set {STORE_DIR_ENV} to a directory"
        )))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn key_origin(&self) -> &KeyOrigin {
        &self.key_origin
    }

    /// The file that holds `key`'s record.
    pub fn record_path(&self, key: &RecordKey) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.{EXT}",
            short_hash(&key.server),
            short_hash(&key.issuer)
        ))
    }

    fn read(&self, path: &Path) -> Result<Option<Record>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::store(path, e)),
        };
        let name = file_name(path);
        let unreadable = |reason: String| Error::UnreadableRecord {
            path: path.to_path_buf(),
            reason,
        };
        let plain = crypto::open(&self.key, &name, &bytes).map_err(unreadable)?;
        let record: Record = serde_json::from_slice(&plain)
            .map_err(|e| unreadable(format!("its content is not a record ({e})")))?;
        Ok(Some(record))
    }

    fn record_files(&self, prefix: &str) -> Result<Vec<PathBuf>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::store(&self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::store(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(prefix) && name.ends_with(&format!(".{EXT}")) {
                out.push(entry.path());
            }
        }
        out.sort();
        Ok(out)
    }
}

impl TokenStore for FileStore {
    fn load(&self, key: &RecordKey) -> Result<Option<Record>> {
        self.read(&self.record_path(key))
    }

    fn find(&self, server: &str) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        for path in self.record_files(&format!("{}-", short_hash(server)))? {
            if let Some(r) = self.read(&path)? {
                out.push(r);
            }
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
        Ok(out)
    }

    fn list(&self) -> Result<Vec<Result<Record>>> {
        Ok(self
            .record_files("")?
            .into_iter()
            .filter_map(|p| self.read(&p).transpose())
            .collect())
    }

    fn save(&self, record: &Record) -> Result<()> {
        let path = self.record_path(&record.key);
        // Never replace what cannot be read: it may be tokens sealed under another key.
        self.read(&path)?;
        let json = serde_json::to_vec(record).map_err(|e| Error::store(&path, e))?;
        let sealed = crypto::seal(&self.key, &file_name(&path), &json)
            .map_err(|e| Error::store(&path, e))?;
        write_atomic(&path, &sealed)
    }

    fn delete(&self, key: &RecordKey) -> Result<bool> {
        remove(&self.record_path(key))
    }

    fn delete_server(&self, server: &str) -> Result<usize> {
        let mut n = 0;
        for path in self.record_files(&format!("{}-", short_hash(server)))? {
            if remove(&path)? {
                n += 1;
            }
        }
        Ok(n)
    }

    fn lock(&self, key: &RecordKey) -> Result<Box<dyn RecordLock>> {
        let mut path = self.record_path(key);
        path.set_extension("lock");
        Ok(Box::new(lock_file(&path)?))
    }
}

fn remove(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::store(path, e)),
    }
}

fn short_hash(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Creates `dir` (and parents) with mode 0700 where it does not exist; an existing directory that
/// others can enter is narrowed to 0700.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(dir).map_err(|e| Error::store(dir, e))?;
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
                    |e| {
                        Error::store(
                            dir,
                            format!("cannot make the directory private (0700): {e}"),
                        )
                    },
                )?;
                tracing::info!(dir = %dir.display(), "made the token store directory private (0700)");
            }
        }
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
        .map_err(|e| Error::store(dir, format!("cannot create the directory: {e}")))
}

/// Creates a new file with mode 0600 holding `contents`, synced to disk.
pub fn write_private_new(path: &Path, contents: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| Error::store(path, e))?;
    f.write_all(contents).map_err(|e| Error::store(path, e))?;
    f.sync_all().map_err(|e| Error::store(path, e))
}

/// Temp file + fsync + rename + directory fsync.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        file_name(path),
        crate::secret::random_urlsafe().map_err(|e| Error::store(path, e))?
    ));
    if let Err(e) = write_private_new(&tmp, contents) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::store(
            path,
            format!("cannot replace the record: {e}"),
        ));
    }
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
