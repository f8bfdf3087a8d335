//! Attacks on the sign-in limit (issue 8 §2), each performed end to end over real sockets.
//!
//! Distinct client addresses come from binding the test client to other loopback addresses
//! (`127.0.0.2`, `127.0.0.3`, …): Linux routes the whole of 127.0.0.0/8 to the loopback interface,
//! so the server sees each as a different peer without any proxy header.
//!
//! An attempt whose password was checked answers the generic "Invalid username or password." page
//! (200); an attempt refused by the throttle answers 429 without checking anything.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::processes::{pg_migrate, pg_schema, pg_url};
use crate::support::*;

const CHECKED: &str = "Invalid username or password.";
const LDAP_ALICE_PW: &str = "alice-test-password";
/// `alice` in fullwidth Latin letters: NFKC maps it to `alice`, and so does OpenLDAP's
/// caseIgnoreMatch (RFC 4518 string preparation).
const FULLWIDTH_ALICE: &str = "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}";

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A browser (cookie jar, no redirects) whose connections come from `addr`.
fn browser_from(addr: IpAddr) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(addr)
        .build()
        .unwrap()
}

/// What one sign-in attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The password was checked and was wrong.
    Checked,
    /// Refused by the throttle without a check (429).
    Refused,
    /// Signed in: the consent page.
    SignedIn,
    Other(u16),
}

async fn outcome(r: reqwest::Response) -> Outcome {
    let status = r.status();
    let html = r.text().await.unwrap();
    match status {
        StatusCode::TOO_MANY_REQUESTS => Outcome::Refused,
        StatusCode::OK if html.contains("Allow access?") => Outcome::SignedIn,
        StatusCode::OK if html.contains(CHECKED) => Outcome::Checked,
        s => Outcome::Other(s.as_u16()),
    }
}

/// A login page opened by a browser at `addr`; `attempt` posts to it.
struct LoginPage {
    browser: reqwest::Client,
    tx: String,
    csrf: String,
}

impl LoginPage {
    async fn open(ep: &Endpoint, client_id: &str, addr: IpAddr) -> Self {
        let browser = browser_from(addr);
        let (tx, csrf, _) = ep.start_login(&browser, &ep.auth_params(client_id)).await;
        Self { browser, tx, csrf }
    }

    async fn attempt(&self, ep: &Endpoint, user: &str, pw: &str) -> Outcome {
        outcome(
            ep.post_login(&self.browser, &self.tx, &self.csrf, user, pw)
                .await,
        )
        .await
    }
}

fn count(outcomes: &[Outcome], what: Outcome) -> usize {
    outcomes.iter().filter(|o| **o == what).count()
}

/// Fires `n` wrong passwords for `user` at once, each from its own login page at `addr`.
async fn concurrent_wrong_passwords(
    ep: &Endpoint,
    client_id: &str,
    addrs: &[IpAddr],
    user: &str,
    n: usize,
) -> Vec<Outcome> {
    let mut pages = Vec::new();
    for i in 0..n {
        pages.push(LoginPage::open(ep, client_id, addrs[i % addrs.len()]).await);
    }
    let mut tasks = Vec::new();
    for (i, page) in pages.into_iter().enumerate() {
        let ep = ep.clone();
        let user = user.to_string();
        tasks.push(tokio::spawn(async move {
            page.attempt(&ep, &user, &format!("guess-{i}")).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. Concurrent attempts
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_never_exceed_the_limit() {
    let server = start_with(Options {
        env: vec![
            ("MCP_OAUTH__LOGIN__MAX_FAILED_ATTEMPTS", "5".into()),
            ("MCP_OAUTH__LOGIN__PASSWORD_HASH_CONCURRENCY", "4".into()),
            // Not the per-address bound on sign-ins in flight: the throttle alone is under test.
            ("MCP_OAUTH__LOGIN__MAX_CONCURRENT_PER_ADDRESS", "64".into()),
        ],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let outcomes = concurrent_wrong_passwords(&server, &client_id, &[loopback(1)], USER, 8).await;
    let checked = count(&outcomes, Outcome::Checked);
    assert!(
        (1..=5).contains(&checked),
        "8 simultaneous wrong passwords against a limit of 5: {checked} were checked ({outcomes:?})"
    );
    assert_eq!(
        checked + count(&outcomes, Outcome::Refused),
        8,
        "every attempt is either checked or refused: {outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_guesses_from_many_addresses_never_exceed_the_username_limit() {
    let server = start_with(Options {
        env: vec![
            ("MCP_OAUTH__LOGIN__BACKOFF_AFTER", "5".into()),
            ("MCP_OAUTH__LOGIN__PASSWORD_HASH_CONCURRENCY", "4".into()),
        ],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let addrs: Vec<IpAddr> = (10..18).map(loopback).collect();
    let outcomes = concurrent_wrong_passwords(&server, &client_id, &addrs, USER, 8).await;
    let checked = count(&outcomes, Outcome::Checked);
    // Checks run one at a time; attempts that wait too long for the one in flight are refused.
    assert!(
        (1..=5).contains(&checked),
        "8 simultaneous guesses from 8 addresses, 5 before the username's back-off: \
         {checked} were checked ({outcomes:?})"
    );
    assert_eq!(
        checked + count(&outcomes, Outcome::Refused),
        8,
        "{outcomes:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Look-alike names
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn look_alike_usernames_share_the_counter() {
    let server = start().await;
    let client_id = server.register_public().await;
    let page = LoginPage::open(&server, &client_id, loopback(1)).await;
    for _ in 0..5 {
        assert_eq!(page.attempt(&server, USER, "guess").await, Outcome::Checked);
    }
    for look_alike in [
        FULLWIDTH_ALICE,
        "ALICE",
        "Alice",
        "al\u{00AD}ice",
        "al\u{200B}ice",
        "\u{1D41A}lice",
    ] {
        assert_eq!(
            page.attempt(&server, look_alike, "guess").await,
            Outcome::Refused,
            "{look_alike:?} must count as alice, whose limit is reached"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. No lock-out from outside
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stranger_cannot_lock_a_user_out_of_an_address_they_signed_in_from() {
    let server = start().await;
    let client_id = server.register_public().await;
    // Alice signs in from her usual address.
    let home = LoginPage::open(&server, &client_id, loopback(1)).await;
    assert_eq!(
        home.attempt(&server, USER, PASSWORD).await,
        Outcome::SignedIn
    );
    // A stranger at two other addresses guesses until refused everywhere.
    for addr in [loopback(2), loopback(4)] {
        let page = LoginPage::open(&server, &client_id, addr).await;
        for _ in 0..12 {
            page.attempt(&server, USER, "guess").await;
        }
        assert_eq!(
            page.attempt(&server, USER, PASSWORD).await,
            Outcome::Refused,
            "the stranger's address is refused, even with the right password"
        );
    }
    // Alice, at home, is not locked out.
    let home = LoginPage::open(&server, &client_id, loopback(1)).await;
    assert_eq!(
        home.attempt(&server, USER, PASSWORD).await,
        Outcome::SignedIn,
        "a stranger locked alice out of her own address"
    );
}

#[tokio::test]
async fn a_stranger_only_delays_a_new_address_by_the_capped_back_off() {
    let server = start_with(Options {
        env: vec![
            ("MCP_OAUTH__LOGIN__BACKOFF_AFTER", "4".into()),
            ("MCP_OAUTH__LOGIN__BACKOFF_MAX", "2s".into()),
        ],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    // Pages opened beforehand, so the attempts below follow the last guess at once.
    let fresh = LoginPage::open(&server, &client_id, loopback(20)).await;
    let alice = LoginPage::open(&server, &client_id, loopback(3)).await;
    // The stranger spreads guesses over many addresses: each stays under its own limit.
    for last in 10..14 {
        let page = LoginPage::open(&server, &client_id, loopback(last)).await;
        for _ in 0..3 {
            page.attempt(&server, USER, "guess").await;
        }
    }
    // More guesses now meet the back-off, whatever the address.
    assert_eq!(
        fresh.attempt(&server, USER, "guess").await,
        Outcome::Refused
    );
    // Alice at a new address waits at most backoff_max, then signs in.
    let started = Instant::now();
    loop {
        match alice.attempt(&server, USER, PASSWORD).await {
            Outcome::SignedIn => break,
            Outcome::Refused => {
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "alice was kept out longer than backoff_max"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Several instances on one Postgres
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_servers_on_one_postgres_share_the_limit() {
    let Some(schema) = pg_schema().await else {
        return;
    };
    let url = pg_url();
    pg_migrate(&url, &schema).await;
    let storage = format!("kind = \"postgres\"\nurl = \"{url}\"\nsearch_path = \"{schema}\"");
    let env = || {
        vec![
            (
                "MCP_OAUTH__KEYS__ENCRYPTION_KEY",
                "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=".to_string(),
            ),
            // Not the per-address bound on sign-ins in flight: the shared throttle is under test.
            (
                "MCP_OAUTH__LOGIN__MAX_CONCURRENT_PER_ADDRESS",
                "64".to_string(),
            ),
        ]
    };
    let a = start_with(Options {
        storage: Some(storage.clone()),
        env: env(),
        ..Default::default()
    })
    .await;
    let b = start_with(Options {
        storage: Some(storage),
        env: env(),
        ..Default::default()
    })
    .await;
    let client_id = a.register_public().await;
    let page_a = LoginPage::open(&a, &client_id, loopback(1)).await;
    let page_b = LoginPage::open(&b, &client_id, loopback(1)).await;
    let mut outcomes = Vec::new();
    for i in 0..8 {
        let (ep, page) = if i % 2 == 0 {
            (&a.ep, &page_a)
        } else {
            (&b.ep, &page_b)
        };
        outcomes.push(page.attempt(ep, USER, "guess").await);
    }
    assert_eq!(
        count(&outcomes, Outcome::Checked),
        5,
        "the limit of 5 holds across both servers: {outcomes:?}"
    );
    // And at once, against both.
    let c = LoginPage::open(&a, &client_id, loopback(2)).await;
    let d = LoginPage::open(&b, &client_id, loopback(2)).await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (ep, page) = if i % 2 == 0 {
            (a.ep.clone(), c.clone_page())
        } else {
            (b.ep.clone(), d.clone_page())
        };
        tasks.push(tokio::spawn(async move {
            page.attempt(&ep, "bob", "guess").await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert!(
        count(&outcomes, Outcome::Checked) <= 5,
        "12 simultaneous guesses at two servers: at most 5 checked ({outcomes:?})"
    );
}

impl LoginPage {
    fn clone_page(&self) -> Self {
        Self {
            browser: self.browser.clone(),
            tx: self.tx.clone(),
            csrf: self.csrf.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 6. A fair hashing queue
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_address_cannot_starve_other_users_sign_ins() {
    let server = start_with(Options {
        env: vec![("MCP_OAUTH__LOGIN__PASSWORD_HASH_CONCURRENCY", "1".into())],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    // The attacker: 24 sign-ins at once from one address, each for another (unknown) username, so
    // no per-username limit applies; every one would cost an argon2 verification.
    let mut pages = Vec::new();
    for _ in 0..24 {
        pages.push(LoginPage::open(&server, &client_id, loopback(2)).await);
    }
    let checked_so_far = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, page) in pages.into_iter().enumerate() {
        let ep = server.ep.clone();
        let checked = std::sync::Arc::clone(&checked_so_far);
        tasks.push(tokio::spawn(async move {
            let o = page.attempt(&ep, &format!("user-{i}"), "guess").await;
            if o == Outcome::Checked {
                checked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            o
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Alice, from her own address, signs in while the attacker's checks are queued.
    let alice = LoginPage::open(&server, &client_id, loopback(1)).await;
    let o = alice.attempt(&server, USER, PASSWORD).await;
    let ahead = checked_so_far.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(o, Outcome::SignedIn, "alice's sign-in was starved");
    assert!(
        ahead <= 4,
        "{ahead} of one address's password checks ran before alice's: the queue is not fair"
    );
    for t in tasks {
        let o = t.await.unwrap();
        assert!(matches!(o, Outcome::Checked | Outcome::Refused), "{o:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// LDAP: the same attacks against OpenLDAP
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ldap_concurrent_guesses_never_exceed_the_limit() {
    let Some(url) = crate::ldap::directory_url() else {
        return;
    };
    let password_file = crate::ldap::PasswordFile::new();
    let server = start_with(Options {
        users_toml: Some(crate::ldap::ldap_users_toml(&url, &password_file)),
        sqlite_temp: true,
        // Not the per-address bound on sign-ins in flight, nor the per-address request limits
        // (40 login pages from one address): the throttle alone is under test.
        env: vec![
            ("MCP_OAUTH__LOGIN__MAX_CONCURRENT_PER_ADDRESS", "64".into()),
            ("MCP_OAUTH__LIMITS__RATE_LIMITS", "false".into()),
        ],
        ..Default::default()
    })
    .await;
    let client_id = server.register_public().await;
    let outcomes =
        concurrent_wrong_passwords(&server, &client_id, &[loopback(1)], "alice", 40).await;
    let checked = count(&outcomes, Outcome::Checked);
    assert!(
        checked <= 5,
        "40 simultaneous guesses against a limit of 5: {checked} were checked ({outcomes:?})"
    );
}

#[tokio::test]
async fn ldap_fullwidth_alice_cannot_sign_in_as_alice() {
    let Some(url) = crate::ldap::directory_url() else {
        return;
    };
    let password_file = crate::ldap::PasswordFile::new();
    let server =
        crate::ldap::start_ldap_server(crate::ldap::ldap_users_toml(&url, &password_file)).await;
    let client_id = server.register_public().await;
    // Before any failure: the look-alike does not reach alice's entry.
    let other = LoginPage::open(&server, &client_id, loopback(3)).await;
    assert_ne!(
        other.attempt(&server, FULLWIDTH_ALICE, LDAP_ALICE_PW).await,
        Outcome::SignedIn,
        "the fullwidth name signed in as alice"
    );
    // After alice's limit is reached: the look-alike is refused too.
    let page = LoginPage::open(&server, &client_id, loopback(1)).await;
    for _ in 0..5 {
        page.attempt(&server, "alice", "guess").await;
    }
    assert_eq!(
        page.attempt(&server, FULLWIDTH_ALICE, LDAP_ALICE_PW).await,
        Outcome::Refused,
        "alice is at her limit, and the fullwidth name is alice"
    );
}

// ---------------------------------------------------------------------------------------------
// One check per username at a time: a second attempt waits for the first, briefly
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_double_submitted_sign_in_waits_for_the_first_and_succeeds() {
    let server = start().await;
    let client_id = server.register_public().await;
    let first = LoginPage::open(&server, &client_id, loopback(1)).await;
    let second = LoginPage::open(&server, &client_id, loopback(1)).await;
    let (ep1, ep2) = (server.ep.clone(), server.ep.clone());
    let a = tokio::spawn(async move { first.attempt(&ep1, USER, PASSWORD).await });
    let b = tokio::spawn(async move { second.attempt(&ep2, USER, PASSWORD).await });
    assert_eq!(
        (a.await.unwrap(), b.await.unwrap()),
        (Outcome::SignedIn, Outcome::SignedIn),
        "the second check waits for the first instead of running beside it or being refused"
    );
}

#[tokio::test]
async fn a_check_in_flight_elsewhere_delays_a_sign_in_only_briefly() {
    let server = start().await;
    let client_id = server.register_public().await;
    // Another server on the same store is checking alice's password (and may have crashed): the
    // username's lease is held.
    let policy = *server.state.login_throttle.policy();
    let held = mcp_oauth_provider::SignInAttempt {
        username_key: mcp_oauth::oauth::login_throttle::username_key(USER),
        address_key: "192.0.2.99".into(),
        now: mcp_oauth_provider::unix_now(),
    };
    assert_eq!(
        server
            .state
            .provider
            .throttle()
            .begin_attempt(&held, &policy)
            .await
            .unwrap(),
        mcp_oauth_provider::ThrottleDecision::Admitted
    );
    let page = LoginPage::open(&server, &client_id, loopback(1)).await;
    let started = Instant::now();
    let r = server
        .post_login(&page.browser, &page.tx, &page.csrf, USER, PASSWORD)
        .await;
    let waited = started.elapsed();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(10),
        "waits for the check in flight (about 3 s), then refuses: waited {waited:?}"
    );
    // Once the other check ends, alice signs in.
    server
        .state
        .provider
        .throttle()
        .end_attempt(&held, false, &policy)
        .await
        .unwrap();
    assert_eq!(
        page.attempt(&server, USER, PASSWORD).await,
        Outcome::SignedIn
    );
}

#[tokio::test]
async fn an_abandoned_sign_in_releases_the_username_at_once() {
    let server = start().await;
    let client_id = server.register_public().await;
    // The attacker's request is dropped while its password is being checked.
    let page = LoginPage::open(&server, &client_id, loopback(2)).await;
    let _ = page
        .browser
        .post(server.url("/login"))
        .timeout(Duration::from_millis(60))
        .form(&[
            ("tx", page.tx.as_str()),
            ("csrf_token", page.csrf.as_str()),
            ("username", USER),
            ("password", "guess"),
        ])
        .send()
        .await;
    // Alice is not kept waiting for the lease of a check nobody is waiting for.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alice = LoginPage::open(&server, &client_id, loopback(1)).await;
    assert_eq!(
        alice.attempt(&server, USER, PASSWORD).await,
        Outcome::SignedIn
    );
}

/// A form with nothing to check (an empty username or password, or a username longer than any
/// directory holds) is answered generically and never counted (login.rs), so it cannot lock a
/// user out.
#[tokio::test]
async fn empty_or_oversized_credentials_are_not_counted() {
    let s = start_with(Options {
        env: vec![("MCP_OAUTH__LOGIN__MAX_FAILED_ATTEMPTS", "2".into())],
        ..Default::default()
    })
    .await;
    let client = s.register_public().await;
    let b = browser();
    let (tx, csrf, _) = s.start_login(&b, &s.auth_params(&client)).await;
    let long = "a".repeat(257);
    for (user, pw) in [
        ("", "a-password"),
        (USER, ""),
        (long.as_str(), "a-password"),
    ] {
        for _ in 0..4 {
            let r = s.post_login(&b, &tx, &csrf, user, pw).await;
            assert_eq!(r.status(), StatusCode::OK, "{user:?} was counted");
            assert!(r.text().await.unwrap().contains(CHECKED));
        }
    }
    let r = s.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Allow access?"));
}
