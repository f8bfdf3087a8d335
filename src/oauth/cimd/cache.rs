//! The document cache (draft-ietf-oauth-client-id-metadata-document-00 §4.4 *Metadata Caching*; MCP:
//! SHOULD cache per HTTP cache headers). An entry lives for the response's `Cache-Control: max-age`
//! (RFC 9111 §5.2.2.1), held between `[registration] cimd_cache_min_ttl` and `cimd_cache_max_ttl`;
//! `no-store`, `no-cache` or no `max-age` mean the minimum. The minimum is what stops a client id
//! from making this server fetch on every request. A changed document takes effect when its entry
//! expires.
//!
//! The cache is per process: several instances on one database each fetch a document once per TTL.
//! Failed fetches are not cached (the per-host rate limit bounds their cost).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::header::{CACHE_CONTROL, HeaderMap};

use super::document::DocumentClient;

/// Entries kept at most; past it, expired entries go first, then the soonest to expire.
const MAX_ENTRIES: usize = 10_000;

/// How long a response may be cached, from its headers, within `[min, max]`.
pub fn ttl_from_headers(headers: &HeaderMap, min: Duration, max: Duration) -> Duration {
    let mut max_age: Option<u64> = None;
    let mut uncacheable = false;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                uncacheable = true;
            } else if let Some(n) = directive.strip_prefix("max-age=") {
                max_age = n.trim_matches('"').parse().ok().or(Some(0));
            }
        }
    }
    let wanted = match (uncacheable, max_age) {
        (true, _) | (false, None) => min,
        (false, Some(secs)) => Duration::from_secs(secs),
    };
    wanted.clamp(min, max)
}

struct Entry {
    client: DocumentClient,
    expires: Instant,
}

#[derive(Default)]
pub struct DocumentCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl DocumentCache {
    /// The cached client for `url`, if fresh.
    pub fn get(&self, url: &str) -> Option<DocumentClient> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(url)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.client.clone())
    }

    pub fn put(&self, url: &str, client: DocumentClient, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(url) {
            map.retain(|_, e| e.expires > now);
            if map.len() >= MAX_ENTRIES
                && let Some(soonest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&soonest);
            }
        }
        map.insert(
            url.to_string(),
            Entry {
                client,
                expires: now + ttl,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn ttl(value: Option<&str>) -> u64 {
        let mut h = HeaderMap::new();
        if let Some(v) = value {
            h.insert(CACHE_CONTROL, HeaderValue::from_str(v).unwrap());
        }
        ttl_from_headers(&h, Duration::from_secs(60), Duration::from_secs(3600)).as_secs()
    }

    #[test]
    fn max_age_within_bounds() {
        assert_eq!(ttl(Some("public, max-age=600")), 600);
        assert_eq!(ttl(Some("max-age=5")), 60, "raised to the minimum");
        assert_eq!(ttl(Some("max-age=999999")), 3600, "cut to the maximum");
        assert_eq!(ttl(Some("no-store")), 60);
        assert_eq!(ttl(Some("max-age=600, no-cache")), 60);
        assert_eq!(ttl(Some("max-age=bogus")), 60);
        assert_eq!(ttl(None), 60);
    }
}
