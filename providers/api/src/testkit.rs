//! The conformance kit: checks every storage backend must pass, written once and run against memory,
//! SQLite, Postgres and any plugin (`storage_conformance_tests!`).
//!
//! Each check takes a fresh [`Storage`] and panics with a message naming the broken contract.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use crate::*;

/// Unique ids so checks can share one database without colliding.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{nanos:x}-{n}")
}

fn hash(prefix: &str) -> SecretHash {
    SecretHash(unique(prefix))
}

pub use crate::unix_now as now;

pub fn sample_client(client_id: &str) -> Client {
    let mut extra = serde_json::Map::new();
    extra.insert(
        "client_uri".into(),
        serde_json::json!("https://client.example/"),
    );
    Client {
        client_id: client_id.to_string(),
        client_secret_hash: Some(SecretHash("ab".repeat(32))),
        client_secret_expires_at: None,
        client_id_issued_at: now(),
        client_name: Some("Conformance <client>".into()),
        redirect_uris: vec![
            "https://client.example/cb".into(),
            "http://127.0.0.1/cb".into(),
        ],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        response_types: vec!["code".into()],
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        scope: Some(vec!["mcp:tools".into()]),
        extra_metadata: extra,
        origin: ClientOrigin::Registration,
        approved_at: None,
        resource_server: false,
    }
}

pub fn sample_code(family_id: &str, expires_at: UnixTime) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash("code"),
        family_id: family_id.to_string(),
        client_id: "client-1".into(),
        subject: "alice".into(),
        redirect_uri: "http://127.0.0.1:4000/cb".into(),
        redirect_uri_explicit: true,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["mcp:tools".into()],
        resource: "http://127.0.0.1:9000/mcp".into(),
        issued_at: now(),
        expires_at,
    }
}

pub fn sample_access(family_id: &str, expires_at: UnixTime) -> AccessTokenRecord {
    AccessTokenRecord {
        jti: unique("jti"),
        family_id: family_id.to_string(),
        client_id: "client-1".into(),
        subject: "alice".into(),
        scopes: vec!["mcp:tools".into(), "mcp:admin".into()],
        resource: "http://127.0.0.1:9000/mcp".into(),
        issued_at: now(),
        expires_at,
        revoked: false,
    }
}

pub fn sample_refresh(family_id: &str, expires_at: UnixTime) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash("rt"),
        family_id: family_id.to_string(),
        client_id: "client-1".into(),
        subject: "alice".into(),
        scopes: vec!["mcp:tools".into()],
        resource: "http://127.0.0.1:9000/mcp".into(),
        issued_at: now(),
        expires_at,
        grant_expires_at: expires_at + 86_400,
        state: RefreshTokenState::Active,
    }
}

pub fn sample_transaction(expires_at: UnixTime) -> LoginTransaction {
    LoginTransaction {
        id_hash: hash("tx"),
        browser_binding_hash: hash("bind"),
        csrf_token: unique("csrf"),
        client_id: "client-1".into(),
        redirect_uri: "http://127.0.0.1:4000/cb".into(),
        redirect_uri_explicit: false,
        state: Some("<script>state</script>".into()),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scopes: vec!["mcp:tools".into()],
        resource: "http://127.0.0.1:9000/mcp".into(),
        user: None,
        created_at: now(),
        expires_at,
    }
}

pub fn sample_user_identity(subject: &str) -> AuthenticatedUser {
    AuthenticatedUser {
        subject: subject.into(),
        username: subject.into(),
        display_name: Some("Alice Example".into()),
        email: Some("alice@example.org".into()),
        groups: vec!["cn=mcp-admins,ou=groups,dc=example,dc=org".into()],
        allowed_scopes: Some(vec!["mcp:tools".into()]),
    }
}

fn rotate_request(old: &SecretHash, family: &str, grace_since: UnixTime) -> RotateRefreshToken {
    let t = now();
    RotateRefreshToken {
        old_hash: old.clone(),
        new_refresh: sample_refresh(family, t + 3600),
        new_access: sample_access(family, t + 600),
        now: t,
        reuse_grace_since: grace_since,
        sealed_successor: format!("sealed-{}", unique("successor")).into_bytes(),
    }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

pub async fn client_roundtrip_and_duplicate_conflict(storage: Storage) {
    let id = unique("client");
    let client = sample_client(&id);
    storage.clients.insert_client(client.clone()).await.unwrap();
    let got = storage.clients.get_client(&id).await.unwrap();
    assert_eq!(
        got.as_ref(),
        Some(&client),
        "get_client must return exactly what was inserted"
    );

    let mut other = sample_client(&id);
    other.client_name = Some("impostor".into());
    match storage.clients.insert_client(other).await {
        Err(ProviderError::Conflict(_)) => {}
        other => panic!("a duplicate client_id must give Conflict, got {other:?}"),
    }
    let still = storage.clients.get_client(&id).await.unwrap();
    assert_eq!(
        still.as_ref(),
        Some(&client),
        "a refused duplicate must not change the stored client"
    );

    let listed = storage.clients.list_clients().await.unwrap();
    assert!(
        listed.iter().any(|c| c.client_id == id),
        "list_clients must include inserted clients"
    );
    assert!(
        storage.clients.delete_client(&id).await.unwrap(),
        "delete_client of a known id is true"
    );
    assert!(
        storage.clients.get_client(&id).await.unwrap().is_none(),
        "a deleted client is gone"
    );
    assert!(
        !storage.clients.delete_client(&id).await.unwrap(),
        "deleting twice gives false"
    );
}

pub async fn deleting_a_client_revokes_its_tokens(storage: Storage) {
    let id = unique("client");
    storage
        .clients
        .insert_client(sample_client(&id))
        .await
        .unwrap();
    let family = unique("fam");
    let mut code = sample_code(&family, now() + 60);
    code.client_id = id.clone();
    let mut access = sample_access(&family, now() + 600);
    access.client_id = id.clone();
    let mut refresh = sample_refresh(&family, now() + 3600);
    refresh.client_id = id.clone();
    let other = sample_access(&unique("fam"), now() + 600);
    storage.tokens.insert_code(code.clone()).await.unwrap();
    storage
        .tokens
        .insert_tokens(access.clone(), Some(refresh.clone()))
        .await
        .unwrap();
    storage
        .tokens
        .insert_tokens(other.clone(), None)
        .await
        .unwrap();
    assert!(storage.clients.delete_client(&id).await.unwrap());
    assert!(
        storage
            .tokens
            .get_access_token(&access.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        "access token revoked"
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&refresh.token_hash)
            .await
            .unwrap()
            .unwrap()
            .state,
        RefreshTokenState::Revoked,
        "refresh token revoked"
    );
    assert!(
        !matches!(
            storage.tokens.take_code(&code.code_hash).await.unwrap(),
            CodeRedemption::Redeemed(_)
        ),
        "code unusable"
    );
    assert!(
        !storage
            .tokens
            .get_access_token(&other.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        "other clients untouched"
    );
}

pub async fn unknown_ids_are_none(storage: Storage) {
    let missing = hash("missing");
    assert!(
        storage
            .clients
            .get_client("no-such-client")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !storage
            .clients
            .delete_client("no-such-client")
            .await
            .unwrap()
    );
    assert!(
        storage
            .tokens
            .get_access_token("no-such-jti")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        storage
            .tokens
            .get_refresh_token(&missing)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        storage.tokens.take_code(&missing).await.unwrap(),
        CodeRedemption::Unknown
    );
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&missing, "fam", now() + 1))
            .await
            .unwrap(),
        Rotation::Unknown
    );
    assert!(
        !storage
            .tokens
            .revoke(RevokeTarget::AccessToken {
                jti: "no-such-jti".into()
            })
            .await
            .unwrap()
    );
    assert!(
        !storage
            .tokens
            .revoke(RevokeTarget::RefreshToken {
                token_hash: missing.clone()
            })
            .await
            .unwrap()
    );
    assert!(
        storage
            .interactions
            .get_transaction(&missing)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        storage
            .interactions
            .take_transaction(&missing)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !storage
            .interactions
            .set_transaction_user(&missing, sample_user_identity("x"))
            .await
            .unwrap()
    );
    assert!(
        storage
            .interactions
            .get_consent("nobody", "no-client", "http://127.0.0.1:9000/mcp", now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !storage
            .keys
            .activate_key("no-such-kid", now())
            .await
            .unwrap()
    );
    assert!(!storage.keys.delete_key("no-such-kid").await.unwrap());
    if let Some(users) = &storage.users {
        assert!(users.get_user("no-such-user").await.unwrap().is_none());
        assert!(
            !users
                .set_password_hash("no-such-user", "$argon2id$x")
                .await
                .unwrap()
        );
        assert!(!users.delete_user("no-such-user").await.unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

pub async fn code_is_taken_once(storage: Storage) {
    let family = unique("fam");
    let code = sample_code(&family, now() + 60);
    storage.tokens.insert_code(code.clone()).await.unwrap();
    assert_eq!(
        storage.tokens.take_code(&code.code_hash).await.unwrap(),
        CodeRedemption::Redeemed(code.clone()),
        "the first take must return the stored code"
    );
    assert_eq!(
        storage.tokens.take_code(&code.code_hash).await.unwrap(),
        CodeRedemption::Replayed {
            family_id: family.clone()
        },
        "the second take must be reported as a replay with the code's family"
    );
}

pub async fn concurrent_take_code_has_one_winner(storage: Storage) {
    let family = unique("fam");
    let code = sample_code(&family, now() + 60);
    storage.tokens.insert_code(code.clone()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let tokens = Arc::clone(&storage.tokens);
        let hash = code.code_hash.clone();
        tasks.push(tokio::spawn(async move {
            tokens.take_code(&hash).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match t.await.unwrap() {
            CodeRedemption::Redeemed(_) => winners += 1,
            CodeRedemption::Replayed { family_id } => assert_eq!(family_id, family),
            CodeRedemption::Unknown => {
                panic!("a racing take of an existing code must not be Unknown")
            }
        }
    }
    assert_eq!(
        winners, 1,
        "16 concurrent take_code calls must give exactly one winner"
    );
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

pub async fn tokens_roundtrip_and_revoke(storage: Storage) {
    let family = unique("fam");
    let access = sample_access(&family, now() + 600);
    let refresh = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(access.clone(), Some(refresh.clone()))
        .await
        .unwrap();
    assert_eq!(
        storage.tokens.get_access_token(&access.jti).await.unwrap(),
        Some(access.clone())
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&refresh.token_hash)
            .await
            .unwrap(),
        Some(refresh.clone())
    );

    assert!(
        storage
            .tokens
            .revoke(RevokeTarget::AccessToken {
                jti: access.jti.clone()
            })
            .await
            .unwrap()
    );
    assert!(
        storage
            .tokens
            .get_access_token(&access.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    // Idempotent.
    storage
        .tokens
        .revoke(RevokeTarget::AccessToken {
            jti: access.jti.clone(),
        })
        .await
        .unwrap();

    assert!(
        storage
            .tokens
            .revoke(RevokeTarget::RefreshToken {
                token_hash: refresh.token_hash.clone()
            })
            .await
            .unwrap()
    );
    let r = storage
        .tokens
        .get_refresh_token(&refresh.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.state, RefreshTokenState::Revoked);
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&refresh.token_hash, &family, now() + 1))
            .await
            .unwrap(),
        Rotation::Unknown,
        "a revoked refresh token must not rotate"
    );

    // Access token without refresh token (client_credentials).
    let lone = sample_access(&unique("fam"), now() + 600);
    storage
        .tokens
        .insert_tokens(lone.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        storage.tokens.get_access_token(&lone.jti).await.unwrap(),
        Some(lone)
    );
}

pub async fn rotation_and_reuse(storage: Storage) {
    let family = unique("fam");
    let first = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(sample_access(&family, now() + 600), Some(first.clone()))
        .await
        .unwrap();

    let req = rotate_request(&first.token_hash, &family, now() + 1);
    let first_sealed = req.sealed_successor.clone();
    let second = req.new_refresh.clone();
    let second_access = req.new_access.clone();
    match storage.tokens.rotate_refresh_token(req).await.unwrap() {
        Rotation::Rotated(old) => assert_eq!(old.token_hash, first.token_hash),
        other => panic!("rotating an active token must give Rotated, got {other:?}"),
    }
    let old = storage
        .tokens
        .get_refresh_token(&first.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(old.state, RefreshTokenState::Rotated { .. }),
        "the old token must be marked rotated"
    );
    let new = storage
        .tokens
        .get_refresh_token(&second.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        new.state,
        RefreshTokenState::Active,
        "the new token must be active"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&second_access.jti)
            .await
            .unwrap()
            .is_some()
    );

    // Reuse outside the grace window: reported, nothing stored.
    let again = rotate_request(&first.token_hash, &family, now() + 1);
    let again_hash = again.new_refresh.token_hash.clone();
    match storage.tokens.rotate_refresh_token(again).await.unwrap() {
        Rotation::Reused(old) => assert_eq!(old.family_id, family),
        other => panic!("reusing a rotated token must give Reused, got {other:?}"),
    }
    assert!(
        storage
            .tokens
            .get_refresh_token(&again_hash)
            .await
            .unwrap()
            .is_none(),
        "a Reused rotation must store nothing"
    );

    // Reuse inside the grace window: the same successor comes back, nothing new is stored (a
    // family never has two live branches).
    let grace = rotate_request(&first.token_hash, &family, now() - 60);
    let grace_hash = grace.new_refresh.token_hash.clone();
    match storage.tokens.rotate_refresh_token(grace).await.unwrap() {
        Rotation::Replayed {
            old,
            sealed_successor,
        } => {
            assert_eq!(old.token_hash, first.token_hash);
            assert_eq!(
                sealed_successor, first_sealed,
                "a replay inside the grace window returns the first rotation's successor"
            );
        }
        other => panic!("a reuse inside the grace window must be Replayed, got {other:?}"),
    }
    assert!(
        storage
            .tokens
            .get_refresh_token(&grace_hash)
            .await
            .unwrap()
            .is_none(),
        "a Replayed rotation must store nothing"
    );
    // Once the successors are cleared, a replay is reuse.
    assert!(storage.tokens.clear_successors(now() + 10).await.unwrap() >= 1);
    match storage
        .tokens
        .rotate_refresh_token(rotate_request(&first.token_hash, &family, now() - 60))
        .await
        .unwrap()
    {
        Rotation::Reused(_) => {}
        other => panic!("without a kept successor a replay is reuse, got {other:?}"),
    }

    // Expired tokens never rotate.
    let expired = sample_refresh(&family, now() - 1);
    storage
        .tokens
        .insert_tokens(sample_access(&family, now() + 600), Some(expired.clone()))
        .await
        .unwrap();
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&expired.token_hash, &family, now() + 1))
            .await
            .unwrap(),
        Rotation::Unknown,
        "an expired refresh token must not rotate"
    );
}

pub async fn racing_rotations_have_one_winner(storage: Storage) {
    let family = unique("fam");
    let first = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(sample_access(&family, now() + 600), Some(first.clone()))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let tokens = Arc::clone(&storage.tokens);
        let req = rotate_request(&first.token_hash, &family, now() + 1);
        tasks.push(tokio::spawn(async move {
            tokens.rotate_refresh_token(req).await.unwrap()
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        match t.await.unwrap() {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Reused(_) | Rotation::Replayed { .. } => {}
            Rotation::Unknown => panic!("a racing rotation of a live token must not be Unknown"),
        }
    }
    assert_eq!(
        rotated, 1,
        "concurrent rotations of one token must give exactly one winner"
    );
}

pub async fn revoke_family_reaches_everything(storage: Storage) {
    let family = unique("fam");
    let bystander = unique("fam");
    let code = sample_code(&family, now() + 60);
    storage.tokens.insert_code(code.clone()).await.unwrap();
    let a1 = sample_access(&family, now() + 600);
    let r1 = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(a1.clone(), Some(r1.clone()))
        .await
        .unwrap();
    let a2 = sample_access(&family, now() + 600);
    let r2 = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(a2.clone(), Some(r2.clone()))
        .await
        .unwrap();
    let other_a = sample_access(&bystander, now() + 600);
    let other_r = sample_refresh(&bystander, now() + 3600);
    storage
        .tokens
        .insert_tokens(other_a.clone(), Some(other_r.clone()))
        .await
        .unwrap();

    storage
        .tokens
        .revoke_family(&family, now() + 3600)
        .await
        .unwrap();

    for jti in [&a1.jti, &a2.jti] {
        assert!(
            storage
                .tokens
                .get_access_token(jti)
                .await
                .unwrap()
                .unwrap()
                .revoked,
            "family access tokens revoked"
        );
    }
    for h in [&r1.token_hash, &r2.token_hash] {
        let r = storage.tokens.get_refresh_token(h).await.unwrap().unwrap();
        assert_eq!(
            r.state,
            RefreshTokenState::Revoked,
            "family refresh tokens revoked"
        );
        assert_eq!(
            storage
                .tokens
                .rotate_refresh_token(rotate_request(h, &family, now() + 1))
                .await
                .unwrap(),
            Rotation::Unknown
        );
    }
    assert!(
        !matches!(
            storage.tokens.take_code(&code.code_hash).await.unwrap(),
            CodeRedemption::Redeemed(_)
        ),
        "a code of a revoked family must not be redeemable"
    );
    // Tokens inserted for the family afterwards (a racing redemption) are born revoked.
    let late_a = sample_access(&family, now() + 600);
    let late_r = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(late_a.clone(), Some(late_r.clone()))
        .await
        .unwrap();
    assert!(
        storage
            .tokens
            .get_access_token(&late_a.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        "late access token born revoked"
    );
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&late_r.token_hash, &family, now() + 1))
            .await
            .unwrap(),
        Rotation::Unknown,
        "late refresh token of a revoked family must not rotate"
    );
    // Other families are untouched.
    assert!(
        !storage
            .tokens
            .get_access_token(&other_a.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&other_r.token_hash)
            .await
            .unwrap()
            .unwrap()
            .state,
        RefreshTokenState::Active
    );
}

pub async fn purge_removes_only_expired(storage: Storage) {
    let family = unique("fam");
    let t = now();
    let live_code = sample_code(&family, t + 60);
    let dead_code = sample_code(&family, t - 5);
    storage.tokens.insert_code(live_code.clone()).await.unwrap();
    storage.tokens.insert_code(dead_code.clone()).await.unwrap();
    let live_a = sample_access(&family, t + 600);
    let dead_a = sample_access(&family, t - 5);
    let live_r = sample_refresh(&family, t + 3600);
    let dead_r = sample_refresh(&family, t - 5);
    storage
        .tokens
        .insert_tokens(live_a.clone(), Some(live_r.clone()))
        .await
        .unwrap();
    storage
        .tokens
        .insert_tokens(dead_a.clone(), Some(dead_r.clone()))
        .await
        .unwrap();
    let live_tx = sample_transaction(t + 600);
    let dead_tx = sample_transaction(t - 5);
    storage
        .interactions
        .insert_transaction(live_tx.clone())
        .await
        .unwrap();
    storage
        .interactions
        .insert_transaction(dead_tx.clone())
        .await
        .unwrap();

    let counts = storage.tokens.purge_expired(t).await.unwrap();
    assert!(
        counts.codes >= 1 && counts.access_tokens >= 1 && counts.refresh_tokens >= 1,
        "purge counts: {counts:?}"
    );
    assert!(storage.interactions.purge_expired(t).await.unwrap() >= 1);

    assert_eq!(
        storage
            .tokens
            .take_code(&dead_code.code_hash)
            .await
            .unwrap(),
        CodeRedemption::Unknown,
        "expired code purged"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&dead_a.jti)
            .await
            .unwrap()
            .is_none(),
        "expired access record purged"
    );
    assert!(
        storage
            .tokens
            .get_refresh_token(&dead_r.token_hash)
            .await
            .unwrap()
            .is_none(),
        "expired refresh purged"
    );
    assert!(
        storage
            .interactions
            .get_transaction(&dead_tx.id_hash)
            .await
            .unwrap()
            .is_none(),
        "expired tx purged"
    );

    assert!(
        matches!(
            storage
                .tokens
                .take_code(&live_code.code_hash)
                .await
                .unwrap(),
            CodeRedemption::Redeemed(_)
        ),
        "live code kept"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&live_a.jti)
            .await
            .unwrap()
            .is_some(),
        "live access kept"
    );
    assert!(
        storage
            .tokens
            .get_refresh_token(&live_r.token_hash)
            .await
            .unwrap()
            .is_some(),
        "live refresh kept"
    );
    assert!(
        storage
            .interactions
            .get_transaction(&live_tx.id_hash)
            .await
            .unwrap()
            .is_some(),
        "live tx kept"
    );
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

fn sample_key(kid: &str, active: bool) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_string(),
        algorithm: "EdDSA".into(),
        private_key: vec![1, 2, 3, 4],
        public_jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"{kid}"}}"#),
        created_at: now(),
        active,
        retire_at: None,
    }
}

pub async fn keys_activate_one_at_a_time(storage: Storage) {
    let k1 = unique("kid");
    let k2 = unique("kid");
    storage
        .keys
        .insert_key(sample_key(&k1, false))
        .await
        .unwrap();
    match storage.keys.insert_key(sample_key(&k1, false)).await {
        Err(ProviderError::Conflict(_)) => {}
        other => panic!("a duplicate kid must give Conflict, got {other:?}"),
    }
    storage
        .keys
        .insert_key(sample_key(&k2, false))
        .await
        .unwrap();
    assert!(storage.keys.activate_key(&k1, now() + 100).await.unwrap());
    assert!(storage.keys.activate_key(&k2, now() + 100).await.unwrap());
    let keys = storage.keys.list_keys().await.unwrap();
    let active: Vec<_> = keys.iter().filter(|k| k.active).collect();
    assert_eq!(active.len(), 1, "exactly one key is active");
    assert_eq!(active[0].kid, k2);
    let old = keys.iter().find(|k| k.kid == k1).unwrap();
    assert!(
        old.retire_at.is_some(),
        "the replaced key gets a retire time"
    );
    assert_eq!(old.private_key, vec![1, 2, 3, 4], "key bytes round-trip");
    assert!(storage.keys.delete_key(&k1).await.unwrap());
    assert!(
        storage
            .keys
            .list_keys()
            .await
            .unwrap()
            .iter()
            .all(|k| k.kid != k1)
    );
}

// ---------------------------------------------------------------------------------------------
// Interactions
// ---------------------------------------------------------------------------------------------

pub async fn transactions_and_consent(storage: Storage) {
    let tx = sample_transaction(now() + 600);
    storage
        .interactions
        .insert_transaction(tx.clone())
        .await
        .unwrap();
    assert_eq!(
        storage
            .interactions
            .get_transaction(&tx.id_hash)
            .await
            .unwrap(),
        Some(tx.clone())
    );
    let user = sample_user_identity("alice");
    assert!(
        storage
            .interactions
            .set_transaction_user(&tx.id_hash, user.clone())
            .await
            .unwrap()
    );
    let got = storage
        .interactions
        .get_transaction(&tx.id_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.user, Some(user));

    let mut tasks = Vec::new();
    for _ in 0..16 {
        let interactions = Arc::clone(&storage.interactions);
        let h = tx.id_hash.clone();
        tasks.push(tokio::spawn(async move {
            interactions.take_transaction(&h).await.unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if t.await.unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "a transaction is taken exactly once");

    let subject = unique("sub");
    let c1 = ConsentRecord {
        subject: subject.clone(),
        client_id: "c".into(),
        resource: RESOURCE.into(),
        scopes: vec!["a".into()],
        granted_at: now(),
        expires_at: now() + 3600,
    };
    storage
        .interactions
        .remember_consent(c1.clone())
        .await
        .unwrap();
    assert_eq!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now())
            .await
            .unwrap(),
        Some(c1)
    );
    let c2 = ConsentRecord {
        scopes: vec!["a".into(), "b".into()],
        ..sample_consent(&subject)
    };
    storage
        .interactions
        .remember_consent(c2.clone())
        .await
        .unwrap();
    assert_eq!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now())
            .await
            .unwrap(),
        Some(c2),
        "consent replaced"
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "other", RESOURCE, now())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "c", "http://127.0.0.1:9000/other", now())
            .await
            .unwrap()
            .is_none(),
        "consent for one resource is not consent for another"
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now() + 7200)
            .await
            .unwrap()
            .is_none(),
        "an expired consent is not returned"
    );
    let elsewhere = ConsentRecord {
        resource: "http://127.0.0.1:9000/other".into(),
        expires_at: now() - 1,
        ..sample_consent(&subject)
    };
    storage
        .interactions
        .remember_consent(elsewhere)
        .await
        .unwrap();
    assert!(
        storage.interactions.purge_expired(now()).await.unwrap() >= 1,
        "expired consents are purged"
    );
    assert_eq!(
        storage
            .interactions
            .forget_consents(&subject)
            .await
            .unwrap(),
        1
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now())
            .await
            .unwrap()
            .is_none(),
        "forgotten"
    );
}

const RESOURCE: &str = "http://127.0.0.1:9000/mcp";

fn sample_consent(subject: &str) -> ConsentRecord {
    ConsentRecord {
        subject: subject.into(),
        client_id: "c".into(),
        resource: RESOURCE.into(),
        scopes: vec![],
        granted_at: now(),
        expires_at: now() + 3600,
    }
}

// ---------------------------------------------------------------------------------------------
// Local users
// ---------------------------------------------------------------------------------------------

pub async fn local_users(storage: Storage) {
    let Some(users) = storage.users.clone() else {
        return;
    };
    let name = unique("user");
    let rec = UserRecord {
        username: name.clone(),
        subject: unique("sub"),
        password_hash: "$argon2id$v=19$one".into(),
        created_at: now(),
    };
    users.insert_user(rec.clone()).await.unwrap();
    match users
        .insert_user(UserRecord {
            subject: "other".into(),
            ..rec.clone()
        })
        .await
    {
        Err(ProviderError::Conflict(_)) => {}
        other => panic!("a duplicate username must give Conflict, got {other:?}"),
    }
    assert_eq!(users.get_user(&name).await.unwrap(), Some(rec.clone()));
    assert_eq!(
        users.get_user_by_subject(&rec.subject).await.unwrap(),
        Some(rec.clone())
    );
    assert!(
        users
            .get_user_by_subject("no-such-subject")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        users
            .set_password_hash(&name, "$argon2id$v=19$two")
            .await
            .unwrap()
    );
    assert_eq!(
        users.get_user(&name).await.unwrap().unwrap().password_hash,
        "$argon2id$v=19$two"
    );
    assert!(
        users
            .list_users()
            .await
            .unwrap()
            .iter()
            .any(|u| u.username == name)
    );
    assert!(users.delete_user(&name).await.unwrap());
    assert!(users.get_user(&name).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Sign-in throttle
// ---------------------------------------------------------------------------------------------

fn throttle_policy() -> ThrottlePolicy {
    ThrottlePolicy {
        max_failures_per_address: 5,
        failure_window: 600,
        backoff_after: 1_000,
        backoff_max: 60,
        in_flight_lease: 30,
        known_address_ttl: 3_600,
    }
}

fn attempt(username_key: &str, address_key: &str, now: UnixTime) -> SignInAttempt {
    SignInAttempt {
        username_key: username_key.to_string(),
        address_key: address_key.to_string(),
        now,
    }
}

/// Of many concurrent `begin_attempt` calls for one username, exactly one is admitted while its
/// lease is held; the others are `Busy` and count nothing.
pub async fn throttle_admits_one_check_at_a_time(storage: Storage) {
    let policy = throttle_policy();
    let t = now();
    // Several rounds, all callers released at once: a store that reads and writes without one
    // atomic step lets two through in at least one of them.
    let mut user = String::new();
    for _ in 0..8 {
        user = unique("user");
        let barrier = Arc::new(tokio::sync::Barrier::new(24));
        let mut tasks = Vec::new();
        for i in 0..24 {
            let throttle = Arc::clone(&storage.throttle);
            let barrier = Arc::clone(&barrier);
            let a = attempt(&user, &format!("10.0.0.{i}"), t);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                throttle.begin_attempt(&a, &policy).await.unwrap()
            }));
        }
        let mut admitted = 0;
        for task in tasks {
            match task.await.unwrap() {
                ThrottleDecision::Admitted => admitted += 1,
                ThrottleDecision::Busy => {}
                other => panic!("a racing attempt must be Admitted or Busy, not {other:?}"),
            }
        }
        assert_eq!(
            admitted, 1,
            "24 concurrent begin_attempt for one username: exactly one check may be in flight"
        );
    }
    // The lease is released by end_attempt, and runs out by itself.
    let a = attempt(&user, "10.0.0.200", t);
    assert_eq!(
        storage.throttle.begin_attempt(&a, &policy).await.unwrap(),
        ThrottleDecision::Busy
    );
    let later = attempt(&user, "10.0.0.200", t + policy.in_flight_lease);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&later, &policy)
            .await
            .unwrap(),
        ThrottleDecision::Admitted,
        "an expired lease (a crashed server) must not hold the username for ever"
    );
    storage
        .throttle
        .end_attempt(&later, false, &policy)
        .await
        .unwrap();
    assert_eq!(
        storage
            .throttle
            .begin_attempt(
                &attempt(&user, "10.0.0.201", t + policy.in_flight_lease),
                &policy
            )
            .await
            .unwrap(),
        ThrottleDecision::Admitted,
        "end_attempt releases the lease"
    );
}

/// Many tasks racing to guess through one address: exactly the limit is admitted, never more.
pub async fn throttle_concurrent_takes_admit_exactly_the_limit(storage: Storage) {
    let policy = throttle_policy();
    let user = unique("user");
    let t = now();
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let throttle = Arc::clone(&storage.throttle);
        let barrier = Arc::clone(&barrier);
        let a = attempt(&user, "192.0.2.7", t);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut admitted = 0u32;
            loop {
                match throttle.begin_attempt(&a, &policy).await.unwrap() {
                    ThrottleDecision::Admitted => {
                        admitted += 1;
                        throttle.end_attempt(&a, false, &policy).await.unwrap();
                    }
                    ThrottleDecision::Busy => tokio::task::yield_now().await,
                    ThrottleDecision::Refused { retry_after } => {
                        assert!(retry_after >= 1, "retry_after is at least one second");
                        return admitted;
                    }
                }
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(
        total, policy.max_failures_per_address,
        "16 racing guessers through one address: exactly the limit may be checked"
    );
    // Another address is not refused (the username's back-off is far away in this policy) …
    let elsewhere = attempt(&user, "198.51.100.1", t);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&elsewhere, &policy)
            .await
            .unwrap(),
        ThrottleDecision::Admitted
    );
    // … and a success there does not unlock the guessing address.
    storage
        .throttle
        .end_attempt(&elsewhere, true, &policy)
        .await
        .unwrap();
    assert!(
        matches!(
            storage
                .throttle
                .begin_attempt(&attempt(&user, "192.0.2.7", t), &policy)
                .await
                .unwrap(),
            ThrottleDecision::Refused { .. }
        ),
        "the user's own success elsewhere must not unlock the guessing address"
    );
}

/// The username's back-off applies across addresses, except to an address known for it.
pub async fn throttle_backoff_spares_known_addresses(storage: Storage) {
    let policy = ThrottlePolicy {
        backoff_after: 3,
        ..throttle_policy()
    };
    let user = unique("user");
    let t = now();
    let home = attempt(&user, "home", t);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&home, &policy)
            .await
            .unwrap(),
        ThrottleDecision::Admitted
    );
    storage
        .throttle
        .end_attempt(&home, true, &policy)
        .await
        .unwrap();
    for i in 0..3 {
        let a = attempt(&user, &format!("stranger-{i}"), t);
        assert_eq!(
            storage.throttle.begin_attempt(&a, &policy).await.unwrap(),
            ThrottleDecision::Admitted
        );
        storage
            .throttle
            .end_attempt(&a, false, &policy)
            .await
            .unwrap();
    }
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&user, "stranger-9", t), &policy)
            .await
            .unwrap(),
        ThrottleDecision::Refused { retry_after: 1 },
        "after backoff_after failures a new address waits"
    );
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&user, "home", t), &policy)
            .await
            .unwrap(),
        ThrottleDecision::Admitted,
        "an address that signed in before is spared the back-off"
    );
    // Another username is not affected at all.
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&unique("user"), "stranger-9", t), &policy)
            .await
            .unwrap(),
        ThrottleDecision::Admitted
    );
}

/// A failure is dated when its check ended: a slow check does not shorten the wait after it.
pub async fn throttle_dates_a_failure_when_its_check_ends(storage: Storage) {
    let policy = ThrottlePolicy {
        max_failures_per_address: 1,
        ..throttle_policy()
    };
    let user = unique("user");
    let t = now();
    let a = attempt(&user, "192.0.2.3", t);
    assert_eq!(
        storage.throttle.begin_attempt(&a, &policy).await.unwrap(),
        ThrottleDecision::Admitted
    );
    let ended = attempt(&user, "192.0.2.3", t + 20);
    storage
        .throttle
        .end_attempt(&ended, false, &policy)
        .await
        .unwrap();
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&user, "192.0.2.3", t + 20), &policy)
            .await
            .unwrap(),
        ThrottleDecision::Refused {
            retry_after: policy.failure_window
        },
        "the window runs from the end of the failed check"
    );
}

/// `purge_expired` removes counters that no longer matter, and only those.
pub async fn throttle_purge_removes_only_expired(storage: Storage) {
    let policy = throttle_policy();
    let (old, fresh) = (unique("user"), unique("user"));
    let t = now();
    let a = attempt(&old, "192.0.2.1", t - 10_000);
    storage.throttle.begin_attempt(&a, &policy).await.unwrap();
    storage
        .throttle
        .end_attempt(&a, false, &policy)
        .await
        .unwrap();
    for _ in 0..5 {
        let b = attempt(&fresh, "192.0.2.1", t);
        assert_eq!(
            storage.throttle.begin_attempt(&b, &policy).await.unwrap(),
            ThrottleDecision::Admitted
        );
        storage
            .throttle
            .end_attempt(&b, false, &policy)
            .await
            .unwrap();
    }
    assert!(storage.throttle.purge_expired(t).await.unwrap() >= 2);
    assert!(
        matches!(
            storage
                .throttle
                .begin_attempt(&attempt(&fresh, "192.0.2.1", t), &policy)
                .await
                .unwrap(),
            ThrottleDecision::Refused { .. }
        ),
        "a live counter survives the purge"
    );
}

// ---------------------------------------------------------------------------------------------
// Client approval, unused registrations, grants by user
// ---------------------------------------------------------------------------------------------

pub async fn unused_registrations_are_purged(storage: Storage) {
    let old = now() - 1000;
    let unused = Client {
        client_id: unique("unused"),
        client_id_issued_at: old,
        ..sample_client("x")
    };
    let approved = Client {
        client_id: unique("approved"),
        client_id_issued_at: old,
        ..sample_client("x")
    };
    let admin = Client {
        client_id: unique("admin"),
        client_id_issued_at: old,
        origin: ClientOrigin::Administrator,
        resource_server: true,
        ..sample_client("x")
    };
    let fresh = Client {
        client_id: unique("fresh"),
        ..sample_client("x")
    };
    for c in [&unused, &approved, &admin, &fresh] {
        storage.clients.insert_client(c.clone()).await.unwrap();
    }
    storage
        .clients
        .mark_client_approved(&approved.client_id, old + 5)
        .await
        .unwrap();
    storage
        .clients
        .mark_client_approved(&approved.client_id, old + 50)
        .await
        .unwrap();
    storage
        .clients
        .mark_client_approved("no-such-client", old)
        .await
        .unwrap();
    let got = storage
        .clients
        .get_client(&approved.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.approved_at, Some(old + 5), "the first approval is kept");
    let got_admin = storage
        .clients
        .get_client(&admin.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_admin, admin, "origin and resource_server round-trip");
    let purged = storage
        .clients
        .purge_unused_clients(now() - 100)
        .await
        .unwrap();
    assert!(purged >= 1);
    let exists = |id: String| {
        let clients = Arc::clone(&storage.clients);
        async move { clients.get_client(&id).await.unwrap().is_some() }
    };
    assert!(
        !exists(unused.client_id.clone()).await,
        "unused and old: purged"
    );
    assert!(exists(approved.client_id.clone()).await, "approved: kept");
    assert!(exists(admin.client_id.clone()).await, "admin-made: kept");
    assert!(exists(fresh.client_id.clone()).await, "recent: kept");
}

pub async fn grants_are_listed_and_revoked_by_user(storage: Storage) {
    let alice = unique("alice");
    let bob = unique("bob");
    let mine = unique("fam");
    let pending = unique("fam");
    let theirs = unique("fam");
    let mut a = sample_access(&mine, now() + 600);
    a.subject = alice.clone();
    let mut r = sample_refresh(&mine, now() + 3600);
    r.subject = alice.clone();
    storage
        .tokens
        .insert_tokens(a.clone(), Some(r.clone()))
        .await
        .unwrap();
    let mut code = sample_code(&pending, now() + 60);
    code.code_hash = hash("code");
    code.subject = alice.clone();
    storage.tokens.insert_code(code.clone()).await.unwrap();
    let mut b = sample_access(&theirs, now() + 600);
    b.subject = bob.clone();
    storage.tokens.insert_tokens(b.clone(), None).await.unwrap();

    let filter = GrantFilter {
        subject: Some(alice.clone()),
        client_id: None,
    };
    let listed = storage.tokens.list_grants(&filter, now()).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].family_id, mine);
    assert_eq!(listed[0].subject, alice);
    assert!(listed[0].refreshable);
    assert_eq!(listed[0].expires_at, r.expires_at);
    let revoked = storage
        .tokens
        .revoke_grants(&filter, now() + 7200)
        .await
        .unwrap();
    assert_eq!(revoked, 2, "the token family and the pending code's family");
    assert!(
        storage
            .tokens
            .list_grants(&filter, now())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        storage
            .tokens
            .get_access_token(&a.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert_eq!(
        storage.tokens.take_code(&code.code_hash).await.unwrap(),
        CodeRedemption::Replayed {
            family_id: pending.clone()
        },
        "a pending code of the user can no longer be redeemed"
    );
    // A racing insert into a revoked family is born revoked.
    let mut late = sample_access(&pending, now() + 600);
    late.subject = alice.clone();
    storage
        .tokens
        .insert_tokens(late.clone(), None)
        .await
        .unwrap();
    assert!(
        storage
            .tokens
            .get_access_token(&late.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    // Bob is untouched.
    assert!(
        !storage
            .tokens
            .get_access_token(&b.jti)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert!(
        storage
            .tokens
            .revoke_grants(&GrantFilter::default(), now())
            .await
            .is_err(),
        "an empty filter never revokes everything"
    );
}

/// Generates one `#[tokio::test]` per conformance check. `$make` is an async expression evaluating to
/// a fresh [`Storage`]; it is evaluated once per test. With `optional:`, `$make` evaluates to
/// `Option<Storage>` and `None` skips (for backends whose service may be absent; the `$make` itself
/// must panic instead when the test run declared the service required).
///
/// ```ignore
/// mcp_oauth_provider::storage_conformance_tests!(async { my_backend::open_for_tests().await });
/// ```
#[macro_export]
macro_rules! storage_conformance_tests {
    (optional: $make:expr) => {
        $crate::storage_conformance_tests!(@optional $make;
            client_roundtrip_and_duplicate_conflict,
            unknown_ids_are_none,
            code_is_taken_once,
            concurrent_take_code_has_one_winner,
            tokens_roundtrip_and_revoke,
            rotation_and_reuse,
            racing_rotations_have_one_winner,
            revoke_family_reaches_everything,
            purge_removes_only_expired,
            keys_activate_one_at_a_time,
            transactions_and_consent,
            local_users,
            throttle_admits_one_check_at_a_time,
            throttle_concurrent_takes_admit_exactly_the_limit,
            throttle_backoff_spares_known_addresses,
            throttle_dates_a_failure_when_its_check_ends,
            throttle_purge_removes_only_expired,
            unused_registrations_are_purged,
            grants_are_listed_and_revoked_by_user,
        );
    };
    (@optional $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let storage: Option<$crate::Storage> = $make.await;
                match storage {
                    Some(storage) => $crate::testkit::$check(storage).await,
                    None => eprintln!("skipped {}: backend not available", stringify!($check)),
                }
            }
        )*
    };
    ($make:expr) => {
        $crate::storage_conformance_tests!(@each $make;
            client_roundtrip_and_duplicate_conflict,
            unknown_ids_are_none,
            code_is_taken_once,
            concurrent_take_code_has_one_winner,
            tokens_roundtrip_and_revoke,
            rotation_and_reuse,
            racing_rotations_have_one_winner,
            revoke_family_reaches_everything,
            purge_removes_only_expired,
            keys_activate_one_at_a_time,
            transactions_and_consent,
            local_users,
            throttle_admits_one_check_at_a_time,
            throttle_concurrent_takes_admit_exactly_the_limit,
            throttle_backoff_spares_known_addresses,
            throttle_dates_a_failure_when_its_check_ends,
            throttle_purge_removes_only_expired,
            unused_registrations_are_purged,
            grants_are_listed_and_revoked_by_user,
        );
    };
    (@each $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let storage: $crate::Storage = $make.await;
                $crate::testkit::$check(storage).await;
            }
        )*
    };
}
