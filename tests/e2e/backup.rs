//! `mcp-oauth backup` (issue 12, deployment): a copy taken while the server runs restores into a
//! working server: same signing keys (the key file travels with the database), same clients, and
//! the grants issued before the backup keep working.

use reqwest::StatusCode;
use serde_json::Value;

use crate::attack_grants::sqlite_server;
use crate::processes::{TempDir, run_cli};
use crate::support::*;

async fn kids(s: &TestServer) -> Vec<String> {
    let jwks: Value = http()
        .get(s.url("/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_into_a_working_server() {
    let data = TempDir::new("mcp-oauth-backup-data");
    let (s, cfg) = sqlite_server(&data, vec![]).await;
    let client = s.register_public().await;
    let code = s.obtain_code(&client).await;
    let tokens: Value = s.exchange(&client, &code).await.json().await.unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let before = kids(&s).await;

    let backup = TempDir::new("mcp-oauth-backup-copy");
    let target = backup.path().join("copy");
    let (ok, out, err) =
        run_cli(Some(&cfg), &["backup", target.to_str().unwrap()], &[], None).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("mcp-oauth.db") && out.contains("key-encryption-key"),
        "{out}"
    );
    #[cfg(unix)]
    for file in ["mcp-oauth.db", "key-encryption-key"] {
        assert_eq!(mode(&target.join(file)), 0o600, "{file} must be owner-only");
    }
    // Into a directory that is not empty: refused, nothing overwritten.
    let (ok, _, err) = run_cli(Some(&cfg), &["backup", target.to_str().unwrap()], &[], None).await;
    assert!(!ok && err.contains("not empty"), "{err}");
    s.stop().await;

    // Restore: a server on the copied directory.
    let restored = start_with(Options {
        storage: Some(format!(
            "kind = \"sqlite\"\ndata_dir = \"{}\"",
            target.display()
        )),
        ..Default::default()
    })
    .await;
    assert_eq!(
        kids(&restored).await,
        before,
        "the restored server publishes the same signing keys (it could open them)"
    );
    let r = restored.refresh(&client, &refresh).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a grant from before the backup keeps working after the restore"
    );
    restored.stop().await;
}

#[tokio::test]
async fn a_store_without_a_backup_of_its_own_says_what_to_use() {
    let dir = TempDir::new("mcp-oauth-backup-memory");
    let target = dir.path().join("copy");
    let (ok, _, err) = run_cli(
        None,
        &["backup", target.to_str().unwrap()],
        &[("MCP_OAUTH__STORAGE__KIND", "memory")],
        None,
    )
    .await;
    assert!(!ok && err.contains("no backup of its own"), "{err}");
    assert!(
        !target.exists(),
        "a failed backup leaves no directory behind"
    );
}

/// A store no server ran on yet has no key file: the copy is still taken, and says so.
#[tokio::test]
async fn a_store_no_server_ran_on_is_backed_up_without_a_key_file() {
    let dir = TempDir::new("mcp-oauth-backup-fresh");
    let data = dir.path().join("data");
    let target = dir.path().join("copy");
    let (ok, out, err) = run_cli(
        None,
        &["backup", target.to_str().unwrap()],
        &[("MCP_OAUTH__STORAGE__DATA_DIR", data.to_str().unwrap())],
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("no key-encryption-key"), "{out}");
    assert!(target.join("mcp-oauth.db").exists());
}
