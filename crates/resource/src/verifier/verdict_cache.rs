//! [`VerdictCache`]: verified identities remembered by a hash of the token, for a bounded time.
//!
//! Both verifiers use it: the introspection verifier for RFC 7662 §4's optional answer cache, the
//! JWKS verifier so that a token presented on every MCP request pays its signature check once
//! (RFC 9068 §4's checks are pure functions of the token, the keys and the clock). The
//! authorization server uses it too, for the signature checks of its own tokens at introspection.
//!
//! - Keys are SHA-256 digests of what the verdict depends on (the token, and for the JWKS verifier
//!   the resource), so the cache holds no usable token.
//! - An entry is used only before its deadline, which the verifier sets no later than the token's
//!   `exp`, and only while its `epoch` is the verifier's current one (the JWKS verifier starts a new
//!   epoch with every fetched key set, so a key the issuer withdrew takes its verdicts with it).
//! - At most `max_entries`: when full, expired entries go first, then everything (no per-entry
//!   bookkeeping on the hot path; a burst of new tokens costs at most one re-verification each).
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use sha2::{Digest, Sha256};

/// The digest that names a verdict: SHA-256 of each part, length-prefixed so no two different
/// lists of parts give the same input.
pub fn verdict_key(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

struct Verdict<V> {
    value: V,
    until: Instant,
    epoch: u64,
}

/// Verified identities (or claims) by token digest; see the module docs.
pub struct VerdictCache<V> {
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], Verdict<V>>>,
}

impl<V: Clone> VerdictCache<V> {
    /// A cache of at most `max_entries`; zero keeps nothing.
    pub fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<[u8; 32], Verdict<V>>> {
        match self.entries.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The value remembered under `key`, if it is still good at `now` in `epoch`.
    pub fn get(&self, key: &[u8; 32], now: Instant, epoch: u64) -> Option<V> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(v) if v.until > now && v.epoch == epoch => Some(v.value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Remembers `value` under `key` until `until` (not at all when that is not after `now`).
    pub fn remember(&self, key: [u8; 32], value: &V, now: Instant, until: Instant, epoch: u64) {
        if until <= now || self.max_entries == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.max_entries {
            entries.retain(|_, v| v.until > now);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Verdict {
                value: value.clone(),
                until,
                epoch,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::verifier::Identity;

    fn someone() -> Identity {
        let claims = json!({"sub": "alice"}).as_object().cloned().unwrap();
        Identity::from_claims(claims, "http://127.0.0.1:9000").unwrap()
    }

    #[test]
    fn keys_separate_their_parts() {
        assert_ne!(verdict_key(&[b"ab", b"c"]), verdict_key(&[b"a", b"bc"]));
        assert_ne!(verdict_key(&[b"abc"]), verdict_key(&[b"abc", b""]));
        assert_eq!(verdict_key(&[b"a", b"b"]), verdict_key(&[b"a", b"b"]));
    }

    #[test]
    fn the_bound_is_what_was_asked() {
        assert_eq!(VerdictCache::<Identity>::new(7).max_entries(), 7);
        assert_eq!(VerdictCache::<Identity>::new(0).max_entries(), 0);
    }

    #[test]
    fn a_verdict_lives_until_its_deadline_in_its_epoch_only() {
        let cache = VerdictCache::new(10);
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(60);
        cache.remember([1; 32], &someone(), t0, until, 7);
        let got = cache.get(&[1; 32], until - Duration::from_nanos(1), 7);
        assert_eq!(got.map(|i| i.subject), Some("alice".to_string()));
        assert!(cache.get(&[1; 32], until, 7).is_none(), "at its deadline");
        cache.remember([2; 32], &someone(), t0, until, 7);
        assert!(cache.get(&[2; 32], t0, 8).is_none(), "in another epoch");
        assert!(
            cache.get(&[2; 32], t0, 7).is_none(),
            "a stale entry is dropped"
        );
        assert!(cache.get(&[3; 32], t0, 7).is_none(), "never remembered");
    }

    #[test]
    fn nothing_is_kept_past_its_deadline_or_in_a_cache_of_zero() {
        let t0 = Instant::now();
        let cache = VerdictCache::new(10);
        cache.remember([1; 32], &someone(), t0, t0, 0);
        assert_eq!(cache.len(), 0);
        let off = VerdictCache::new(0);
        off.remember([1; 32], &someone(), t0, t0 + Duration::from_secs(1), 0);
        assert_eq!(off.len(), 0);
        assert!(off.get(&[1; 32], t0, 0).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_verdicts_first_then_everything() {
        let cache = VerdictCache::new(2);
        let t0 = Instant::now();
        let s = Duration::from_secs;
        cache.remember([1; 32], &someone(), t0, t0 + s(60), 0);
        cache.remember([2; 32], &someone(), t0, t0 + s(90), 0);
        // Full; [1] ends at 60 s, exactly now: only it goes.
        cache.remember([3; 32], &someone(), t0 + s(60), t0 + s(120), 0);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&[2; 32], t0 + s(60), 0).is_some());
        assert!(cache.get(&[3; 32], t0 + s(60), 0).is_some());
        // Full and nothing expired: everything goes, the new verdict stays.
        cache.remember([4; 32], &someone(), t0 + s(61), t0 + s(120), 0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(&[4; 32], t0 + s(61), 0).is_some());
    }
}
