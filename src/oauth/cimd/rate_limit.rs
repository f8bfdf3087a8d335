//! The per-host fetch budget (`[registration] cimd_fetches_per_minute_per_host`): an anonymous
//! `/authorize` request makes this server send a request to a host the requester picked, so the
//! number of such requests to one host is bounded, lest the server be used to flood it. A fixed
//! one-minute window per host, per process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Hosts tracked at most; past it, finished windows are dropped.
const MAX_HOSTS: usize = 10_000;

pub struct HostRate {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl HostRate {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one fetch from `host`'s budget; false when it is spent.
    pub fn try_take(&self, host: &str) -> bool {
        let now = Instant::now();
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_HOSTS && !map.contains_key(host) {
            map.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if map.len() >= MAX_HOSTS {
                // Every tracked host is inside its window: refuse new hosts rather than forget.
                return false;
            }
        }
        let entry = map.entry(host.to_string()).or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_minute {
            return false;
        }
        entry.1 += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_per_host() {
        let r = HostRate::new(2);
        assert!(r.try_take("a.example"));
        assert!(r.try_take("a.example"));
        assert!(!r.try_take("a.example"));
        assert!(r.try_take("b.example"), "hosts have separate budgets");
    }
}
