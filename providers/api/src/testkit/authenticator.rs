//! The authenticator kit: checks every [`UserAuthenticator`] must pass, run with
//! [`authenticator_conformance_tests!`](crate::authenticator_conformance_tests) or called one by one.
//!
//! Each check takes the authenticator under test and an [`AuthenticatorFixture`] (a user who can
//! sign in, their password, and a username that does not exist), and panics with a message of the
//! form `"<method>: <the contract broken>"`.
//!
//! Not checked: response *time*. The contract asks that an unknown user and a wrong password be
//! rejected in comparable time; timing measured in a test run is noise (shared CI machines, cold
//! caches), so the kit checks only that the two answers are the same. An authenticator must still
//! do the same work for both (e.g. verify against a dummy hash for an unknown user).

use std::sync::Arc;

use crate::*;

use super::unique;

/// What `check_subject` is expected to answer for a subject that just signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectLookup {
    /// The authenticator looks users up: `Active`.
    Active,
    /// The authenticator documents that it cannot look a user up without their password (e.g. LDAP
    /// direct-bind mode): `Unknown`.
    Unknown,
}

/// The directory the authenticator kit signs in against.
#[derive(Debug, Clone)]
pub struct AuthenticatorFixture {
    /// A user who exists and may sign in.
    pub username: String,
    /// Their password (non-empty).
    pub password: String,
    /// A username that does not exist.
    pub unknown_username: String,
    /// What `check_subject` answers for `username`'s subject.
    pub subject_lookup: SubjectLookup,
    /// A user whose stored password is empty, when the backend can hold one: an empty password
    /// must not sign them in either.
    pub empty_password_username: Option<String>,
}

impl AuthenticatorFixture {
    /// A fixture for an authenticator that looks users up (`check_subject` → `Active`).
    pub fn new(
        username: impl Into<String>,
        password: impl Into<String>,
        unknown_username: impl Into<String>,
    ) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            unknown_username: unknown_username.into(),
            subject_lookup: SubjectLookup::Active,
            empty_password_username: None,
        }
    }

    /// For an authenticator whose `check_subject` cannot look users up and answers `Unknown`.
    pub fn subject_lookup(mut self, expected: SubjectLookup) -> Self {
        self.subject_lookup = expected;
        self
    }

    /// Also checks that `username`, whose stored password is empty, cannot sign in with "".
    pub fn with_empty_password_user(mut self, username: impl Into<String>) -> Self {
        self.empty_password_username = Some(username.into());
        self
    }
}

/// Starts `authenticate` on its own task, so that a panic in the authenticator fails the check
/// with a message naming the input instead of tearing the check down.
fn start(
    auth: &Arc<dyn UserAuthenticator>,
    username: &str,
    password: &str,
) -> tokio::task::JoinHandle<ProviderResult<AuthOutcome>> {
    let (a, u, p) = (Arc::clone(auth), username.to_string(), password.to_string());
    tokio::spawn(async move { a.authenticate(&u, &p).await })
}

async fn finish(
    call: tokio::task::JoinHandle<ProviderResult<AuthOutcome>>,
    what: &str,
) -> ProviderResult<AuthOutcome> {
    match call.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("authenticate: MUST NOT panic, panicked on {what}: {message}")
        }
        Err(e) => panic!("authenticate: the call on {what} was cancelled: {e}"),
    }
}

async fn authenticate(
    auth: &Arc<dyn UserAuthenticator>,
    username: &str,
    password: &str,
    what: &str,
) -> ProviderResult<AuthOutcome> {
    finish(start(auth, username, password), what).await
}

async fn signed_in_subject(auth: &Arc<dyn UserAuthenticator>, f: &AuthenticatorFixture) -> String {
    match authenticate(auth, &f.username, &f.password, "the fixture user").await {
        Ok(AuthOutcome::Authenticated(user)) => user.subject,
        other => {
            panic!("authenticate: the right password MUST sign the fixture user in, got {other:?}")
        }
    }
}

/// `authenticate` with the right password MUST answer `Authenticated` with a non-empty subject,
/// and the same subject at every sign-in (it becomes the tokens' `sub`).
pub async fn right_password_signs_in(auth: Arc<dyn UserAuthenticator>, f: &AuthenticatorFixture) {
    let first = signed_in_subject(&auth, f).await;
    assert!(
        !first.trim().is_empty(),
        "authenticate: the subject of a signed-in user MUST NOT be empty"
    );
    let second = signed_in_subject(&auth, f).await;
    assert_eq!(
        first, second,
        "authenticate: the subject MUST be stable, two sign-ins of one user gave two subjects"
    );
}

/// `authenticate` MUST answer `Rejected` for a wrong password and for an unknown user, and the two
/// answers MUST be indistinguishable (same variant, same content; never an error for one and
/// `Rejected` for the other). Near misses of the password (another case, a prefix, a suffix) are
/// wrong passwords too. Response time is not measured (see the module docs).
pub async fn wrong_password_and_unknown_user_are_rejected_alike(
    auth: Arc<dyn UserAuthenticator>,
    f: &AuthenticatorFixture,
) {
    let unknown = authenticate(&auth, &f.unknown_username, &f.password, "an unknown user").await;
    let mut wrong_passwords = vec![
        ("a wrong password", format!("{}-wrong", f.password)),
        ("the password with a suffix", format!("{}x", f.password)),
    ];
    let mut prefix = f.password.clone();
    prefix.pop();
    if !prefix.is_empty() {
        wrong_passwords.push(("a prefix of the password", prefix));
    }
    let swapped: String = f
        .password
        .chars()
        .map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                c.to_uppercase().next().unwrap_or(c)
            }
        })
        .collect();
    if swapped != f.password {
        wrong_passwords.push(("the password in another case", swapped));
    }
    for (what, password) in &wrong_passwords {
        let wrong = authenticate(&auth, &f.username, password, what).await;
        match (&wrong, &unknown) {
            (Ok(AuthOutcome::Rejected), Ok(AuthOutcome::Rejected)) => {}
            (Ok(AuthOutcome::Authenticated(_)), _) => {
                panic!("authenticate: {what} signed the user in")
            }
            (_, Ok(AuthOutcome::Authenticated(_))) => {
                panic!("authenticate: an unknown user was signed in")
            }
            _ => panic!(
                "authenticate: unknown user and wrong password MUST be indistinguishable \
                 (both Rejected): {what} gave {wrong:?}, an unknown user gave {unknown:?}"
            ),
        }
    }
}

/// `authenticate` MUST answer `Rejected` (not an error) for an empty password, whether the user
/// exists or not, for an empty username, and for a user whose stored password is empty (an LDAP
/// directory treats a bind with an empty password as an anonymous bind that succeeds). The trait
/// also asks that this answer come without contacting any backend; the kit cannot see that.
pub async fn empty_password_is_rejected(
    auth: Arc<dyn UserAuthenticator>,
    f: &AuthenticatorFixture,
) {
    let mut cases = vec![
        ("the fixture user", f.username.clone()),
        ("an unknown user", f.unknown_username.clone()),
        ("an empty username", String::new()),
    ];
    if let Some(name) = &f.empty_password_username {
        cases.push(("a user whose stored password is empty", name.clone()));
    }
    for (what, username) in cases {
        let got = authenticate(
            &auth,
            &username,
            "",
            &format!("{what} with an empty password"),
        )
        .await;
        assert!(
            matches!(got, Ok(AuthOutcome::Rejected)),
            "authenticate: an empty password MUST be Rejected, for {what} it gave {got:?}"
        );
    }
}

/// Usernames with odd input (very long, NUL, control characters, LDAP filter and DN
/// metacharacters, SQL quoting, wildcards, the fixture username with something appended) MUST be
/// `Rejected` or `Unavailable`: never `Authenticated` (even with the fixture user's password),
/// never a panic, never another error.
pub async fn odd_usernames_never_sign_in(
    auth: Arc<dyn UserAuthenticator>,
    f: &AuthenticatorFixture,
) {
    let u = &f.username;
    let cases: Vec<(&str, String)> = vec![
        ("a 10 000-character username", "a".repeat(10_000)),
        ("a username of NULs", "\0\0".into()),
        ("the username with a NUL appended", format!("{u}\0")),
        ("the username, NUL, a filter", format!("{u}\0)(uid=*")),
        ("control characters", format!("{u}\u{7}\r\n\t\u{1b}[0m")),
        ("a lone wildcard", "*".into()),
        ("the username with a wildcard", format!("{u}*")),
        (
            "a wildcard prefix",
            format!("*{}", u.get(1..).unwrap_or("")),
        ),
        ("an LDAP filter injection", format!("{u})(|(uid=*")),
        ("an LDAP filter injection", "*)(|(objectClass=*)".into()),
        ("an LDAP DN injection", format!("{u},dc=example,dc=org")),
        ("an LDAP attribute injection", format!("uid={u}")),
        ("a backslash escape", format!("{u}\\2a")),
        ("a SQL injection", "' OR 1=1 --".into()),
        ("a SQL injection", format!("{u}' OR '1'='1")),
        ("a SQL injection", format!("{u}'; --")),
        ("SQL LIKE wildcards", "%".into()),
        (
            "SQL LIKE wildcards",
            format!("{}_", u.get(..u.len().saturating_sub(1)).unwrap_or("")),
        ),
        ("a right-to-left override", format!("{u}\u{202e}")),
    ];
    // All at once: slow (hashing, network) authenticators answer in parallel, and concurrent
    // sign-ins must not disturb each other either.
    let calls: Vec<_> = cases
        .iter()
        .map(|(what, username)| (*what, start(&auth, username, &f.password)))
        .collect();
    for (what, call) in calls {
        let got = finish(call, what).await;
        match got {
            Ok(AuthOutcome::Rejected) => {}
            Err(ref e) if e.is_unavailable() => {}
            Ok(AuthOutcome::Authenticated(user)) => panic!(
                "authenticate: {what} MUST NOT sign in, it signed in as {:?}",
                user.subject
            ),
            Err(e) => panic!(
                "authenticate: {what} MUST be Rejected (or Unavailable), it gave the error {e:?}"
            ),
        }
    }
}

/// `check_subject` of a subject that just signed in MUST answer `Active` (or `Unknown` for an
/// authenticator that cannot look users up, as the fixture says); of a made-up subject it MUST
/// answer `Gone` or `Unknown`, never `Active` and never an error.
pub async fn check_subject_knows_who_signed_in(
    auth: Arc<dyn UserAuthenticator>,
    f: &AuthenticatorFixture,
) {
    let subject = signed_in_subject(&auth, f).await;
    let got = auth.check_subject(&subject).await;
    match (f.subject_lookup, &got) {
        (SubjectLookup::Active, Ok(SubjectStatus::Active { .. })) => {}
        (SubjectLookup::Unknown, Ok(SubjectStatus::Unknown)) => {}
        (expected, _) => panic!(
            "check_subject: the subject that just signed in MUST be {expected:?}, got {got:?}"
        ),
    }
    for (what, made_up) in [
        ("a made-up subject", unique("no-such-subject")),
        ("an empty subject", String::new()),
        ("a wildcard subject", "*".to_string()),
    ] {
        let got = auth.check_subject(&made_up).await;
        assert!(
            matches!(got, Ok(SubjectStatus::Gone | SubjectStatus::Unknown)),
            "check_subject: {what} MUST be Gone or Unknown, got {got:?}"
        );
    }
}

/// Every authenticator check, one after the other.
pub async fn authenticator_conformance(auth: Arc<dyn UserAuthenticator>, f: &AuthenticatorFixture) {
    right_password_signs_in(Arc::clone(&auth), f).await;
    wrong_password_and_unknown_user_are_rejected_alike(Arc::clone(&auth), f).await;
    empty_password_is_rejected(Arc::clone(&auth), f).await;
    odd_usernames_never_sign_in(Arc::clone(&auth), f).await;
    check_subject_knows_who_signed_in(auth, f).await;
}

/// Generates one `#[tokio::test]` per authenticator check. `$make` is an async expression
/// evaluating to `(Arc<dyn UserAuthenticator>, AuthenticatorFixture)`, evaluated once per test.
/// With `optional:`, it evaluates to `Option<(…)>` and `None` skips (for directories that may be
/// absent; `$make` itself must panic instead when the test run declared the service required).
///
/// In a plugin's `Cargo.toml`:
///
/// ```toml
/// [dev-dependencies]
/// mcp-oauth-provider = { version = "0.1", features = ["testkit"] }
/// tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
/// ```
///
/// and in its tests:
///
/// ```ignore
/// use std::sync::Arc;
/// use mcp_oauth_provider::testkit::AuthenticatorFixture;
///
/// mcp_oauth_provider::authenticator_conformance_tests!(async {
///     let auth = my_directory::Authenticator::for_tests().await;
///     (
///         Arc::new(auth) as Arc<dyn mcp_oauth_provider::UserAuthenticator>,
///         AuthenticatorFixture::new("alice", "alice-password", "nobody"),
///     )
/// });
/// ```
#[macro_export]
macro_rules! authenticator_conformance_tests {
    (optional: $make:expr) => {
        $crate::authenticator_conformance_tests!(@optional $make;
            right_password_signs_in,
            wrong_password_and_unknown_user_are_rejected_alike,
            empty_password_is_rejected,
            odd_usernames_never_sign_in,
            check_subject_knows_who_signed_in,
        );
    };
    (@optional $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let made: ::core::option::Option<(
                    ::std::sync::Arc<dyn $crate::UserAuthenticator>,
                    $crate::testkit::AuthenticatorFixture,
                )> = $make.await;
                match made {
                    ::core::option::Option::Some((auth, fixture)) => {
                        $crate::testkit::$check(auth, &fixture).await
                    }
                    ::core::option::Option::None => {
                        ::std::eprintln!("skipped {}: directory not available", ::core::stringify!($check))
                    }
                }
            }
        )*
    };
    ($make:expr) => {
        $crate::authenticator_conformance_tests!(@each $make;
            right_password_signs_in,
            wrong_password_and_unknown_user_are_rejected_alike,
            empty_password_is_rejected,
            odd_usernames_never_sign_in,
            check_subject_knows_who_signed_in,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let (auth, fixture): (
                    ::std::sync::Arc<dyn $crate::UserAuthenticator>,
                    $crate::testkit::AuthenticatorFixture,
                ) = $make.await;
                $crate::testkit::$check(auth, &fixture).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    //! The kit goes red on authenticators that break each contract.
    use super::*;
    use async_trait::async_trait;

    /// Signs in `alice` / `secret`; each flag breaks one contract.
    #[derive(Default, Clone, Copy)]
    struct Toy {
        empty_password_signs_in: bool,
        unknown_user_is_an_error: bool,
        wildcard_matches: bool,
        panics_on_nul: bool,
        made_up_subject_is_active: bool,
    }

    fn alice() -> AuthenticatedUser {
        AuthenticatedUser {
            subject: "sub-alice".into(),
            username: "alice".into(),
            display_name: None,
            email: None,
            groups: vec![],
            allowed_scopes: None,
        }
    }

    #[async_trait]
    impl UserAuthenticator for Toy {
        async fn authenticate(
            &self,
            username: &str,
            password: &str,
        ) -> ProviderResult<AuthOutcome> {
            if self.panics_on_nul && username.contains('\0') {
                panic!("NUL in a C string");
            }
            let known = username == "alice" || (self.wildcard_matches && username == "*");
            if !known {
                return if self.unknown_user_is_an_error {
                    Err(ProviderError::backend_msg("no such entry"))
                } else {
                    Ok(AuthOutcome::Rejected)
                };
            }
            Ok(
                if password == "secret" || (self.empty_password_signs_in && password.is_empty()) {
                    AuthOutcome::Authenticated(alice())
                } else {
                    AuthOutcome::Rejected
                },
            )
        }
        async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
            Ok(
                if subject == "sub-alice" || self.made_up_subject_is_active {
                    SubjectStatus::Active {
                        allowed_scopes: None,
                    }
                } else {
                    SubjectStatus::Gone
                },
            )
        }
    }

    fn fixture() -> AuthenticatorFixture {
        AuthenticatorFixture::new("alice", "secret", "nobody")
    }

    /// Runs the whole kit against `toy` and returns its failure message (None if it passed).
    async fn failure(toy: Toy) -> Option<String> {
        let auth: Arc<dyn UserAuthenticator> = Arc::new(toy);
        let run = tokio::spawn(async move { authenticator_conformance(auth, &fixture()).await });
        let payload = run.await.err()?.into_panic();
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_correct_authenticator_passes() {
        assert_eq!(failure(Toy::default()).await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_broken_contract_is_named() {
        let cases = [
            (
                Toy {
                    unknown_user_is_an_error: true,
                    ..Toy::default()
                },
                "authenticate: unknown user and wrong password MUST be indistinguishable",
            ),
            (
                Toy {
                    empty_password_signs_in: true,
                    ..Toy::default()
                },
                "authenticate: an empty password MUST be Rejected",
            ),
            (
                Toy {
                    wildcard_matches: true,
                    ..Toy::default()
                },
                "authenticate: a lone wildcard MUST NOT sign in",
            ),
            (
                Toy {
                    panics_on_nul: true,
                    ..Toy::default()
                },
                "authenticate: MUST NOT panic, panicked on a username of NULs",
            ),
            (
                Toy {
                    made_up_subject_is_active: true,
                    ..Toy::default()
                },
                "check_subject: a made-up subject MUST be Gone or Unknown",
            ),
        ];
        for (toy, expected) in cases {
            let message = failure(toy)
                .await
                .expect("the kit passed a broken authenticator");
            assert!(
                message.starts_with(expected),
                "expected {expected:?}, got {message:?}"
            );
        }
    }
}
