//! Applications bring their own storage through the `TokenStore` trait: an in-memory store written
//! here (as an application would) carries a login, a refresh and a logout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth_client::login::LoginMode;
use mcp_oauth_client::store::{Record, RecordKey, RecordLock, TokenStore};
use mcp_oauth_client::{Authorizer, ClientOptions, Result, Secret};

use crate::fake::{Config, Fake};

/// Records in a map; the lock is a mutex per record (enough for a store that lives in one
/// process; a store shared by processes must lock across them).
#[derive(Default)]
struct MemoryStore {
    records: Mutex<HashMap<RecordKey, Record>>,
    locks: Mutex<HashMap<RecordKey, Arc<tokio::sync::Mutex<()>>>>,
    saves: Mutex<u32>,
}

struct Held(#[allow(dead_code)] tokio::sync::OwnedMutexGuard<()>);
impl RecordLock for Held {}

impl TokenStore for MemoryStore {
    fn load(&self, key: &RecordKey) -> Result<Option<Record>> {
        Ok(self.records.lock().unwrap().get(key).cloned())
    }
    fn find(&self, server: &str) -> Result<Vec<Record>> {
        let mut v: Vec<Record> = self
            .records
            .lock()
            .unwrap()
            .values()
            .filter(|r| r.key.server == server)
            .cloned()
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.updated_at));
        Ok(v)
    }
    fn list(&self) -> Result<Vec<Result<Record>>> {
        Ok(self
            .records
            .lock()
            .unwrap()
            .values()
            .cloned()
            .map(Ok)
            .collect())
    }
    fn save(&self, record: &Record) -> Result<()> {
        *self.saves.lock().unwrap() += 1;
        self.records
            .lock()
            .unwrap()
            .insert(record.key.clone(), record.clone());
        Ok(())
    }
    fn delete(&self, key: &RecordKey) -> Result<bool> {
        Ok(self.records.lock().unwrap().remove(key).is_some())
    }
    fn delete_server(&self, server: &str) -> Result<usize> {
        let mut r = self.records.lock().unwrap();
        let before = r.len();
        r.retain(|k, _| k.server != server);
        Ok(before - r.len())
    }
    fn lock(&self, key: &RecordKey) -> Result<Box<dyn RecordLock>> {
        let m = Arc::clone(self.locks.lock().unwrap().entry(key.clone()).or_default());
        // `lock` runs on a blocking thread (the trait is synchronous).
        Ok(Box::new(Held(m.blocking_lock_owned())))
    }
}

#[tokio::test]
async fn an_application_store_carries_login_refresh_and_logout() {
    crate::install_crypto_provider();
    let fake = Fake::start(Config {
        access_ttl: 2,
        ..Config::default()
    })
    .await;
    let store = Arc::new(MemoryStore::default());
    let auth = Authorizer::new(
        &fake.mcp_url(),
        store.clone(),
        ClientOptions {
            login: LoginMode::Headless {
                username: "u".into(),
                password: Secret::new("p"),
            },
            ..ClientOptions::default()
        },
    )
    .unwrap();
    let first = auth.access_token().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let second = auth.access_token().await.unwrap();
    assert_ne!(first, second);
    assert_eq!(fake.log().rotations, 1);
    assert_eq!(*store.saves.lock().unwrap(), 2, "the login and the refresh");
    assert_eq!(auth.logout().await.unwrap().deleted, 1);
    assert!(store.records.lock().unwrap().is_empty());
}

/// A store whose first read after the lock shows a stale record and every later read shows what
/// a sibling stored meanwhile (as with a store that another program writes without our lock).
struct SiblingWrites {
    stale: Record,
    sibling: Record,
    reads: Mutex<u32>,
}

impl TokenStore for SiblingWrites {
    fn load(&self, _key: &RecordKey) -> Result<Option<Record>> {
        let mut n = self.reads.lock().unwrap();
        *n += 1;
        Ok(Some(if *n == 1 {
            self.stale.clone()
        } else {
            self.sibling.clone()
        }))
    }
    fn find(&self, _server: &str) -> Result<Vec<Record>> {
        Ok(vec![self.stale.clone()])
    }
    fn list(&self) -> Result<Vec<Result<Record>>> {
        Ok(vec![])
    }
    fn save(&self, _record: &Record) -> Result<()> {
        panic!("nothing may be written over the sibling's tokens");
    }
    fn delete(&self, _key: &RecordKey) -> Result<bool> {
        panic!("nothing may be deleted");
    }
    fn delete_server(&self, _server: &str) -> Result<usize> {
        panic!("nothing may be deleted");
    }
    fn lock(&self, _key: &RecordKey) -> Result<Box<dyn RecordLock>> {
        struct NoLock;
        impl RecordLock for NoLock {}
        Ok(Box::new(NoLock))
    }
}

#[tokio::test]
async fn a_failed_refresh_rereads_the_store_and_uses_what_a_sibling_stored() {
    crate::install_crypto_provider();
    let fake = Fake::start(Config::default()).await;
    let memory = Arc::new(MemoryStore::default());
    let opts = |login| ClientOptions {
        login,
        ..ClientOptions::default()
    };
    let first = Authorizer::new(
        &fake.mcp_url(),
        memory.clone(),
        opts(LoginMode::Headless {
            username: "u".into(),
            password: Secret::new("p"),
        }),
    )
    .unwrap();
    let good = first.access_token().await.unwrap();
    let sibling = memory.find(&fake.mcp_url()).unwrap().remove(0);
    let mut stale = sibling.clone();
    let t = stale.tokens.as_mut().unwrap();
    t.access_token = Secret::new("stale-access-token");
    t.refresh_token = Some(Secret::new("a-refresh-token-the-server-refuses"));
    t.issued_at -= 7200;
    t.expires_at = Some(t.issued_at + 60);
    let store = Arc::new(SiblingWrites {
        stale,
        sibling,
        reads: Mutex::new(0),
    });
    let second = Authorizer::new(&fake.mcp_url(), store.clone(), opts(LoginMode::Never)).unwrap();
    assert_eq!(second.access_token().await.unwrap(), good);
    assert_eq!(
        *store.reads.lock().unwrap(),
        2,
        "read again after the refusal"
    );
    assert_eq!(fake.log().authorize.len(), 1, "no new login");
}
