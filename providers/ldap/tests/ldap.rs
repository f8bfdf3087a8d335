//! The LDAP authenticator against a real OpenLDAP `slapd` loaded with `tests/fixtures/ldap/
//! directory.ldif` (started by `scripts/services/slapd.sh`, which exports `MCP_OAUTH_TEST_LDAP_URL`).
//!
//! With `MCP_OAUTH_REQUIRE_SERVICES=1` (set by `scripts/test.sh`) a missing directory FAILS these
//! tests; without it they say so and return. The outage test runs its own private slapd (through
//! `scripts/services/lib/ldap-instance.sh`) so stopping it disturbs no other test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mcp_oauth_provider::{AuthOutcome, AuthenticatedUser, UserAuthenticator};
use mcp_oauth_provider_ldap::{LdapAuthenticator, LdapSettings};
use serde_json::{Value, json};

const ALICE_PW: &str = "alice-test-password";
const BOB_PW: &str = "bob-test-password";
const SERVICE_PW_ENV: &str = "MCP_OAUTH_TEST_LDAP_SERVICE_PASSWORD";
const ADMINS: &str = "cn=mcp-admins,ou=groups,dc=example,dc=org";

fn services_required() -> bool {
    std::env::var("MCP_OAUTH_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// `ldap://127.0.0.1:PORT/` of the shared test directory, or `None` (test returns) when it is not
/// configured and not required.
fn directory_url() -> Option<String> {
    let url = match std::env::var("MCP_OAUTH_TEST_LDAP_URL") {
        Ok(url) => url,
        Err(_) if services_required() => panic!(
            "MCP_OAUTH_REQUIRE_SERVICES=1 but MCP_OAUTH_TEST_LDAP_URL is not set \
             (scripts/services/slapd.sh sets it)"
        ),
        Err(_) => {
            eprintln!(
                "skipped: no test directory (run scripts/test.sh, or set MCP_OAUTH_TEST_LDAP_URL)"
            );
            return None;
        }
    };
    let host_port = url
        .trim_start_matches("ldap://")
        .trim_end_matches('/')
        .to_string();
    if TcpStream::connect(&host_port).is_err() {
        assert!(
            !services_required(),
            "the test directory at {url} is unreachable"
        );
        eprintln!("skipped: the test directory at {url} is unreachable");
        return None;
    }
    Some(url)
}

fn settings(url: &str, mode: &str, extra: Value) -> LdapSettings {
    let mut ldap = match mode {
        "direct" => json!({
            "url": url,
            "mode": "direct",
            "user_dn_template": "uid={username},ou=people,dc=example,dc=org",
        }),
        "search" => json!({
            "url": url,
            "mode": "search",
            "base_dn": "dc=example,dc=org",
            "user_filter": "(&(objectClass=inetOrgPerson)(uid={username}))",
            "bind_dn": "cn=mcp-service,ou=services,dc=example,dc=org",
            "bind_password_env": SERVICE_PW_ENV,
        }),
        other => panic!("mode {other}"),
    };
    ldap["connect_timeout"] = json!("2s");
    ldap["operation_timeout"] = json!("2s");
    ldap["default_scopes"] = json!(["mcp:tools"]);
    ldap["scope_map"] = json!([{ "group": ADMINS, "scopes": ["mcp:admin"] }]);
    for (k, v) in extra.as_object().unwrap() {
        ldap[k] = v.clone();
    }
    LdapSettings::from_users_table(&json!({ "kind": "ldap", "ldap": ldap })).unwrap()
}

fn authenticator(url: &str, mode: &str, extra: Value) -> LdapAuthenticator {
    LdapAuthenticator::with_env(&settings(url, mode, extra), |name| {
        (name == SERVICE_PW_ENV).then(|| "service-test-password".to_string())
    })
    .unwrap()
}

async fn signed_in(a: &LdapAuthenticator, user: &str, pw: &str) -> AuthenticatedUser {
    match a.authenticate(user, pw).await {
        Ok(AuthOutcome::Authenticated(u)) => u,
        other => panic!("{user:?} should sign in: {other:?}"),
    }
}

async fn assert_rejected(a: &LdapAuthenticator, user: &str, pw: &str, mode: &str) {
    match a.authenticate(user, pw).await {
        Ok(AuthOutcome::Rejected) => {}
        other => panic!("{mode}: {user:?} must be rejected: {other:?}"),
    }
}

fn has_admins(groups: &[String]) -> bool {
    groups.iter().any(|g| g.eq_ignore_ascii_case(ADMINS))
}

#[tokio::test]
async fn both_bind_modes_sign_users_in_with_their_attributes_and_scopes() {
    let Some(url) = directory_url() else { return };
    for mode in ["direct", "search"] {
        let a = authenticator(&url, mode, json!({}));

        let alice = signed_in(&a, "alice", ALICE_PW).await;
        assert_eq!(alice.subject, "alice", "{mode}");
        assert_eq!(alice.email.as_deref(), Some("alice@example.org"), "{mode}");
        assert_eq!(alice.display_name.as_deref(), Some("Alice Admin"), "{mode}");
        assert!(has_admins(&alice.groups), "{mode}: {:?}", alice.groups);
        assert_eq!(
            alice.allowed_scopes,
            Some(vec!["mcp:tools".to_string(), "mcp:admin".to_string()]),
            "{mode}"
        );

        let bob = signed_in(&a, "bob", BOB_PW).await;
        assert_eq!(bob.subject, "bob", "{mode}");
        assert!(!has_admins(&bob.groups), "{mode}: {:?}", bob.groups);
        assert_eq!(
            bob.allowed_scopes,
            Some(vec!["mcp:tools".to_string()]),
            "{mode}"
        );

        // A comma in the uid: the DN works only when escaped (RFC 4514), the filter needs none.
        let smith = signed_in(&a, "smith,j", "smith-test-password").await;
        assert_eq!(smith.subject, "smith,j", "{mode}");
        assert_eq!(smith.email, None, "{mode}: no mail attribute");

        // uid matches without regard to case; the subject is the directory's value.
        let upper = signed_in(&a, "ALICE", ALICE_PW).await;
        assert_eq!(upper.subject, "alice", "{mode}");
    }
}

#[tokio::test]
async fn groups_can_come_from_a_group_search() {
    let Some(url) = directory_url() else { return };
    let group_search = json!({
        "groups": "search",
        "group_base_dn": "ou=groups,dc=example,dc=org",
        "group_filter": "(&(objectClass=groupOfNames)(member={dn}))",
    });
    for mode in ["direct", "search"] {
        let a = authenticator(&url, mode, group_search.clone());
        let alice = signed_in(&a, "alice", ALICE_PW).await;
        assert!(has_admins(&alice.groups), "{mode}: {:?}", alice.groups);
        assert!(alice.allowed_scopes.unwrap().contains(&"mcp:admin".into()));
        let smith = signed_in(&a, "smith,j", "smith-test-password").await;
        assert_eq!(
            smith.groups.len(),
            1,
            "{mode}: the DN with an escaped comma is found as a member: {:?}",
            smith.groups
        );
        let bob = signed_in(&a, "bob", BOB_PW).await;
        assert!(!has_admins(&bob.groups), "{mode}: {:?}", bob.groups);
        assert_eq!(bob.allowed_scopes, Some(vec!["mcp:tools".to_string()]));
    }
}

#[tokio::test]
async fn wrong_password_unknown_user_and_empty_password_are_rejected_alike() {
    let Some(url) = directory_url() else { return };
    for mode in ["direct", "search"] {
        let a = authenticator(&url, mode, json!({}));
        assert_rejected(&a, "alice", "wrong-password", mode).await;
        assert_rejected(&a, "alice", BOB_PW, mode).await;
        assert_rejected(&a, "nobody", ALICE_PW, mode).await;
        // RFC 4513 §5.1.2: the directory itself would accept this as an unauthenticated bind.
        assert_rejected(&a, "alice", "", mode).await;
        // The service account is not a user.
        assert_rejected(&a, "mcp-service", "service-test-password", mode).await;
    }
}

#[tokio::test]
async fn the_directory_accepts_an_unauthenticated_bind_that_we_refuse() {
    let Some(url) = directory_url() else { return };
    // Proof that refusing empty passwords is needed: slapd answers success to a simple bind with a
    // name and no password (RFC 4513 §5.1.2).
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&url).await.unwrap();
    tokio::spawn(conn.drive());
    let result = ldap
        .simple_bind("uid=alice,ou=people,dc=example,dc=org", "")
        .await
        .unwrap();
    assert_eq!(result.rc, 0, "slapd allows unauthenticated binds");
    let a = authenticator(&url, "direct", json!({}));
    assert_rejected(&a, "alice", "", "direct").await;
}

#[tokio::test]
async fn several_matching_entries_are_a_failed_login() {
    let Some(url) = directory_url() else { return };
    // `twin` exists in ou=people and ou=contractors with the same password.
    let a = authenticator(&url, "search", json!({}));
    assert_rejected(&a, "twin", "twin-test-password", "search").await;
    // Narrowed to one subtree, the same user signs in: the refusal was about ambiguity.
    let a = authenticator(
        &url,
        "search",
        json!({ "base_dn": "ou=people,dc=example,dc=org" }),
    );
    let twin = signed_in(&a, "twin", "twin-test-password").await;
    assert_eq!(twin.display_name.as_deref(), Some("Twin One"));
}

#[tokio::test]
async fn injection_attempts_never_widen_a_search_or_bind_as_another_entry() {
    let Some(url) = directory_url() else { return };
    let long = "a".repeat(10_000);
    let long_alice = format!("alice{}", " ".repeat(300));
    let attempts: Vec<&str> = vec![
        "*",
        "a*",
        "al*",
        "*alice*",
        ")(uid=*",
        "alice)(uid=*",
        "*)(uid=*))(|(uid=*",
        "alice)(|(objectClass=*)",
        "alice,ou=people,dc=example,dc=org",
        "alice,dc=example,dc=org",
        "uid=alice",
        "alice=",
        "=alice",
        "alice\\",
        "al\\2aice",
        "\\2a",
        "alice\0",
        "alice\0)(uid=*",
        "alice+cn=Alice Admin",
        " alice",
        "#alice",
        "alice;",
        "alice\"",
        "<alice>",
        &long,
        &long_alice,
    ];
    for mode in ["direct", "search"] {
        let a = authenticator(&url, mode, json!({}));
        for username in &attempts {
            // With alice's real password: an unescaped wildcard or DN trick would log in as alice.
            assert_rejected(&a, username, ALICE_PW, mode).await;
            assert_rejected(&a, username, BOB_PW, mode).await;
        }
        // The directory still works after all that.
        signed_in(&a, "alice", ALICE_PW).await;
    }
}

/// A private slapd for the outage test, stopped and removed on drop.
struct PrivateDirectory {
    script: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl PrivateDirectory {
    fn script() -> PathBuf {
        std::env::var_os("MCP_OAUTH_TEST_LDAP_INSTANCE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../scripts/services/lib/ldap-instance.sh")
            })
    }

    /// `None` when slapd is not installed and not required.
    fn start() -> Option<Self> {
        let slapd_installed = ["slapd", "/usr/sbin/slapd"].iter().any(|c| {
            Command::new("sh")
                .args(["-c", &format!("command -v {c}")])
                .output()
                .is_ok_and(|o| o.status.success())
        });
        if !slapd_installed {
            assert!(!services_required(), "slapd is not installed");
            eprintln!("skipped: slapd is not installed (run scripts/test.sh)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-ldap-outage-{}-{port}",
            std::process::id()
        ));
        let d = Self {
            script: Self::script(),
            dir,
            port,
        };
        d.run(&["start", d.dir.to_str().unwrap(), &port.to_string()]);
        Some(d)
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new(&self.script).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ldap-instance.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn stop(&self) {
        self.run(&["stop", self.dir.to_str().unwrap()]);
    }
    fn restart(&self) {
        self.run(&["start", self.dir.to_str().unwrap(), &self.port.to_string()]);
    }
    fn pause(&self) {
        self.run(&["pause", self.dir.to_str().unwrap()]);
    }
    fn resume(&self) {
        self.run(&["resume", self.dir.to_str().unwrap()]);
    }
}

impl Drop for PrivateDirectory {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args(["stop", self.dir.to_str().unwrap_or_default()])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn assert_unavailable_within(a: &LdapAuthenticator, limit: Duration, what: &str) {
    let started = Instant::now();
    let result = a.authenticate("alice", ALICE_PW).await;
    let took = started.elapsed();
    match result {
        Err(e) if e.is_unavailable() => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
    assert!(took <= limit, "{what}: took {took:?}, limit {limit:?}");
}

#[tokio::test]
async fn a_directory_outage_is_unavailable_within_the_timeout_and_logins_return_with_it() {
    if std::env::var("MCP_OAUTH_TEST_LDAP_URL").is_err() && !services_required() {
        eprintln!("skipped: no test directory (run scripts/test.sh)");
        return;
    }
    let Some(directory) = PrivateDirectory::start() else {
        return;
    };
    let url = directory.url();
    let timeouts = json!({ "connect_timeout": "1s", "operation_timeout": "1s" });
    let modes = [
        ("direct", authenticator(&url, "direct", timeouts.clone())),
        ("search", authenticator(&url, "search", timeouts.clone())),
    ];
    for (mode, a) in &modes {
        signed_in(a, "alice", ALICE_PW).await;
        eprintln!("{mode}: signed in before the outage");
    }

    // Down: connections are refused, answered at once (well inside the timeout).
    directory.stop();
    for (mode, a) in &modes {
        assert_unavailable_within(a, Duration::from_millis(2500), &format!("{mode}, stopped"))
            .await;
    }
    directory.restart();
    for (mode, a) in &modes {
        let alice = signed_in(a, "alice", ALICE_PW).await;
        assert!(has_admins(&alice.groups), "{mode}: after restart");
        assert_rejected(a, "alice", "wrong", mode).await;
    }

    // Slow: the process accepts connections (the kernel does) but never answers. Each login fails
    // after one operation timeout, not after a hang. Search mode has a service connection open from
    // before: its search times out; direct mode's bind on a fresh connection times out.
    directory.pause();
    for (mode, a) in &modes {
        assert_unavailable_within(a, Duration::from_millis(3500), &format!("{mode}, paused")).await;
    }
    directory.resume();
    for (mode, a) in &modes {
        signed_in(a, "alice", ALICE_PW).await;
        eprintln!("{mode}: signed in after the directory answered again");
    }
}

#[tokio::test]
async fn starttls_checks_the_certificate_against_the_ca_file() {
    let Some(url) = directory_url() else { return };
    let ca_file = match std::env::var("MCP_OAUTH_TEST_LDAP_CA_FILE") {
        Ok(path) => path,
        Err(_) => {
            assert!(
                !services_required(),
                "MCP_OAUTH_TEST_LDAP_CA_FILE is not set (scripts/services/slapd.sh sets it)"
            );
            eprintln!("skipped: no test CA file");
            return;
        }
    };
    for mode in ["direct", "search"] {
        // The whole exchange, service account bind included, runs over TLS.
        let a = authenticator(&url, mode, json!({ "starttls": true, "ca_file": ca_file }));
        let alice = signed_in(&a, "alice", ALICE_PW).await;
        assert!(has_admins(&alice.groups), "{mode}");
        assert_rejected(&a, "alice", "wrong", mode).await;

        // Without the test CA the certificate is not trusted: the directory is unreachable, which is
        // never a `Rejected` (and never a sign-in).
        let untrusted = authenticator(&url, mode, json!({ "starttls": true }));
        match untrusted.authenticate("alice", ALICE_PW).await {
            Err(e) if e.is_unavailable() => {}
            other => panic!("{mode}: an untrusted certificate must fail the connection: {other:?}"),
        }
    }
    // A CA file without a certificate is refused at start.
    let empty = std::env::temp_dir().join(format!("mcp-oauth-empty-ca-{}", std::process::id()));
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = LdapAuthenticator::with_env(
        &settings(
            &url,
            "direct",
            json!({ "starttls": true, "ca_file": empty }),
        ),
        |_| None,
    )
    .err()
    .expect("an empty CA file is an error");
    std::fs::remove_file(&empty).unwrap();
    assert!(err.to_string().contains("ca_file"), "{err}");
}

/// The authenticator kit against the test directory, in both bind modes. Direct-bind mode cannot
/// look a user up without their password, so its `check_subject` answers `Unknown`.
mod conformance {
    use std::sync::Arc;

    use mcp_oauth_provider::UserAuthenticator;
    use mcp_oauth_provider::testkit::{AuthenticatorFixture, SubjectLookup};
    use serde_json::json;

    fn made(mode: &str) -> Option<(Arc<dyn UserAuthenticator>, AuthenticatorFixture)> {
        let url = super::directory_url()?;
        let lookup = match mode {
            "direct" => SubjectLookup::Unknown,
            _ => SubjectLookup::Active,
        };
        Some((
            Arc::new(super::authenticator(&url, mode, json!({}))),
            AuthenticatorFixture::new("alice", super::ALICE_PW, "nobody").subject_lookup(lookup),
        ))
    }

    mod search {
        mcp_oauth_provider::authenticator_conformance_tests!(optional: async { super::made("search") });
    }

    mod direct {
        mcp_oauth_provider::authenticator_conformance_tests!(optional: async { super::made("direct") });
    }
}

/// The readiness probe's check: the directory answers in both modes; a wrong service password
/// (search mode) or a port nobody listens on is an error, and nobody is signed in by it.
#[tokio::test]
async fn the_health_check_reaches_the_directory_in_both_modes() {
    let Some(url) = directory_url() else { return };
    for mode in ["direct", "search"] {
        authenticator(&url, mode, json!({}))
            .check_health()
            .await
            .unwrap_or_else(|e| panic!("{mode}: {e}"));
    }
    let wrong_service = LdapAuthenticator::with_env(&settings(&url, "search", json!({})), |name| {
        (name == SERVICE_PW_ENV).then(|| "not-the-service-password".to_string())
    })
    .unwrap();
    assert!(wrong_service.check_health().await.is_err());
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for mode in ["direct", "search"] {
        let err = authenticator(&format!("ldap://{closed}/"), mode, json!({}))
            .check_health()
            .await
            .unwrap_err();
        assert!(err.is_unavailable(), "{mode}: {err}");
    }
}
