//! Sign-in throttling state, kept in the storage backend so every server on one database applies
//! one limit (OWASP Authentication Cheat Sheet, "Protect against automated attacks"; NIST SP
//! 800-63B §5.2.2, "Rate Limiting (Throttling)").
//!
//! The core computes the keys (a hash of the normalised username, and the client's address
//! bucket) and the [`ThrottlePolicy`]; a store only has to make [`SignInThrottleStore::begin_attempt`]
//! and [`SignInThrottleStore::end_attempt`] atomic. The decision itself is written once, here, in
//! [`ThrottlePolicy::decide`], so backends cannot disagree about it.
//!
//! Three counters take part in one decision:
//! - the **username** counter: failures of this username from any address, and whether a check for
//!   it is in flight (at most one at a time, held as a lease so a crashed server cannot hold it for
//!   ever);
//! - the **pair** counter: failures of this username from this address;
//! - whether this address is **known**: it signed in as this username before, within
//!   `known_address_ttl`. A known address is exempt from the username's back-off (not from its own
//!   pair limit), so a stranger elsewhere cannot lock the user out of where they usually sign in.
//!
//! An admitted attempt is counted as a failure up front; a success then clears the counters. So a
//! check that never finishes (a crash, a dropped connection) still counts.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::{ProviderResult, UnixTime};

/// One sign-in attempt, as the throttle sees it. Both keys are opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInAttempt {
    /// Identifies the username (the core passes a hash of its normalised form). At most 128 bytes.
    pub username_key: String,
    /// Identifies the client's address (or address block). At most 64 bytes.
    pub address_key: String,
    /// The time of the attempt.
    pub now: UnixTime,
}

/// The limits, in seconds and counts. Validated by the core before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// Failures of one username from one address before that address is refused for this username.
    pub max_failures_per_address: u32,
    /// A counter with no new failure for this long starts again from zero.
    pub failure_window: i64,
    /// Failures of one username from any address before its back-off starts.
    pub backoff_after: u32,
    /// The back-off doubles from one second with each further failure, up to this.
    pub backoff_max: i64,
    /// How long a check holds the username's in-flight lease at most.
    pub in_flight_lease: i64,
    /// How long an address stays known after a successful sign-in (0 = never known).
    pub known_address_ttl: i64,
}

/// One counter as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleCounter {
    /// Failures counted since the window began.
    pub failures: u32,
    /// Time of the last counted failure (0 = none).
    pub last_failure: UnixTime,
    /// Username counters only: a check is in flight until this time (0 = none).
    pub busy_until: UnixTime,
}

/// One username's stored counters, as an administrator sees them (`users list`, `users unlock`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsernameCounters {
    /// The username's own counter: failures from any address.
    pub user: ThrottleCounter,
    /// One counter per address key with failures of this username from it.
    pub addresses: Vec<(String, ThrottleCounter)>,
}

/// What [`SignInThrottleStore::begin_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Check the password now; the failure is already counted and the username's lease taken.
    /// Call [`SignInThrottleStore::end_attempt`] when the check is done.
    Admitted,
    /// Another check for this username is in flight. Nothing was counted; try again shortly.
    Busy,
    /// Refused without a check; nothing was counted. Try again in `retry_after` seconds (≥ 1).
    Refused { retry_after: i64 },
}

impl ThrottleCounter {
    /// The counter as seen at `now`: failures older than the window are forgotten.
    pub fn current(self, now: UnixTime, policy: &ThrottlePolicy) -> Self {
        if self.failures > 0 && now >= self.last_failure.saturating_add(policy.failure_window) {
            Self {
                failures: 0,
                last_failure: 0,
                busy_until: self.busy_until,
            }
        } else {
            self
        }
    }
}

impl ThrottlePolicy {
    /// The back-off after `failures` failures of a username: none up to `backoff_after`, then
    /// 1 s, 2 s, 4 s, … capped at `backoff_max`.
    pub fn backoff(&self, failures: u32) -> i64 {
        if failures < self.backoff_after {
            return 0;
        }
        let k = failures - self.backoff_after;
        let delay = if k >= 62 { i64::MAX } else { 1i64 << k };
        delay.min(self.backoff_max)
    }

    /// Decides one attempt and returns the counters to store. `user` and `pair` are the stored
    /// counters (default when absent), `known` whether the address is known for this username.
    pub fn decide(
        &self,
        user: ThrottleCounter,
        pair: ThrottleCounter,
        known: bool,
        now: UnixTime,
    ) -> (ThrottleDecision, ThrottleCounter, ThrottleCounter) {
        let mut user = user.current(now, self);
        let mut pair = pair.current(now, self);
        if user.busy_until > now {
            return (ThrottleDecision::Busy, user, pair);
        }
        if pair.failures >= self.max_failures_per_address {
            let retry_after = pair.last_failure.saturating_add(self.failure_window) - now;
            return (
                ThrottleDecision::Refused {
                    retry_after: retry_after.max(1),
                },
                user,
                pair,
            );
        }
        if !known {
            let wait_until = user
                .last_failure
                .saturating_add(self.backoff(user.failures));
            if user.failures >= self.backoff_after && now < wait_until {
                return (
                    ThrottleDecision::Refused {
                        retry_after: (wait_until - now).max(1),
                    },
                    user,
                    pair,
                );
            }
        }
        user.failures = user.failures.saturating_add(1);
        user.last_failure = now;
        user.busy_until = now.saturating_add(self.in_flight_lease);
        pair.failures = pair.failures.saturating_add(1);
        pair.last_failure = now;
        (ThrottleDecision::Admitted, user, pair)
    }

    /// A failed check ended at `now`: the counter's last failure is dated then, its lease released.
    pub fn failed_at(&self, c: ThrottleCounter, now: UnixTime) -> ThrottleCounter {
        ThrottleCounter {
            failures: c.failures,
            last_failure: if c.failures > 0 {
                c.last_failure.max(now)
            } else {
                c.last_failure
            },
            busy_until: 0,
        }
    }

    /// Until when the username is locked at `now`, if it is: its back-off (for addresses it has not
    /// signed in from), or the longest refusal of one address that reached
    /// `max_failures_per_address`. `None` when no attempt would be refused for failures.
    pub fn locked_until(&self, c: &UsernameCounters, now: UnixTime) -> Option<UnixTime> {
        let user = c.user.current(now, self);
        let backoff_end = (user.failures >= self.backoff_after)
            .then(|| {
                user.last_failure
                    .saturating_add(self.backoff(user.failures))
            })
            .filter(|end| *end > now);
        let address_end = c
            .addresses
            .iter()
            .map(|(_, p)| p.current(now, self))
            .filter(|p| p.failures >= self.max_failures_per_address)
            .map(|p| p.last_failure.saturating_add(self.failure_window))
            .filter(|end| *end > now)
            .max();
        backoff_end.into_iter().chain(address_end).max()
    }

    /// When a stored counter may be deleted: nothing in it matters any more after this.
    pub fn expires_at(&self, c: &ThrottleCounter) -> UnixTime {
        c.last_failure
            .saturating_add(self.failure_window)
            .max(c.busy_until)
    }
}

/// Where sign-in throttle counters live, shared by every server on one store.
///
/// The core calls [`begin_attempt`](Self::begin_attempt) before it checks a password and
/// [`end_attempt`](Self::end_attempt) after; the server's upkeep purges what expired. The core
/// computes the keys and the policy, and [`ThrottlePolicy::decide`] makes the decision: a store only
/// keeps the counters and makes each step atomic. Keys are opaque: a store MUST NOT interpret them,
/// and MUST accept any UTF-8 of the documented lengths. Every method's contract is on the method.
#[async_trait]
pub trait SignInThrottleStore: Send + Sync {
    /// Decides whether the attempt may check a password now, and counts it when it may.
    ///
    /// MUST read the username counter, the pair counter (this username from this address) and the
    /// known-address mark (known when its time is > `attempt.now`), apply
    /// [`ThrottlePolicy::decide`] and, on `Admitted`, store the counters it returns, as ONE atomic
    /// step: of any number of concurrent calls (from this process or from other servers on the same
    /// store) for one `username_key`, each sees the state the previous one stored. Two calls MUST NOT
    /// both be `Admitted` while the first one's lease is held, and the number admitted MUST never
    /// exceed what `decide` allows when the calls are run one by one.
    ///
    /// On `Busy` and `Refused` it MUST store nothing (nothing is counted). A missing counter reads as
    /// [`ThrottleCounter::default`]. It MUST NOT decide by itself (no other limit, no clock of its
    /// own: `attempt.now` is the time).
    async fn begin_attempt(
        &self,
        attempt: &SignInAttempt,
        policy: &ThrottlePolicy,
    ) -> ProviderResult<ThrottleDecision>;

    /// Ends an attempt `begin_attempt` admitted, at `attempt.now`.
    ///
    /// MUST release the username's lease (`busy_until = 0`). On failure it MUST move the
    /// `last_failure` of both counters to `attempt.now` ([`ThrottlePolicy::failed_at`]: the failure,
    /// counted at admission, is dated when the check ended, so a slow check does not shorten the
    /// wait after it). On `succeeded` it MUST instead clear the username counter and this pair's
    /// counter (not the username's pairs at other addresses) and mark this address known until
    /// `attempt.now + known_address_ttl` (no mark when that is 0). Each MUST be one atomic step
    /// under the same per-username serialisation as `begin_attempt`, and MUST be idempotent.
    async fn end_attempt(
        &self,
        attempt: &SignInAttempt,
        succeeded: bool,
        policy: &ThrottlePolicy,
    ) -> ProviderResult<()>;

    /// Removes counters and known-address marks that no longer affect any decision at `now`, and
    /// returns how many it removed.
    ///
    /// MUST remove only those whose [`ThrottlePolicy::expires_at`] (and, for a mark, its known-until
    /// time) is ≤ `now`; removing one MUST be harmless to a concurrent `begin_attempt` (a missing
    /// counter reads as the zero counter, which is what an expired one means). A store MAY delete in
    /// batches.
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64>;

    /// The stored counters of one username (its own and every address's with failures), for
    /// administrators. MUST NOT change anything. A missing counter reads as the zero counter. The
    /// default, for stores written before administrators could see counters, says it is
    /// unsupported.
    async fn username_counters(&self, username_key: &str) -> ProviderResult<UsernameCounters> {
        let _ = username_key;
        Err(crate::ProviderError::Unsupported(
            "this storage backend cannot show sign-in throttle counters".into(),
        ))
    }

    /// An administrator's unlock: clears the failures of one username, its own counter and every
    /// address's (and any lease), as one atomic step under the same per-username serialisation as
    /// `begin_attempt`. MUST keep the known-address marks. Returns how many counters held failures or a lease.
    async fn clear_username(&self, username_key: &str) -> ProviderResult<u64> {
        let _ = username_key;
        Err(crate::ProviderError::Unsupported(
            "this storage backend cannot clear sign-in throttle counters".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: ThrottlePolicy = ThrottlePolicy {
        max_failures_per_address: 3,
        failure_window: 100,
        backoff_after: 5,
        backoff_max: 8,
        in_flight_lease: 30,
        known_address_ttl: 1000,
    };

    fn run(
        user: &mut ThrottleCounter,
        pair: &mut ThrottleCounter,
        known: bool,
        now: UnixTime,
    ) -> ThrottleDecision {
        let (d, u, p) = P.decide(*user, *pair, known, now);
        *user = u;
        *pair = p;
        if d == ThrottleDecision::Admitted {
            user.busy_until = 0;
        }
        d
    }

    #[test]
    fn locked_until_follows_the_decision() {
        let counter = |failures, last_failure| ThrottleCounter {
            failures,
            last_failure,
            busy_until: 0,
        };
        let none = UsernameCounters::default();
        assert_eq!(P.locked_until(&none, 1000), None);
        // One address at the limit: refused until the window has passed since its last failure.
        let pair = UsernameCounters {
            user: counter(3, 1000),
            addresses: vec![("a".into(), counter(3, 1000))],
        };
        assert_eq!(P.locked_until(&pair, 1000), Some(1100));
        assert_eq!(P.locked_until(&pair, 1100), None, "the window passed");
        // The username's back-off: 5 failures → 1 s, 7 → 4 s.
        let backoff = UsernameCounters {
            user: counter(7, 1000),
            addresses: vec![("a".into(), counter(1, 1000))],
        };
        assert_eq!(P.locked_until(&backoff, 1000), Some(1004));
        assert_eq!(P.locked_until(&backoff, 1004), None);
        // Below both limits: not locked.
        let few = UsernameCounters {
            user: counter(2, 1000),
            addresses: vec![("a".into(), counter(2, 1000))],
        };
        assert_eq!(P.locked_until(&few, 1000), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(
            (0..12).map(|n| P.backoff(n)).collect::<Vec<_>>(),
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 8, 8, 8]
        );
        assert_eq!(P.backoff(u32::MAX), 8);
    }

    #[test]
    fn the_pair_limit_applies_per_address_and_the_window_forgets() {
        let (mut user, mut pair) = Default::default();
        for t in 0..3 {
            assert_eq!(
                run(&mut user, &mut pair, true, 10 + t),
                ThrottleDecision::Admitted
            );
        }
        assert_eq!(
            run(&mut user, &mut pair, true, 20),
            ThrottleDecision::Refused { retry_after: 92 }
        );
        let mut other = ThrottleCounter::default();
        assert_eq!(
            run(&mut user, &mut other, true, 20),
            ThrottleDecision::Admitted
        );
        assert_eq!(
            run(&mut user, &mut pair, true, 112),
            ThrottleDecision::Admitted,
            "a quiet window forgets"
        );
        assert_eq!(pair.failures, 1);
    }

    #[test]
    fn the_username_backs_off_except_for_known_addresses() {
        let mut user = ThrottleCounter::default();
        for _ in 0..5 {
            let mut pair = ThrottleCounter::default();
            assert_eq!(
                run(&mut user, &mut pair, false, 0),
                ThrottleDecision::Admitted
            );
        }
        let mut pair = ThrottleCounter::default();
        assert_eq!(
            run(&mut user, &mut pair, false, 0),
            ThrottleDecision::Refused { retry_after: 1 }
        );
        assert_eq!(
            run(&mut user, &mut pair, true, 0),
            ThrottleDecision::Admitted,
            "a known address skips the back-off"
        );
        assert_eq!(
            run(&mut user, &mut pair, false, 1),
            ThrottleDecision::Refused { retry_after: 1 },
            "6 failures: 2 s after the last"
        );
        assert_eq!(
            run(&mut user, &mut pair, false, 2),
            ThrottleDecision::Admitted
        );
        assert_eq!(user.failures, 7);
    }

    #[test]
    fn one_check_in_flight_per_username() {
        let (user, pair) = Default::default();
        let (d, user, pair) = P.decide(user, pair, false, 0);
        assert_eq!(d, ThrottleDecision::Admitted);
        assert_eq!(user.busy_until, 30);
        let (d, user2, _) = P.decide(user, pair, true, 29);
        assert_eq!(d, ThrottleDecision::Busy);
        assert_eq!(user2.failures, 1, "a busy answer counts nothing");
        let (d, _, _) = P.decide(user, pair, false, 30);
        assert_eq!(d, ThrottleDecision::Admitted, "the lease runs out");
    }
}
