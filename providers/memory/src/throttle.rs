//! [`SignInThrottleStore`] in memory: the decision and its write happen under the store's one mutex,
//! so `begin_attempt` is atomic by construction (one process only: several servers need a shared
//! database backend).

use std::collections::HashMap;

use async_trait::async_trait;
use mcp_oauth_provider::{
    ProviderResult, SignInAttempt, SignInThrottleStore, ThrottleCounter, ThrottleDecision,
    ThrottlePolicy, UnixTime, UsernameCounters,
};

use crate::MemoryStore;

/// The counters, keyed as the core gave them, each with the time it stops mattering.
#[derive(Default)]
pub(crate) struct ThrottleState {
    users: HashMap<String, (ThrottleCounter, UnixTime)>,
    pairs: HashMap<(String, String), (ThrottleCounter, UnixTime)>,
    /// Known addresses: (username key, address key) → known until.
    known: HashMap<(String, String), UnixTime>,
}

fn pair_of(a: &SignInAttempt) -> (String, String) {
    (a.username_key.clone(), a.address_key.clone())
}

#[async_trait]
impl SignInThrottleStore for MemoryStore {
    async fn begin_attempt(
        &self,
        a: &SignInAttempt,
        policy: &ThrottlePolicy,
    ) -> ProviderResult<ThrottleDecision> {
        let mut s = self.lock()?;
        let t = &mut s.throttle;
        let pair_key = pair_of(a);
        let user = t
            .users
            .get(&a.username_key)
            .map(|e| e.0)
            .unwrap_or_default();
        let pair = t.pairs.get(&pair_key).map(|e| e.0).unwrap_or_default();
        let known = t.known.get(&pair_key).is_some_and(|until| *until > a.now);
        let (decision, user, pair) = policy.decide(user, pair, known, a.now);
        if decision == ThrottleDecision::Admitted {
            t.users
                .insert(a.username_key.clone(), (user, policy.expires_at(&user)));
            t.pairs.insert(pair_key, (pair, policy.expires_at(&pair)));
        }
        Ok(decision)
    }

    async fn end_attempt(
        &self,
        a: &SignInAttempt,
        succeeded: bool,
        policy: &ThrottlePolicy,
    ) -> ProviderResult<()> {
        let mut s = self.lock()?;
        let t = &mut s.throttle;
        let pair_key = pair_of(a);
        if succeeded {
            t.users.remove(&a.username_key);
            t.pairs.remove(&pair_key);
            if policy.known_address_ttl > 0 {
                t.known
                    .insert(pair_key, a.now.saturating_add(policy.known_address_ttl));
            }
        } else {
            if let Some((user, expires)) = t.users.get_mut(&a.username_key) {
                *user = policy.failed_at(*user, a.now);
                *expires = policy.expires_at(user);
            }
            if let Some((pair, expires)) = t.pairs.get_mut(&pair_key) {
                *pair = policy.failed_at(*pair, a.now);
                *expires = policy.expires_at(pair);
            }
        }
        Ok(())
    }

    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64> {
        let mut s = self.lock()?;
        let t = &mut s.throttle;
        let before = t.users.len() + t.pairs.len() + t.known.len();
        t.users.retain(|_, (_, until)| *until > now);
        t.pairs.retain(|_, (_, until)| *until > now);
        t.known.retain(|_, until| *until > now);
        Ok((before - t.users.len() - t.pairs.len() - t.known.len()) as u64)
    }

    async fn username_counters(&self, username_key: &str) -> ProviderResult<UsernameCounters> {
        let s = self.lock()?;
        let t = &s.throttle;
        let mut addresses: Vec<(String, ThrottleCounter)> = t
            .pairs
            .iter()
            .filter(|((user, _), (c, _))| user == username_key && c.failures > 0)
            .map(|((_, address), (c, _))| (address.clone(), *c))
            .collect();
        addresses.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(UsernameCounters {
            user: t.users.get(username_key).map(|e| e.0).unwrap_or_default(),
            addresses,
        })
    }

    async fn clear_username(&self, username_key: &str) -> ProviderResult<u64> {
        let mut s = self.lock()?;
        let t = &mut s.throttle;
        let mut cleared = 0;
        let held = |c: &ThrottleCounter| c.failures > 0 || c.busy_until > 0;
        if t.users.remove(username_key).is_some_and(|(c, _)| held(&c)) {
            cleared += 1;
        }
        t.pairs.retain(|(user, _), (c, _)| {
            let drop = user == username_key;
            if drop && held(c) {
                cleared += 1;
            }
            !drop
        });
        Ok(cleared)
    }
}
