//! Owner-only data directories and files, for every backend that keeps files (issue 8 §8; CWE-276 *Incorrect Default
//! Permissions*; OWASP ASVS 4.0 V14.1 / V8.3: stored secrets protected from other local users).
//!
//! SQLite creates a database file with the process umask (usually 0644) and gives its `-wal` and
//! `-shm` files the database file's mode. So the database file is created here first, empty, with
//! mode 0600, and SQLite fills it in; the WAL and shared-memory files inherit 0600.
//!
//! Files or a data directory that other users can already read (left by an older version, restored
//! from a backup) are repaired to 0600 / 0700 with a warning rather than refused: refusing would
//! stop every existing installation at its first start after an upgrade, and the repair takes away
//! nothing the server needs. A data directory that other users can *write* is refused: it is a
//! shared directory (like `/tmp`), and changing its mode would break other programs.

use std::path::{Path, PathBuf};

use crate::{ProviderError, ProviderResult};

/// Mode bits that let group or others in.
#[cfg(unix)]
const OTHERS: u32 = 0o077;

/// Creates `dir` (and parents) readable only by the owner; an existing `dir` is made owner-only
/// (see [`secure_existing_dir`]).
pub fn create_private_dir(dir: &Path) -> ProviderResult<()> {
    if dir.exists() {
        return secure_existing_dir(dir);
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        ProviderError::backend(format!("creating data directory {}", dir.display()), e)
    })?;
    #[cfg(unix)]
    restrict(dir, 0o700)?;
    Ok(())
}

/// Makes an existing data directory owner-only (0700), refusing a directory others may write to.
pub fn secure_existing_dir(dir: &Path) -> ProviderResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(|e| ProviderError::backend(format!("reading {}", dir.display()), e))?
            .permissions()
            .mode();
        if mode & 0o022 != 0 {
            return Err(ProviderError::backend_msg(format!(
                "data directory {} is writable by other users (mode {:o}); choose a private \
                 directory ([storage] data_dir)",
                dir.display(),
                mode & 0o7777
            )));
        }
        if mode & OTHERS != 0 {
            restrict(dir, 0o700)?;
            tracing::warn!(
                path = %dir.display(),
                was = format!("{:o}", mode & 0o777),
                "the data directory was readable by other users; changed to 0700"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Creates the database file at `path` (mode 0600) when it is missing; makes an existing one and
/// its `-wal` / `-shm` files owner-only.
pub fn secure_database_file(path: &Path) -> ProviderResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(ProviderError::backend(
                    format!("creating database {}", path.display()),
                    e,
                ));
            }
        }
        for file in [
            path.to_path_buf(),
            with_suffix(path, "-wal"),
            with_suffix(path, "-shm"),
        ] {
            secure_existing_file(&file)?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Makes an existing file owner-only (0600) with a warning; a missing file is fine.
pub fn secure_existing_file(path: &Path) -> ProviderResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = match std::fs::metadata(path) {
            Ok(m) => m.permissions().mode(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(ProviderError::backend(
                    format!("reading {}", path.display()),
                    e,
                ));
            }
        };
        if mode & OTHERS != 0 {
            restrict(path, 0o600)?;
            tracing::warn!(
                path = %path.display(),
                was = format!("{:o}", mode & 0o777),
                "the file was readable by other users; changed to 0600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> ProviderResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        ProviderError::backend(
            format!("restricting the permissions of {}", path.display()),
            e,
        )
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn temp_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "mcp-oauth-file-mode-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_database_file_is_owner_only_and_old_ones_are_repaired() {
        let d = temp_dir();
        let db = d.join("x.db");
        secure_database_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(with_suffix(&db, "-wal"), b"").unwrap();
        std::fs::set_permissions(
            with_suffix(&db, "-wal"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        secure_database_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&with_suffix(&db, "-wal")), 0o600);
        // A private file is left alone; a missing one is fine.
        secure_existing_file(&d.join("missing")).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn directories_are_repaired_unless_others_may_write() {
        let d = temp_dir();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        secure_existing_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        secure_existing_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = secure_existing_dir(&d).unwrap_err().to_string();
        assert!(err.contains("writable by other users"), "{err}");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        let _ = std::fs::remove_dir_all(&d);
    }
}
