//! The document cache (draft-ietf-oauth-client-id-metadata-document-00 §4.4 *Metadata Caching*; MCP:
//! SHOULD cache per HTTP cache headers). An entry lives for the response's `Cache-Control: max-age`
//! (RFC 9111 §5.2.2.1), held between `[registration] cimd_cache_min_ttl` and `cimd_cache_max_ttl`;
//! `no-store`, `no-cache` or no `max-age` mean the minimum. The minimum is what stops a client id
//! from making this server fetch on every request. A changed document takes effect when its entry
//! expires.
//!
//! The cache lives in storage ([`SharedStateStore`]: `get_document` / `put_document`), so every
//! server on one store fetches a document once per TTL between them. Entries expire at whole
//! seconds, rounded up, so an entry lives at least its TTL. What is stored is the validated body;
//! a server reading an entry validates it again with its own limits, and its host policy applies
//! before the cache is consulted. On top sits a small per-process layer ([`LocalLayer`]) holding the
//! parsed client until the stored entry's own `expires_at`, never longer: a changed document takes
//! effect on every server when that entry expires.
//!
//! Failed fetches are not cached (the per-host rate limit bounds their cost). A store error while
//! reading or writing the cache is logged and treated as a miss: the cache only saves fetches.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mcp_oauth_provider::shared_state::MAX_KEY_BYTES;
use mcp_oauth_provider::{SharedStateStore, UnixTime};
use reqwest::header::{CACHE_CONTROL, HeaderMap};

use super::document::DocumentClient;

/// Entries kept at most in the per-process layer; past it, expired entries go first, then the
/// soonest to expire.
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

/// When an entry cached now for `ttl` expires: whole seconds, rounded up (so it lives at least
/// `ttl`).
pub fn expires_after(ttl: Duration) -> UnixTime {
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .saturating_add(ttl);
    let secs = end.as_secs() + u64::from(end.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// The key `raw` is stored under: itself, or `<prefix>sha256:<hex>` when longer than the store
/// must accept ([`MAX_KEY_BYTES`]). `https` URLs and `cimd-jti:` keys never start like that.
pub fn store_key(prefix: &str, raw: &str) -> String {
    if raw.len() <= MAX_KEY_BYTES {
        raw.to_string()
    } else {
        format!(
            "{prefix}sha256:{}",
            crate::oauth::secrets::hash_secret(raw).as_str()
        )
    }
}

/// Reads the stored document for `url`, if fresh; a store error is logged and is a miss.
pub async fn shared_get(
    shared: &dyn SharedStateStore,
    url: &str,
    now: UnixTime,
) -> Option<mcp_oauth_provider::CachedDocument> {
    match shared.get_document(&store_key("", url), now).await {
        Ok(hit) => hit.filter(|d| d.expires_at > now),
        Err(e) => {
            tracing::warn!(error = %e, "reading the shared client metadata document cache failed");
            None
        }
    }
}

/// Stores the document for `url`; a store error is logged (the next request fetches again).
pub async fn shared_put(
    shared: &dyn SharedStateStore,
    url: &str,
    body: &[u8],
    expires_at: UnixTime,
) {
    let doc = mcp_oauth_provider::CachedDocument {
        body: body.to_vec(),
        expires_at,
    };
    if let Err(e) = shared.put_document(&store_key("", url), &doc).await {
        tracing::warn!(error = %e, "writing the shared client metadata document cache failed");
    }
}

struct Entry {
    client: DocumentClient,
    expires_at: UnixTime,
}

/// The per-process layer: parsed clients until their stored entry expires.
#[derive(Default)]
pub struct LocalLayer {
    entries: Mutex<HashMap<String, Entry>>,
}

impl LocalLayer {
    /// The client for `url`, if its entry has not expired at `now`.
    pub fn get(&self, url: &str, now: UnixTime) -> Option<DocumentClient> {
        let map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        map.get(url)
            .filter(|e| e.expires_at > now)
            .map(|e| e.client.clone())
    }

    /// Keeps `client` until `expires_at`: the stored entry's expiry, never later.
    pub fn put(&self, url: &str, client: DocumentClient, expires_at: UnixTime, now: UnixTime) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_ENTRIES && !map.contains_key(url) {
            map.retain(|_, e| e.expires_at > now);
            if map.len() >= MAX_ENTRIES
                && let Some(soonest) = map
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&soonest);
            }
        }
        map.insert(url.to_string(), Entry { client, expires_at });
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

    #[test]
    fn expiry_is_rounded_up_to_a_whole_second() {
        let now = mcp_oauth_provider::unix_now();
        let at = expires_after(Duration::from_secs(60));
        assert!(at == now + 60 || at == now + 61, "{at} vs {now}");
        assert!(expires_after(Duration::ZERO) >= now);
    }

    #[test]
    fn long_keys_are_hashed() {
        let short = "https://app.example/c.json";
        assert_eq!(store_key("", short), short);
        let long = format!("https://app.example/{}", "a".repeat(MAX_KEY_BYTES));
        let key = store_key("cimd-jti:", &long);
        assert!(
            key.starts_with("cimd-jti:sha256:") && key.len() < 100,
            "{key}"
        );
        assert_ne!(key, store_key("cimd-jti:", &format!("{long}b")));
    }
}
