//! The conformance kit catches a broken store: a `TokenStore` whose `take_code` reads and then marks
//! the code used in two steps (as a careless SQL backend would with SELECT, then UPDATE) lets two
//! racing redemptions win, and the kit's concurrent check must fail naming `take_code` and the
//! contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mcp_oauth_provider::testkit;
use mcp_oauth_provider::*;

use crate::MemoryStore;

/// Forwards everything to the in-memory store, except that `take_code` is not atomic.
struct RacyTakeCode(MemoryStore);

#[async_trait]
impl TokenStore for RacyTakeCode {
    async fn insert_code(&self, code: AuthorizationCode) -> ProviderResult<()> {
        self.0.insert_code(code).await
    }

    /// Get, yield, then mark used: every caller that read the code before the first one marked it
    /// believes it won.
    async fn take_code(&self, code_hash: &SecretHash) -> ProviderResult<CodeRedemption> {
        let read = self.0.lock()?.codes.get(code_hash).cloned();
        let Some((code, used)) = read else {
            return Ok(CodeRedemption::Unknown);
        };
        if used {
            return Ok(CodeRedemption::Replayed {
                family_id: code.family_id,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some(entry) = self.0.lock()?.codes.get_mut(code_hash) {
            entry.1 = true;
        }
        Ok(CodeRedemption::Redeemed(code))
    }

    async fn insert_tokens(
        &self,
        access: AccessTokenRecord,
        refresh: Option<RefreshTokenRecord>,
    ) -> ProviderResult<()> {
        self.0.insert_tokens(access, refresh).await
    }
    async fn get_access_token(&self, jti: &str) -> ProviderResult<Option<AccessTokenRecord>> {
        self.0.get_access_token(jti).await
    }
    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
    ) -> ProviderResult<Option<RefreshTokenRecord>> {
        self.0.get_refresh_token(token_hash).await
    }
    async fn rotate_refresh_token(&self, request: RotateRefreshToken) -> ProviderResult<Rotation> {
        self.0.rotate_refresh_token(request).await
    }
    async fn revoke(&self, target: RevokeTarget) -> ProviderResult<bool> {
        self.0.revoke(target).await
    }
    async fn revoke_family(&self, family_id: &str, remember_until: UnixTime) -> ProviderResult<()> {
        self.0.revoke_family(family_id, remember_until).await
    }
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<PurgeCounts> {
        TokenStore::purge_expired(&self.0, now).await
    }
    async fn clear_successors(&self, rotated_before: UnixTime) -> ProviderResult<u64> {
        self.0.clear_successors(rotated_before).await
    }
    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: UnixTime,
    ) -> ProviderResult<Vec<GrantSummary>> {
        self.0.list_grants(filter, now).await
    }
    async fn revoke_grants(
        &self,
        filter: &GrantFilter,
        remember_until: UnixTime,
    ) -> ProviderResult<u64> {
        self.0.revoke_grants(filter, remember_until).await
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<a panic without a message>".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kit_catches_a_take_code_that_is_not_atomic() {
    let store = MemoryStore::new();
    let storage = Storage {
        tokens: Arc::new(RacyTakeCode(store.clone())),
        ..store.storage()
    };
    // The single-caller check passes: only a race shows the flaw.
    testkit::code_is_taken_once(storage.clone()).await;

    let outcome = tokio::spawn(testkit::concurrent_take_code_has_one_winner(storage)).await;
    let failure = outcome.expect_err("the kit passed a store whose take_code is not atomic");
    assert!(failure.is_panic(), "{failure}");
    let message = panic_message(failure.into_panic());
    assert!(
        message.starts_with("take_code: a code was redeemed ")
            && message.ends_with(" under 16 concurrent calls"),
        "the failure must name take_code and the broken contract, got: {message}"
    );
}

/// A shared state whose `claim_once` reads, yields, then writes: every racing claim wins.
#[derive(Default)]
struct RacyClaims(std::sync::Mutex<std::collections::HashMap<String, UnixTime>>);

#[async_trait]
impl SharedStateStore for RacyClaims {
    async fn claim_once(
        &self,
        key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> ProviderResult<bool> {
        let live = self.0.lock().unwrap().get(key).is_some_and(|e| *e > now);
        if live {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.0.lock().unwrap().insert(key.to_string(), expires_at);
        Ok(true)
    }
    async fn get_document(&self, _: &str, _: UnixTime) -> ProviderResult<Option<CachedDocument>> {
        Ok(None)
    }
    async fn put_document(&self, _: &str, _: &CachedDocument) -> ProviderResult<()> {
        Ok(())
    }
    async fn purge_expired(&self, _: UnixTime) -> ProviderResult<u64> {
        Ok(0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_kit_catches_a_claim_once_that_is_not_atomic() {
    let storage = MemoryStore::new()
        .storage()
        .with_shared_state(Arc::new(RacyClaims::default()));
    let outcome = tokio::spawn(testkit::shared_claims_have_one_winner(storage)).await;
    let failure = outcome.expect_err("the kit passed a store whose claim_once is not atomic");
    let message = panic_message(failure.into_panic());
    assert!(
        message.starts_with("claim_once: ") && message.contains("of 16 concurrent claims"),
        "the failure must name claim_once and the broken contract, got: {message}"
    );
}
