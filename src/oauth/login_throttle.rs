//! Slows password guessing: after `max_failed_attempts` failed sign-ins for one username within the
//! lockout period, further attempts for that username are refused without checking the password
//! until the period has passed since the last failure (OWASP Authentication Cheat Sheet, "Account
//! lockout"; NIST SP 800-63B §5.2.2 rate limiting).
//!
//! Counted per normalised username whether or not the account exists, so the throttle reveals
//! nothing about existence. The state is per process (several servers each apply their own limit).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most usernames tracked at once; older entries are dropped first.
const MAX_TRACKED: usize = 50_000;

#[derive(Debug)]
pub struct LoginThrottle {
    max_failures: u32,
    lockout: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `max_failures` 0 disables the throttle.
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures,
            lockout,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(username: &str) -> String {
        username.trim().to_lowercase()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Instant)>> {
        match self.failures.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// True when `username` may try a password now.
    pub fn allows(&self, username: &str) -> bool {
        if self.max_failures == 0 {
            return true;
        }
        let mut table = self.lock();
        match table.get(&Self::key(username)) {
            Some((count, last)) if last.elapsed() >= self.lockout => {
                let _ = count;
                table.remove(&Self::key(username));
                true
            }
            Some((count, _)) => *count < self.max_failures,
            None => true,
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&self, username: &str) {
        if self.max_failures == 0 {
            return;
        }
        let now = Instant::now();
        let mut table = self.lock();
        if table.len() >= MAX_TRACKED {
            let lockout = self.lockout;
            table.retain(|_, (_, last)| now.duration_since(*last) < lockout);
        }
        let entry = table.entry(Self::key(username)).or_insert((0, now));
        if now.duration_since(entry.1) >= self.lockout {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.1 = now;
    }

    /// Forgets the failures of `username` after a successful sign-in.
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(&Self::key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_limit_and_unlocks_after_the_period() {
        let t = LoginThrottle::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(t.allows("Alice"));
            t.failed("alice");
        }
        assert!(!t.allows("ALICE "), "normalised username, locked");
        assert!(t.allows("bob"), "other users are unaffected");
        std::thread::sleep(Duration::from_millis(250));
        assert!(t.allows("alice"), "unlocked after the period");
        t.failed("alice");
        t.succeeded("alice");
        assert!(t.allows("alice"));
        let off = LoginThrottle::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            off.failed("x");
        }
        assert!(off.allows("x"));
    }
}
