//! Binds MCP sessions to the identity that created them (MCP security best practices, *Session
//! Hijacking*: servers SHOULD bind session ids to user-specific information).
//!
//! Every request is still authenticated by its own bearer token; this adds that a valid token of
//! another user (or another client) cannot ride on someone else's `Mcp-Session-Id`. The owner is
//! recorded when the server behind answers with a new session id; a request that presents a session
//! owned by someone else is answered 404 (as for an unknown session, so nothing is revealed), and an
//! MCP client then starts a new session. Entries expire after a day without use; the table is
//! bounded (100 000 sessions; both are settings of
//! [`BearerAuthLayer::with_session_limits`](crate::BearerAuthLayer::with_session_limits)), and a
//! session that fell out of it is claimed again by its next user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::verifier::Identity;

/// The MCP session header (MCP *Streamable HTTP*, Session Management).
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Sessions idle longer than this are forgotten, by default
/// ([`BearerAuthLayer::with_session_limits`](crate::BearerAuthLayer::with_session_limits)).
pub const DEFAULT_SESSION_IDLE_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are remembered by default; the least recently used go first.
pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

/// Who owns which session.
#[derive(Debug)]
pub struct SessionOwners {
    table: Mutex<HashMap<String, (String, Instant)>>,
    max_sessions: usize,
    idle_ttl: Duration,
}

impl Default for SessionOwners {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_TTL)
    }
}

/// The owner key of an identity: issuer, subject and client.
fn owner_of(identity: &Identity) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{}",
        identity.issuer,
        identity.subject,
        identity.client_id.as_deref().unwrap_or("")
    )
}

impl SessionOwners {
    /// Remembers at most `max_sessions` (at least 1) sessions, each until it was idle `idle_ttl`.
    pub fn new(max_sessions: usize, idle_ttl: Duration) -> Self {
        Self {
            table: Mutex::default(),
            max_sessions: max_sessions.max(1),
            idle_ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        match self.table.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// May `identity` use `session`? Unknown sessions are claimed by their first user.
    pub fn admit(&self, session: &str, identity: &Identity) -> bool {
        self.admit_at(session, identity, Instant::now())
    }

    fn admit_at(&self, session: &str, identity: &Identity, now: Instant) -> bool {
        let owner = owner_of(identity);
        let mut table = self.lock();
        match table.get_mut(session) {
            Some((existing, last_used)) if now.duration_since(*last_used) < self.idle_ttl => {
                if *existing != owner {
                    return false;
                }
                *last_used = now;
                true
            }
            _ => {
                self.insert(&mut table, session, owner, now);
                true
            }
        }
    }

    /// Records `identity` as the owner of a session the server just created.
    pub fn record(&self, session: &str, identity: &Identity) {
        self.record_at(session, identity, Instant::now());
    }

    fn record_at(&self, session: &str, identity: &Identity, now: Instant) {
        let mut table = self.lock();
        self.insert(&mut table, session, owner_of(identity), now);
    }

    fn insert(
        &self,
        table: &mut HashMap<String, (String, Instant)>,
        session: &str,
        owner: String,
        now: Instant,
    ) {
        if table.len() >= self.max_sessions && !table.contains_key(session) {
            table.retain(|_, (_, used)| now.duration_since(*used) < self.idle_ttl);
            if table.len() >= self.max_sessions
                && let Some(oldest) = table
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
            {
                table.remove(&oldest);
            }
        }
        table.insert(session.to_string(), (owner, now));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn identity(sub: &str, client: &str) -> Identity {
        let claims =
            json!({"sub": sub, "client_id": client, "iss": "http://as", "aud": "http://rs/mcp"});
        let serde_json::Value::Object(map) = claims else {
            unreachable!()
        };
        Identity::from_claims(map, "http://as").unwrap()
    }

    #[test]
    fn sessions_belong_to_their_creator() {
        let owners = SessionOwners::default();
        let alice = identity("alice", "c1");
        owners.record("s1", &alice);
        assert!(owners.admit("s1", &alice));
        assert!(!owners.admit("s1", &identity("bob", "c1")), "another user");
        assert!(
            !owners.admit("s1", &identity("alice", "c2")),
            "another client of the same user"
        );
        assert!(
            owners.admit("s2", &identity("bob", "c1")),
            "an unknown session is claimed"
        );
        assert!(!owners.admit("s2", &alice));
    }

    #[test]
    fn an_idle_session_is_forgotten_after_exactly_its_ttl() {
        let owners = SessionOwners::new(10, Duration::from_secs(60));
        let (alice, bob) = (identity("alice", "c1"), identity("bob", "c1"));
        let t0 = Instant::now();
        owners.record_at("s1", &alice, t0);
        assert!(!owners.admit_at("s1", &bob, t0 + Duration::from_secs(59)));
        // Alice's use at 59 s restarts the idle clock.
        assert!(owners.admit_at("s1", &alice, t0 + Duration::from_secs(59)));
        assert!(!owners.admit_at("s1", &bob, t0 + Duration::from_secs(118)));
        // Idle exactly the TTL: forgotten, and claimed by its next user.
        assert!(owners.admit_at("s1", &bob, t0 + Duration::from_secs(178)));
        assert!(!owners.admit_at("s1", &alice, t0 + Duration::from_secs(178)));
    }

    #[test]
    fn by_default_a_session_is_remembered_for_a_day() {
        let owners = SessionOwners::default();
        let (alice, bob) = (identity("alice", "c1"), identity("bob", "c1"));
        let t0 = Instant::now();
        owners.record_at("s1", &alice, t0);
        let day = Duration::from_secs(24 * 3600);
        assert!(!owners.admit_at("s1", &bob, t0 + day - Duration::from_secs(1)));
        assert!(owners.admit_at("s1", &bob, t0 + day + day));
    }

    #[test]
    fn a_full_table_drops_the_idle_then_the_least_recently_used() {
        let owners = SessionOwners::new(2, Duration::from_secs(60));
        let (alice, bob) = (identity("alice", "c1"), identity("bob", "c1"));
        let t0 = Instant::now();
        owners.record_at("s1", &alice, t0);
        owners.record_at("s2", &alice, t0 + Duration::from_secs(1));
        // Re-recording a session already there makes no room.
        owners.record_at("s2", &alice, t0 + Duration::from_secs(2));
        assert!(!owners.admit_at("s1", &bob, t0 + Duration::from_secs(3)));
        // Full: the least recently used (s1) goes.
        owners.record_at("s3", &alice, t0 + Duration::from_secs(4));
        assert!(!owners.admit_at("s2", &bob, t0 + Duration::from_secs(5)));
        assert!(!owners.admit_at("s3", &bob, t0 + Duration::from_secs(5)));
        assert!(owners.admit_at("s1", &bob, t0 + Duration::from_secs(5)));
        // Full again, s2 and s3 idle past the TTL: both go, s1 (bob's, used at 5 s) stays.
        owners.record_at("s4", &alice, t0 + Duration::from_secs(64));
        assert!(!owners.admit_at("s1", &alice, t0 + Duration::from_secs(64)));
        assert!(owners.admit_at("s2", &bob, t0 + Duration::from_secs(64)));
    }
}
