//! Binds MCP sessions to the identity that created them (MCP security best practices, *Session
//! Hijacking*: servers SHOULD bind session ids to user-specific information).
//!
//! Every request is still authenticated by its own bearer token; this adds that a valid token of
//! another user (or another client) cannot ride on someone else's `Mcp-Session-Id`. The owner is
//! recorded when the server behind answers with a new session id; a request that presents a session
//! owned by someone else is answered 404 (as for an unknown session, so nothing is revealed), and an
//! MCP client then starts a new session. Entries expire after a day without use; the table is
//! bounded, and a session that fell out of it is claimed again by its next user.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::verifier::Identity;

/// The MCP session header (MCP *Streamable HTTP*, Session Management).
pub const SESSION_HEADER: &str = "mcp-session-id";

/// Sessions idle longer than this are forgotten.
const IDLE_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most this many sessions are remembered; the least recently used go first.
const MAX_SESSIONS: usize = 100_000;

/// Who owns which session.
#[derive(Debug, Default)]
pub struct SessionOwners {
    table: Mutex<HashMap<String, (String, Instant)>>,
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
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, Instant)>> {
        match self.table.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// May `identity` use `session`? Unknown sessions are claimed by their first user.
    pub fn admit(&self, session: &str, identity: &Identity) -> bool {
        let owner = owner_of(identity);
        let now = Instant::now();
        let mut table = self.lock();
        match table.get_mut(session) {
            Some((existing, last_used)) if now.duration_since(*last_used) < IDLE_TTL => {
                if *existing != owner {
                    return false;
                }
                *last_used = now;
                true
            }
            _ => {
                Self::insert(&mut table, session, owner, now);
                true
            }
        }
    }

    /// Records `identity` as the owner of a session the server just created.
    pub fn record(&self, session: &str, identity: &Identity) {
        let mut table = self.lock();
        Self::insert(&mut table, session, owner_of(identity), Instant::now());
    }

    fn insert(
        table: &mut HashMap<String, (String, Instant)>,
        session: &str,
        owner: String,
        now: Instant,
    ) {
        if table.len() >= MAX_SESSIONS {
            table.retain(|_, (_, used)| now.duration_since(*used) < IDLE_TTL);
            if table.len() >= MAX_SESSIONS
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
}
