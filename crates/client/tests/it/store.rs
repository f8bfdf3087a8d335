//! The encrypted file store: no secret in plain text, clear errors that name the file for a wrong
//! key or a damaged file (which stays byte-for-byte unchanged), and the cross-process lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_oauth_client::discovery::AuthServerMetadata;
use mcp_oauth_client::registration::{ClientRegistration, RegistrationSource, TokenAuthMethod};
use mcp_oauth_client::store::{FileStore, Record, RecordKey, StoreKey, TokenStore, Tokens};
use mcp_oauth_client::{Error, Secret};

use crate::TempDir;

const ACCESS: &str = "ACCESS-TOKEN-eyJhbGciOiJFZERTQSJ9.sensitive";
const REFRESH: &str = "REFRESH-TOKEN-very-secret-value";
const CLIENT_SECRET: &str = "CLIENT-SECRET-do-not-leak";

fn record(issuer: &str, updated_at: i64) -> Record {
    Record {
        key: RecordKey {
            server: "https://mcp.example.com/mcp".into(),
            issuer: issuer.into(),
        },
        auth_server: serde_json::from_value::<AuthServerMetadata>(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
        }))
        .unwrap(),
        registration: Some(ClientRegistration {
            client_id: "client-1".into(),
            client_secret: Some(Secret::new(CLIENT_SECRET)),
            auth_method: TokenAuthMethod::ClientSecretBasic,
            client_secret_expires_at: None,
            source: RegistrationSource::Dynamic,
        }),
        tokens: Some(Tokens {
            access_token: Secret::new(ACCESS),
            refresh_token: Some(Secret::new(REFRESH)),
            issued_at: 1,
            expires_at: Some(2),
            scopes: vec!["read".into()],
        }),
        updated_at,
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn the_file_never_holds_a_secret_in_plain_text() {
    let dir = TempDir::new("mcp-oauth-client-store");
    let store = FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap();
    store.save(&record("https://as.example.com", 1)).unwrap();
    let loaded = store
        .load(&record("https://as.example.com", 1).key)
        .unwrap()
        .unwrap();
    assert_eq!(loaded.tokens.unwrap().access_token.expose(), ACCESS);
    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        for secret in [
            ACCESS,
            REFRESH,
            CLIENT_SECRET,
            "client-1",
            "mcp.example.com",
        ] {
            assert!(!contains(&bytes, secret), "{secret} in {}", path.display());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        files += 1;
    }
    assert_eq!(files, 1, "one record file, no temp file left behind");
}

#[test]
fn a_wrong_key_is_a_clear_error_and_the_file_stays_unchanged() {
    let dir = TempDir::new("mcp-oauth-client-store");
    let right = FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap();
    let rec = record("https://as.example.com", 1);
    right.save(&rec).unwrap();
    let path = right.record_path(&rec.key);
    let before = std::fs::read(&path).unwrap();

    let wrong = FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap();
    let err = wrong.load(&rec.key).unwrap_err();
    assert!(matches!(err, Error::UnreadableRecord { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(msg.contains("key"), "{msg}");
    // Neither a save nor a find may drop or overwrite it.
    assert!(matches!(
        wrong.save(&rec),
        Err(Error::UnreadableRecord { .. })
    ));
    assert!(wrong.find(&rec.key.server).is_err(), "not silently skipped");
    assert!(wrong.list().unwrap()[0].is_err());
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "byte-for-byte unchanged"
    );
    assert!(
        right.load(&rec.key).unwrap().is_some(),
        "the right key still opens it"
    );
}

#[test]
fn a_truncated_or_corrupted_file_is_a_clear_error_and_stays_unchanged() {
    let dir = TempDir::new("mcp-oauth-client-store");
    let store = FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap();
    let rec = record("https://as.example.com", 1);
    store.save(&rec).unwrap();
    let path = store.record_path(&rec.key);
    let full = std::fs::read(&path).unwrap();
    for damaged in [
        full[..full.len() / 2].to_vec(),
        full[..10].to_vec(),
        Vec::new(),
        {
            let mut f = full.clone();
            let last = f.len() - 1;
            f[last] ^= 1;
            f
        },
    ] {
        std::fs::write(&path, &damaged).unwrap();
        let err = store.load(&rec.key).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::UnreadableRecord { .. }), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(
            msg.contains("truncated") || msg.contains("corrupted"),
            "{msg}"
        );
        assert!(store.save(&rec).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), damaged, "unchanged");
    }
    // Only an explicit delete removes it.
    assert!(store.delete(&rec.key).unwrap());
    assert!(store.load(&rec.key).unwrap().is_none());
    store.save(&rec).unwrap();
}

#[test]
fn one_record_per_server_and_issuer_newest_first() {
    let dir = TempDir::new("mcp-oauth-client-store");
    let store = FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap();
    store
        .save(&record("https://old-as.example.com", 5))
        .unwrap();
    store
        .save(&record("https://new-as.example.com", 9))
        .unwrap();
    let found = store.find("https://mcp.example.com/mcp").unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].key.issuer, "https://new-as.example.com");
    assert!(
        store
            .find("https://other.example.com/mcp")
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.delete_server("https://mcp.example.com/mcp").unwrap(),
        2
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn the_record_lock_is_exclusive() {
    let dir = TempDir::new("mcp-oauth-client-store");
    let store = Arc::new(FileStore::with_key(dir.path(), StoreKey::random().unwrap()).unwrap());
    let key = record("https://as.example.com", 1).key;
    let held = store.lock(&key).unwrap();
    let (s2, k2) = (Arc::clone(&store), key.clone());
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let _g = s2.lock(&k2).unwrap();
        started.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));
    drop(held);
    let waited = waiter.join().unwrap();
    assert!(
        waited >= Duration::from_millis(280),
        "blocked while held: {waited:?}"
    );
}
