//! Attack (issue 8 §8 "File permissions"): another local user reads the SQLite database (client
//! secrets' hashes, token records, sealed keys) or the key-encryption key because they were created
//! readable by everyone in a data directory that already existed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::processes::TempDir;
use crate::support::{Options, start_with};

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn sqlite_in(dir: &Path) -> Options {
    Options {
        storage: Some(format!(
            "kind = \"sqlite\"\ndata_dir = \"{}\"",
            dir.display()
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn attack_database_files_in_an_existing_data_directory_are_private() {
    let dir = TempDir::new("mcp-oauth-attack-perms");
    // An existing directory with the usual umask (0755), as an operator creates it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = start_with(sqlite_in(dir.path())).await;
    // A write, so the WAL and shared-memory files exist.
    s.register_public().await;
    for name in [
        "mcp-oauth.db",
        "mcp-oauth.db-wal",
        "mcp-oauth.db-shm",
        "key-encryption-key",
    ] {
        assert_eq!(
            mode(&dir.path().join(name)),
            0o600,
            "{name} is readable by others"
        );
    }
    assert_eq!(
        mode(dir.path()) & 0o077,
        0,
        "the data directory is open to others"
    );
    s.stop().await;
}

#[tokio::test]
async fn attack_a_readable_key_file_and_database_are_repaired_at_start() {
    let dir = TempDir::new("mcp-oauth-attack-perms");
    let s = start_with(sqlite_in(dir.path())).await;
    s.register_public().await;
    s.stop().await;
    // Someone (an old version, a restore from backup) left them readable by everyone.
    for name in ["mcp-oauth.db", "key-encryption-key"] {
        std::fs::set_permissions(
            dir.path().join(name),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let s = start_with(sqlite_in(dir.path())).await;
    for name in ["mcp-oauth.db", "key-encryption-key"] {
        assert_eq!(
            mode(&dir.path().join(name)),
            0o600,
            "{name} was not repaired"
        );
    }
    assert_eq!(
        mode(dir.path()) & 0o077,
        0,
        "the data directory was not repaired"
    );
    let log = crate::support::captured_log();
    assert!(
        log.contains("readable by other users"),
        "the repair is logged as a warning"
    );
    s.stop().await;
}
