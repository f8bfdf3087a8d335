//! Attack: keep using a token after the operator withdrew the key that signed it (rotated and
//! deleted at once, as after a key compromise), hoping the server still remembers that the token's
//! signature checked out (`[limits] verified_token_cache_entries`, `KeyManager::verified`). A
//! remembered verdict belongs to the key set that verified it, so the next check fails.

use std::time::{Duration, Instant};

use mcp_oauth::oauth::tokens::verify_own;
use mcp_oauth::resource::verifier::verdict_cache::verdict_key;
use mcp_oauth_provider::unix_now;

use crate::support::start;

#[tokio::test]
async fn attack_a_withdrawn_key_takes_its_remembered_tokens_with_it() {
    let server = start().await;
    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    assert_eq!(server.introspect(&token).await["active"], true);
    assert!(
        verify_own(&server.state, &token).is_some(),
        "remembered now"
    );

    let keys = server.state.provider.keys();
    let t = unix_now();
    server.state.keys.rotate(keys, t, t).await.unwrap();
    server.state.keys.maintain(keys, t).await.unwrap();

    assert!(
        verify_own(&server.state, &token).is_none(),
        "a token of a deleted key was accepted from memory"
    );
    assert_eq!(server.introspect(&token).await["active"], false);
    // New tokens, signed by the new key, are fine.
    let fresh = server.access_token_for(&server.resource, "mcp:tools").await;
    assert_eq!(server.introspect(&fresh).await["active"], true);
}

#[tokio::test]
async fn verified_tokens_are_recognised_by_digest_as_configured() {
    let server = start().await;
    let keys = &server.state.keys;
    assert_eq!(keys.verified().max_entries(), 10_000, "config/default.toml");
    // A second load of the same keys: a later epoch, the same keys.
    keys.reload(server.state.provider.keys()).await.unwrap();
    assert!(keys.epoch().unwrap() >= 1);
    let token = server.access_token_for(&server.resource, "mcp:tools").await;
    let claims = verify_own(&server.state, &token).unwrap();
    // The token just verified is remembered under the current key set.
    let epoch = keys.epoch().unwrap();
    let remembered = keys
        .verified()
        .get(&verdict_key(&[token.as_bytes()]), Instant::now(), epoch);
    assert_eq!(remembered.as_ref(), Some(&claims));
    // What `verify_own` answers for a token it saw is the remembered verdict: planted for a string
    // that is no JWT at all, it is answered without any check.
    let now = Instant::now();
    keys.verified().remember(
        verdict_key(&[b"not-a-jwt"]),
        &claims,
        now,
        now + Duration::from_secs(60),
        epoch,
    );
    assert_eq!(verify_own(&server.state, "not-a-jwt"), Some(claims));
}
