//! The per-record cross-process lock: an exclusive `flock`-style lock (std `File::lock`) on
//! `<record>.lock` beside the record. It serialises the *decision* to refresh, not only the write:
//! lock, re-read, use what a sibling stored or refresh and write, unlock.

use std::fs::{File, OpenOptions};
use std::path::Path;

use super::RecordLock;
use crate::error::{Error, Result};

/// A held lock; the operating system releases it when the file is closed (also on a crash).
pub struct FileLock {
    _file: File,
}

impl RecordLock for FileLock {}

/// Blocks until the exclusive lock on `path` is held.
pub fn lock_file(path: &Path) -> Result<FileLock> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts
        .open(path)
        .map_err(|e| Error::store(path, format!("cannot open the lock file: {e}")))?;
    file.lock()
        .map_err(|e| Error::store(path, format!("cannot take the lock: {e}")))?;
    Ok(FileLock { _file: file })
}
