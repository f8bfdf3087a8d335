//! Small pieces of protocol state that every server on one store must share: single-use markers
//! (the `jti` of a client assertion, RFC 7523 §3 item 7) and the cache of fetched client metadata
//! documents (draft-ietf-oauth-client-id-metadata-document-00 §4.4). Several instances behind one
//! load balancer then refuse a replay any of them saw, and fetch a document once per TTL between
//! them.
//!
//! A backend shared by several processes implements [`SharedStateStore`] and hands it to
//! [`Storage::with_shared_state`](crate::Storage::with_shared_state). A backend that does not gets
//! [`LocalSharedState`], an in-process fallback: correct for one process, but a replay sent to a
//! second process on the same data is then not caught (the server warns at start when the store
//! reports itself shared).
//!
//! Keys and URLs are opaque to the store; the core bounds their length ([`MAX_KEY_BYTES`]) and
//! the size of a document ([`MAX_DOCUMENT_BYTES`]).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::{ProviderResult, UnixTime};

/// The longest key or URL the core passes (bytes).
pub const MAX_KEY_BYTES: usize = 2048;
/// The largest document body the core stores (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;

/// A document as cached: its body and when the entry expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDocument {
    pub body: Vec<u8>,
    pub expires_at: UnixTime,
}

/// Single-use claims and the document cache, shared by every server on one store.
#[async_trait]
pub trait SharedStateStore: Send + Sync {
    /// Records `key` until `expires_at` and returns `true` when no unexpired record of it exists at
    /// `now`; returns `false`, changing nothing, while one does. A record is expired when
    /// `expires_at <= now`; an expired record MUST NOT block a new claim.
    ///
    /// MUST be atomic across every process on the store: of any number of concurrent claims of one
    /// key exactly one returns `true`. A store that cannot decide MUST return an error, never
    /// `true` (the caller refuses on an error; a wrong `true` accepts a replay).
    async fn claim_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> ProviderResult<bool>;

    /// The document cached under `url`, unless it expired (`expires_at <= now`). MUST NOT return
    /// an expired entry. MAY forget an entry before it expires (it is a cache).
    async fn get_document(
        &self,
        url: &str,
        now: UnixTime,
    ) -> ProviderResult<Option<CachedDocument>>;

    /// Stores `doc` under `url`, replacing any entry (the last writer wins).
    async fn put_document(&self, url: &str, doc: &CachedDocument) -> ProviderResult<()>;

    /// Removes every claim and document expired at `now` (`expires_at <= now`) and keeps the
    /// others; returns how many records went. The server calls it from its periodic purge.
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64>;
}

/// Entries [`LocalSharedState`] keeps per map at most. Past it, expired entries go first; then a
/// new claim is refused (refusing is safe, forgetting a live claim is not) and the document entry
/// expiring soonest makes room.
pub const LOCAL_MAX_ENTRIES: usize = 100_000;

/// The in-process [`SharedStateStore`]: the fallback for a backend that provides none, and the
/// memory backend's. Shared by the servers of this process only.
#[derive(Default)]
pub struct LocalSharedState {
    claims: Mutex<HashMap<String, UnixTime>>,
    documents: Mutex<HashMap<String, CachedDocument>>,
}

#[async_trait]
impl SharedStateStore for LocalSharedState {
    async fn claim_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> ProviderResult<bool> {
        let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
        if claims.get(key).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if claims.len() >= LOCAL_MAX_ENTRIES && !claims.contains_key(key) {
            claims.retain(|_, until| *until > now);
            if claims.len() >= LOCAL_MAX_ENTRIES {
                return Err(crate::ProviderError::Unavailable {
                    message: "too many single-use claims are live; try again later".into(),
                    source: None,
                });
            }
        }
        claims.insert(key.to_string(), expires_at);
        Ok(true)
    }

    async fn get_document(
        &self,
        url: &str,
        now: UnixTime,
    ) -> ProviderResult<Option<CachedDocument>> {
        let documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        Ok(documents.get(url).filter(|d| d.expires_at > now).cloned())
    }

    async fn put_document(&self, url: &str, doc: &CachedDocument) -> ProviderResult<()> {
        let mut documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        if documents.len() >= LOCAL_MAX_ENTRIES && !documents.contains_key(url) {
            let now = crate::unix_now();
            documents.retain(|_, d| d.expires_at > now);
            if documents.len() >= LOCAL_MAX_ENTRIES
                && let Some(soonest) = documents
                    .iter()
                    .min_by_key(|(_, d)| d.expires_at)
                    .map(|(k, _)| k.clone())
            {
                documents.remove(&soonest);
            }
        }
        documents.insert(url.to_string(), doc.clone());
        Ok(())
    }

    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64> {
        let mut removed = 0;
        {
            let mut claims = self.claims.lock().unwrap_or_else(|e| e.into_inner());
            let before = claims.len();
            claims.retain(|_, until| *until > now);
            removed += before - claims.len();
        }
        let mut documents = self.documents.lock().unwrap_or_else(|e| e.into_inner());
        let before = documents.len();
        documents.retain(|_, d| d.expires_at > now);
        removed += before - documents.len();
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }
}
