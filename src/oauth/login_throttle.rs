//! Slows password guessing without letting a stranger lock a user out (OWASP Authentication Cheat
//! Sheet, "Login Throttling" and "Account Lockout"; OWASP Credential Stuffing Prevention Cheat
//! Sheet; NIST SP 800-63B §5.2.2 "Rate Limiting (Throttling)", which allows a wait that grows with
//! the failures and risk-based exemptions such as a known address instead of a lock).
//!
//! Each sign-in is decided before the password is checked, as one atomic step in the storage
//! backend ([`SignInThrottleStore`](mcp_oauth_provider::SignInThrottleStore)), so every server on one database applies one limit:
//! - at most one check per username is in flight at a time; a second attempt waits briefly for it
//!   (up to [`BUSY_WAIT`]), then is refused;
//! - per (username, client address): `max_failed_attempts` failures, then that address is refused
//!   for this username until `failure_window` has passed without failure;
//! - per username, across addresses: after `backoff_after` failures each further attempt waits
//!   1 s, 2 s, 4 s, … up to `backoff_max` after the last failure. An address that signed in as this
//!   user within `known_address_ttl` is spared this back-off, so a stranger cannot keep the user out
//!   of where they usually sign in;
//! - a failure is counted when the attempt is admitted, so a check that never finishes still counts.
//!
//! The username is counted under its normalised form ([`normalize_username`]: NFKC, full case
//! folding, default-ignorable code points removed, white space collapsed), hashed, whether or not
//! the account exists, so look-alike spellings share one counter, nothing reveals existence, and
//! the table never holds a typed name (often a mistyped password) in clear. IPv6 clients are
//! counted per /64, the block one subscriber usually holds.
//!
//! Separately, [`AddressGate`] bounds the sign-ins one address has in flight in this process, so one
//! address cannot fill the password-hashing queue ahead of everyone else (OWASP API Security Top
//! 10 2023, API4 "Unrestricted Resource Consumption").

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_oauth_provider::{ProviderResult, SignInAttempt, ThrottleDecision, ThrottlePolicy};
use sha2::{Digest, Sha256};

use crate::config::LoginSettings;
use crate::state::{AppState, now};

/// How long an attempt waits for another check of the same username before it is refused.
pub const BUSY_WAIT: Duration = Duration::from_secs(3);
/// How often a waiting attempt asks again.
const BUSY_POLL: Duration = Duration::from_millis(25);
/// The longest a check may hold its username; the login handler gives up on a check earlier
/// ([`CHECK_TIMEOUT`]) so two checks never overlap.
const IN_FLIGHT_LEASE: i64 = 60;
/// How long the login handler waits for the authenticator.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(50);
/// Longer usernames are refused without a check or a count (no directory holds such names, and
/// normalising them costs time).
pub const MAX_USERNAME_BYTES: usize = 256;

/// The form of a username the throttle counts: NFKC after full case folding (Unicode's
/// NFKC_Casefold, computed as NFKC(fold(NFKC(fold(NFD(s)))))), with Default_Ignorable_Code_Point
/// characters (soft hyphen, zero-width space, variation selectors, …) removed and each run of
/// white space made one space, trimmed. Directories compare names at least this loosely: OpenLDAP's
/// caseIgnoreMatch prepares strings the same way (RFC 4518 §2: map ignorables to nothing, NFKC,
/// case folding, insignificant space), so `ａlice`, `ALICE` and `al\u{AD}ice` all count as `alice`.
pub fn normalize_username(name: &str) -> String {
    use icu_casemap::CaseMapper;
    use icu_normalizer::{ComposingNormalizer, DecomposingNormalizer};
    use icu_properties::CodePointSetData;
    use icu_properties::props::{DefaultIgnorableCodePoint, WhiteSpace};

    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let space = CodePointSetData::new::<WhiteSpace>();
    let nfkc = ComposingNormalizer::new_nfkc();
    let fold = CaseMapper::new();
    let visible: String = name.chars().filter(|c| !ignorable.contains(*c)).collect();
    let decomposed = DecomposingNormalizer::new_nfd().normalize(&visible);
    let once = nfkc.normalize(&fold.fold_string(&decomposed)).into_owned();
    let twice = nfkc.normalize(&fold.fold_string(&once)).into_owned();
    let mut out = String::with_capacity(twice.len());
    for word in twice
        .split(|c: char| space.contains(c))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().filter(|c| !ignorable.contains(*c)));
    }
    out
}

/// The key a username is counted under: SHA-256 of its normalised form, hex.
pub fn username_key(name: &str) -> String {
    let digest = Sha256::digest(normalize_username(name).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key an address is counted under: an IPv4 address as is, an IPv6 address by its /64.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The throttle: the policy from `[login]`, applied through the provider's store.
#[derive(Debug)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
    busy_wait: Duration,
}

/// What [`LoginThrottle::begin`] decided.
pub enum Admission {
    /// Check the password, then [`AttemptGuard::finish`].
    Admitted(AttemptGuard),
    /// Refused without a check; the client may try again after this many seconds.
    Refused { retry_after: i64 },
}

impl LoginThrottle {
    /// The policy from validated settings.
    pub fn new(login: &LoginSettings) -> Self {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            policy: ThrottlePolicy {
                max_failures_per_address: login.max_failed_attempts,
                failure_window: secs(login.failure_window),
                backoff_after: login.backoff_after,
                backoff_max: secs(login.backoff_max),
                in_flight_lease: IN_FLIGHT_LEASE,
                known_address_ttl: secs(login.known_address_ttl),
            },
            busy_wait: BUSY_WAIT,
        }
    }

    pub fn policy(&self) -> &ThrottlePolicy {
        &self.policy
    }

    /// Takes the limit for one attempt of `username` from `ip`, waiting up to [`BUSY_WAIT`] while
    /// another check of the same username is in flight.
    pub async fn begin(
        &self,
        state: &AppState,
        username: &str,
        ip: IpAddr,
    ) -> ProviderResult<Admission> {
        let mut attempt = SignInAttempt {
            username_key: username_key(username),
            address_key: address_key(ip),
            now: now(),
        };
        let deadline = tokio::time::Instant::now() + self.busy_wait;
        loop {
            attempt.now = now();
            match state
                .provider
                .throttle()
                .begin_attempt(&attempt, &self.policy)
                .await?
            {
                ThrottleDecision::Admitted => {
                    return Ok(Admission::Admitted(AttemptGuard {
                        state: Some(state.clone()),
                        attempt,
                        policy: self.policy,
                    }));
                }
                ThrottleDecision::Refused { retry_after } => {
                    return Ok(Admission::Refused { retry_after });
                }
                ThrottleDecision::Busy if tokio::time::Instant::now() >= deadline => {
                    return Ok(Admission::Refused { retry_after: 1 });
                }
                ThrottleDecision::Busy => tokio::time::sleep(BUSY_POLL).await,
            }
        }
    }
}

/// An admitted attempt. [`AttemptGuard::finish`] reports its outcome; dropped unfinished (the
/// request was abandoned), it releases the username as a failure in the background.
pub struct AttemptGuard {
    state: Option<AppState>,
    attempt: SignInAttempt,
    policy: ThrottlePolicy,
}

impl AttemptGuard {
    /// Releases the username; a success clears its counters and marks the address known.
    pub async fn finish(mut self, succeeded: bool) {
        if let Some(state) = self.state.take() {
            end(state, self.attempt.clone(), succeeded, self.policy).await;
        }
    }
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            let attempt = self.attempt.clone();
            let policy = self.policy;
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(end(state, attempt, false, policy));
            }
        }
    }
}

async fn end(state: AppState, mut attempt: SignInAttempt, succeeded: bool, policy: ThrottlePolicy) {
    attempt.now = now();
    if let Err(error) = state
        .provider
        .throttle()
        .end_attempt(&attempt, succeeded, &policy)
        .await
    {
        // The lease then runs out by itself after IN_FLIGHT_LEASE seconds.
        tracing::warn!(%error, "releasing a sign-in attempt failed");
    }
}

/// Bounds the sign-ins one address has in flight in this process.
#[derive(Debug)]
pub struct AddressGate {
    max: usize,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

/// One sign-in in flight for an address; dropping it frees the slot.
#[derive(Debug)]
pub struct AddressSlot {
    key: String,
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
}

impl AddressGate {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            in_flight: Arc::default(),
        }
    }

    /// A slot for `ip`, or `None` when it already has `max` sign-ins in flight.
    pub fn try_enter(&self, ip: IpAddr) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut map = match self.in_flight.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let n = map.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            key,
            in_flight: Arc::clone(&self.in_flight),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = match self.in_flight.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_normalise_to_one_name() {
        for name in [
            "alice",
            "Alice",
            "ALICE",
            "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}",
            "al\u{00AD}ice",
            "al\u{200B}ice",
            "\u{1D41A}lice",
            "  alice ",
            "alice\u{FE0F}",
        ] {
            assert_eq!(normalize_username(name), "alice", "{name:?}");
            assert_eq!(username_key(name), username_key("alice"), "{name:?}");
        }
        assert_eq!(normalize_username("STRASSE"), normalize_username("straße"));
        assert_eq!(normalize_username("ﬁona"), "fiona", "ligatures decompose");
        assert_eq!(
            normalize_username("e\u{0301}"),
            normalize_username("\u{00C9}"),
            "composed and decomposed forms"
        );
        assert_eq!(normalize_username("smith,  j"), "smith, j");
        assert_eq!(normalize_username("a\u{3000}b"), "a b", "ideographic space");
        assert_ne!(username_key("alice"), username_key("bob"));
        assert_ne!(
            normalize_username("\u{0430}lice"),
            "alice",
            "Cyrillic а is another letter (and another directory entry)"
        );
        assert_eq!(username_key("alice").len(), 64);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap()),
            "192.0.2.1",
            "IPv4-mapped counts as IPv4"
        );
    }

    #[test]
    fn the_gate_bounds_in_flight_sign_ins_per_address() {
        let gate = AddressGate::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let one = gate.try_enter(a).unwrap();
        let two = gate.try_enter(a).unwrap();
        assert!(gate.try_enter(a).is_none(), "a third at once is refused");
        assert!(gate.try_enter(b).is_some(), "other addresses are not");
        drop(one);
        let three = gate.try_enter(a);
        assert!(three.is_some(), "a finished sign-in frees its slot");
        drop((two, three));
        assert!(gate.in_flight.lock().unwrap().is_empty(), "no leak");
    }
}
