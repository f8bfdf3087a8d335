//! The htpasswd plugin against the provider API's authenticator conformance kit, then its own
//! behaviour: reloads, groups, refused schemes and settings errors. Every file is made here, in a
//! temp directory, with hashes computed at test time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_oauth_example_htpasswd::{HtpasswdAuthenticator, HtpasswdFactory, HtpasswdSettings};
use mcp_oauth_provider::testkit::AuthenticatorFixture;
use mcp_oauth_provider::{
    AuthOutcome, FactoryContext, HashingPool, ProviderError, SubjectStatus, UserAuthenticator,
    UserAuthenticatorFactory,
};
use serde_json::json;

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "mcp-oauth-htpasswd-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bcrypt_line(user: &str, password: &str) -> String {
    // Cost 4 keeps the tests fast; `htpasswd -B` uses 5 and up.
    format!("{user}:{}\n", bcrypt::hash(password, 4).unwrap())
}

fn argon2_line(user: &str, password: &str) -> String {
    use argon2::password_hash::PasswordHasher;
    let h = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .unwrap();
    format!("{user}:{h}\n")
}

/// An htpasswd file with `alice` (bcrypt) and `bob` (argon2id), and a group file.
struct Files {
    dir: TempDir,
    users: PathBuf,
    groups: PathBuf,
}

fn files() -> Files {
    let dir = TempDir::new();
    let users = dir.join("users.htpasswd");
    let groups = dir.join("users.groups");
    std::fs::write(
        &users,
        format!(
            "# made by the test\n{}{}",
            bcrypt_line("alice", "Alice-Pw1"),
            argon2_line("bob", "Bob-Pw2")
        ),
    )
    .unwrap();
    std::fs::write(&groups, "admins: alice\nstaff: alice bob\n").unwrap();
    Files { dir, users, groups }
}

fn ctx(settings: serde_json::Value, data_dir: &Path) -> FactoryContext {
    FactoryContext::new("users.htpasswd", settings, data_dir.to_path_buf())
}

async fn build(
    settings: serde_json::Value,
    data_dir: &Path,
) -> mcp_oauth_provider::ProviderResult<Arc<dyn UserAuthenticator>> {
    // The factory ignores the storage; the server hands it whatever `[storage]` opened.
    let storage = mcp_oauth_provider_memory::MemoryStore::new().storage();
    HtpasswdFactory
        .build(&ctx(settings, data_dir), &storage)
        .await
}

/// The authenticator through its factory, as the server builds it, and the kit's fixture for `user`.
async fn for_kit(user: &str, password: &str) -> (Arc<dyn UserAuthenticator>, AuthenticatorFixture) {
    let f = files();
    let auth = build(json!({"file": f.users, "groups_file": f.groups}), &f.dir.0)
        .await
        .unwrap();
    let owned = WithFiles { auth, _files: f };
    (
        Arc::new(owned),
        AuthenticatorFixture::new(user, password, "nobody"),
    )
}

/// The authenticator and its files, which must live as long as it does (it looks at them again).
struct WithFiles {
    auth: Arc<dyn UserAuthenticator>,
    _files: Files,
}

#[async_trait::async_trait]
impl UserAuthenticator for WithFiles {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> mcp_oauth_provider::ProviderResult<AuthOutcome> {
        self.auth.authenticate(username, password).await
    }
    async fn check_subject(
        &self,
        subject: &str,
    ) -> mcp_oauth_provider::ProviderResult<SubjectStatus> {
        self.auth.check_subject(subject).await
    }
}

mod kit_bcrypt {
    mcp_oauth_provider::authenticator_conformance_tests!(super::for_kit("alice", "Alice-Pw1"));
}

mod kit_argon2id {
    mcp_oauth_provider::authenticator_conformance_tests!(super::for_kit("bob", "Bob-Pw2"));
}

async fn signs_in(auth: &dyn UserAuthenticator, user: &str, password: &str) -> Option<Vec<String>> {
    match auth.authenticate(user, password).await.unwrap() {
        AuthOutcome::Authenticated(u) => {
            assert_eq!(u.subject, user);
            Some(u.groups)
        }
        AuthOutcome::Rejected => None,
    }
}

#[tokio::test]
async fn groups_come_from_the_group_file() {
    let f = files();
    let auth = build(json!({"file": f.users, "groups_file": f.groups}), &f.dir.0)
        .await
        .unwrap();
    assert_eq!(
        signs_in(auth.as_ref(), "alice", "Alice-Pw1").await.unwrap(),
        ["admins", "staff"]
    );
    assert_eq!(
        signs_in(auth.as_ref(), "bob", "Bob-Pw2").await.unwrap(),
        ["staff"]
    );
    let no_groups = build(json!({"file": f.users}), &f.dir.0).await.unwrap();
    assert!(
        signs_in(no_groups.as_ref(), "alice", "Alice-Pw1")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_changed_file_is_reloaded_and_a_removed_user_is_gone() {
    let f = files();
    let settings = HtpasswdSettings {
        file: f.users.clone(),
        groups_file: Some(f.groups.clone()),
    };
    let auth = HtpasswdAuthenticator::open(&settings, HashingPool::new(1))
        .await
        .unwrap()
        .with_reload_interval(Duration::from_millis(50));
    assert!(signs_in(&auth, "carol", "Carol-Pw3").await.is_none());

    // Add carol, drop bob; change the groups.
    std::fs::write(
        &f.users,
        format!(
            "{}{}",
            bcrypt_line("alice", "Alice-Pw1"),
            bcrypt_line("carol", "Carol-Pw3")
        ),
    )
    .unwrap();
    std::fs::write(&f.groups, "admins: carol\n").unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(
        signs_in(&auth, "carol", "Carol-Pw3").await.unwrap(),
        ["admins"]
    );
    assert!(
        signs_in(&auth, "alice", "Alice-Pw1")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(signs_in(&auth, "bob", "Bob-Pw2").await.is_none());
    assert_eq!(
        auth.check_subject("bob").await.unwrap(),
        SubjectStatus::Gone
    );
    assert!(matches!(
        auth.check_subject("carol").await.unwrap(),
        SubjectStatus::Active { .. }
    ));

    // A bad line written later: Unavailable (not Rejected, not the old file) until it is fixed.
    std::fs::write(&f.users, "alice:$apr1$abcdefgh$0123456789abcdefghijkl\n").unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    let err = auth.authenticate("alice", "Alice-Pw1").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert!(!err.to_string().contains("$apr1$abcdefgh"), "{err}");
    assert!(
        auth.check_subject("carol")
            .await
            .unwrap_err()
            .is_unavailable()
    );
    // A file that disappears: Unavailable as well.
    std::fs::remove_file(&f.users).unwrap();
    assert!(
        auth.authenticate("alice", "Alice-Pw1")
            .await
            .unwrap_err()
            .is_unavailable()
    );
    // Fixed: served again.
    std::fs::write(&f.users, bcrypt_line("alice", "Alice-Pw1")).unwrap();
    assert!(signs_in(&auth, "alice", "Alice-Pw1").await.is_some());
}

#[tokio::test]
async fn the_file_is_looked_at_at_most_once_per_interval() {
    let f = files();
    let settings = HtpasswdSettings {
        file: f.users.clone(),
        groups_file: None,
    };
    let auth = HtpasswdAuthenticator::open(&settings, HashingPool::new(1))
        .await
        .unwrap();
    assert_eq!(auth.user_count().await, 2);
    std::fs::write(&f.users, bcrypt_line("alice", "Alice-Pw1")).unwrap();
    // Within the default second, the snapshot stands.
    assert!(signs_in(&auth, "bob", "Bob-Pw2").await.is_some());
    assert_eq!(auth.user_count().await, 2);
}

fn invalid(err: ProviderError) -> String {
    match err {
        ProviderError::InvalidSettings(m) => m,
        other => panic!("expected InvalidSettings, got {other:?}"),
    }
}

#[tokio::test]
async fn settings_errors_name_the_section_the_key_and_the_line() {
    let f = files();
    let dir = &f.dir.0;
    let typo = invalid(build(json!({"fille": f.users}), dir).await.err().unwrap());
    assert!(
        typo.contains("[users.htpasswd]") && typo.contains("fille"),
        "{typo}"
    );
    let missing = invalid(build(json!({}), dir).await.err().unwrap());
    assert!(
        missing.contains("[users.htpasswd]") && missing.contains("file"),
        "{missing}"
    );
    let bad_type = invalid(build(json!({"file": 3}), dir).await.err().unwrap());
    assert!(
        bad_type.contains("[users.htpasswd]") && bad_type.contains("file:"),
        "{bad_type}"
    );

    let nowhere = invalid(
        build(json!({"file": dir.join("nope")}), dir)
            .await
            .err()
            .unwrap(),
    );
    assert!(
        nowhere.contains("[users.htpasswd]")
            && nowhere.contains("file")
            && nowhere.contains("nope"),
        "{nowhere}"
    );
    let no_groups = invalid(
        build(
            json!({"file": f.users, "groups_file": dir.join("nogroups")}),
            dir,
        )
        .await
        .err()
        .unwrap(),
    );
    assert!(no_groups.contains("groups_file"), "{no_groups}");

    let md5 = dir.join("md5.htpasswd");
    let apr1 = "$apr1$abcdefgh$0123456789abcdefghijkl";
    std::fs::write(&md5, format!("{}carol:{apr1}\n", bcrypt_line("alice", "x"))).unwrap();
    let err = invalid(build(json!({"file": md5}), dir).await.err().unwrap());
    assert!(
        err.contains("[users.htpasswd]") && err.contains("line 2") && err.contains("MD5"),
        "{err}"
    );
    assert!(!err.contains(apr1), "never the hash: {err}");
}

#[tokio::test]
async fn an_unknown_user_costs_a_verification_too() {
    // Not a timing measurement (noise on shared machines): the pool sees one check per sign-in,
    // known user or not. A pool of one that is busy makes both wait alike.
    let f = files();
    let settings = HtpasswdSettings {
        file: f.users.clone(),
        groups_file: None,
    };
    let pool = HashingPool::new(1);
    let auth = HtpasswdAuthenticator::open(&settings, pool.clone())
        .await
        .unwrap();
    let hold = {
        let pool = pool.clone();
        tokio::spawn(async move {
            pool.run(move || std::thread::sleep(Duration::from_millis(300)))
                .await
                .unwrap();
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        auth.authenticate("nobody", "whatever").await.unwrap(),
        AuthOutcome::Rejected
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "an unknown user waited for the hashing pool like a known one"
    );
    hold.await.unwrap();
}
