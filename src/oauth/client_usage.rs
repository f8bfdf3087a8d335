//! When each client was last used, for `mcp-oauth clients list`: the token endpoint records a use
//! ([`ClientStore::touch_client`](mcp_oauth_provider::ClientStore::touch_client)) at most once per
//! [`EVERY`] seconds per client in this process, in the background, so a busy client does not cost
//! a database write per request and a slow store never delays a token response.

use std::collections::HashMap;
use std::sync::Mutex;

use mcp_oauth_provider::UnixTime;

use crate::state::AppState;

/// Seconds between two recorded uses of one client (per process).
pub const EVERY: i64 = 60;
/// Entries kept before old ones are forgotten (a bound on memory; a forgotten client is merely
/// written once more).
const MAX_REMEMBERED: usize = 10_000;

/// The last time this process recorded each client's use.
#[derive(Debug, Default)]
pub struct ClientUsage {
    recorded: Mutex<HashMap<String, UnixTime>>,
}

impl ClientUsage {
    /// Whether a use of `client_id` at `now` is to be recorded; if so, it counts as recorded.
    pub fn due(&self, client_id: &str, now: UnixTime) -> bool {
        let mut recorded = match self.recorded.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if recorded
            .get(client_id)
            .is_some_and(|last| now < last.saturating_add(EVERY))
        {
            return false;
        }
        if recorded.len() >= MAX_REMEMBERED {
            recorded.retain(|_, last| now < last.saturating_add(EVERY));
        }
        recorded.insert(client_id.to_string(), now);
        true
    }
}

/// Records that a token was issued to `client_id` at `now` (at most once a minute, off the request
/// path; a failure is logged, never answered).
pub fn record_use(state: &AppState, client_id: &str, now: UnixTime) {
    if !state.client_usage.due(client_id, now) {
        return;
    }
    let state = state.clone();
    let client_id = client_id.to_string();
    tokio::spawn(async move {
        if let Err(error) = state.provider.clients().touch_client(&client_id, now).await {
            tracing::warn!(%error, client_id, "recording the client's last use failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_a_minute_per_client() {
        let u = ClientUsage::default();
        assert!(u.due("a", 1000));
        assert!(!u.due("a", 1059));
        assert!(u.due("b", 1059), "per client");
        assert!(u.due("a", 1060));
    }
}
