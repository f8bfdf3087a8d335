//! The conformance kit: checks every backend must pass, written once and run against memory,
//! SQLite, Postgres, the built-in authenticators and any plugin.
//!
//! - Storage: one `async fn(Storage)` per contract, and
//!   [`storage_conformance_tests!`](crate::storage_conformance_tests) to turn them all into tests.
//! - User authenticators: one `async fn(Arc<dyn UserAuthenticator>, &AuthenticatorFixture)` per
//!   contract, and [`authenticator_conformance_tests!`](crate::authenticator_conformance_tests).
//!
//! Every failure is a panic whose message starts with the method whose contract broke, then the
//! contract in words, e.g. `take_code: a code was redeemed twice under 16 concurrent calls`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use crate::*;

mod authenticator;
pub use authenticator::*;

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

/// Unwraps a store call the check needs to succeed, failing with `"<method>: …"` and the error.
trait Must<T> {
    fn must(self, method: &str) -> T;
}

impl<T> Must<T> for ProviderResult<T> {
    #[track_caller]
    fn must(self, method: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{method}: MUST succeed on a working store, failed with {e:?}"),
        }
    }
}

/// Awaits a spawned racing call, passing its panic (which names the broken contract) on unchanged.
async fn joined<T>(task: tokio::task::JoinHandle<T>) -> T {
    match task.await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a racing task was cancelled: {e}"),
    }
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
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
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

/// `ClientStore`: `get_client` MUST return exactly what `insert_client` stored; `insert_client` of
/// an existing `client_id` MUST fail with `Conflict` and change nothing; `list_clients` MUST include
/// every stored client; `delete_client` MUST return `true` once and `false` after.
pub async fn client_roundtrip_and_duplicate_conflict(storage: Storage) {
    let id = unique("client");
    let client = sample_client(&id);
    storage
        .clients
        .insert_client(client.clone())
        .await
        .must("insert_client");
    let got = storage.clients.get_client(&id).await.must("get_client");
    assert_eq!(
        got.as_ref(),
        Some(&client),
        "get_client: did not return exactly the client insert_client stored"
    );

    let mut other = sample_client(&id);
    other.client_name = Some("impostor".into());
    match storage.clients.insert_client(other).await {
        Err(ProviderError::Conflict(_)) => {}
        other => {
            panic!("insert_client: a duplicate client_id did not give Conflict, got {other:?}")
        }
    }
    let still = storage.clients.get_client(&id).await.must("get_client");
    assert_eq!(
        still.as_ref(),
        Some(&client),
        "insert_client: a refused duplicate changed the stored client"
    );

    let listed = storage.clients.list_clients().await.must("list_clients");
    assert!(
        listed.iter().any(|c| c.client_id == id),
        "list_clients: a stored client is missing from the list"
    );
    assert!(
        storage
            .clients
            .delete_client(&id)
            .await
            .must("delete_client"),
        "delete_client: deleting a stored client did not return true"
    );
    assert!(
        storage
            .clients
            .get_client(&id)
            .await
            .must("get_client")
            .is_none(),
        "delete_client: the deleted client is still returned by get_client"
    );
    assert!(
        !storage
            .clients
            .delete_client(&id)
            .await
            .must("delete_client"),
        "delete_client: deleting an already deleted client did not return false"
    );
}

/// Lookups of unknown keys MUST return `Ok(None)` (or `Unknown`, `false`), never an error: every
/// lookup, take, revoke and delete of every store is called with a key that was never stored.
pub async fn unknown_ids_are_none(storage: Storage) {
    let missing = hash("missing");
    assert!(
        storage
            .clients
            .get_client("no-such-client")
            .await
            .must("get_client")
            .is_none(),
        "get_client: an unknown client_id did not give None"
    );
    assert!(
        !storage
            .clients
            .delete_client("no-such-client")
            .await
            .must("delete_client"),
        "delete_client: an unknown client_id did not give false"
    );
    assert!(
        storage
            .tokens
            .get_access_token("no-such-jti")
            .await
            .must("get_access_token")
            .is_none(),
        "get_access_token: an unknown jti did not give None"
    );
    assert!(
        storage
            .tokens
            .get_refresh_token(&missing)
            .await
            .must("get_refresh_token")
            .is_none(),
        "get_refresh_token: an unknown hash did not give None"
    );
    assert_eq!(
        storage.tokens.take_code(&missing).await.must("take_code"),
        CodeRedemption::Unknown,
        "take_code: an unknown code was not Unknown"
    );
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&missing, "fam", now() + 1))
            .await
            .must("rotate_refresh_token"),
        Rotation::Unknown,
        "rotate_refresh_token: an unknown token was not Unknown"
    );
    assert!(
        !storage
            .tokens
            .revoke(RevokeTarget::AccessToken {
                jti: "no-such-jti".into()
            })
            .await
            .must("revoke"),
        "revoke: an unknown access token did not give false"
    );
    assert!(
        !storage
            .tokens
            .revoke(RevokeTarget::RefreshToken {
                token_hash: missing.clone()
            })
            .await
            .must("revoke"),
        "revoke: an unknown refresh token did not give false"
    );
    assert!(
        storage
            .interactions
            .get_transaction(&missing)
            .await
            .must("get_transaction")
            .is_none(),
        "get_transaction: an unknown id did not give None"
    );
    assert!(
        storage
            .interactions
            .take_transaction(&missing)
            .await
            .must("take_transaction")
            .is_none(),
        "take_transaction: an unknown id did not give None"
    );
    assert!(
        !storage
            .interactions
            .set_transaction_user(&missing, sample_user_identity("x"))
            .await
            .must("set_transaction_user"),
        "set_transaction_user: an unknown id did not give false"
    );
    assert!(
        storage
            .interactions
            .get_consent("nobody", "no-client", "http://127.0.0.1:9000/mcp", now())
            .await
            .must("get_consent")
            .is_none(),
        "get_consent: an unknown consent did not give None"
    );
    assert!(
        !storage
            .keys
            .activate_key("no-such-kid", now())
            .await
            .must("activate_key"),
        "activate_key: an unknown kid did not give false"
    );
    assert!(
        !storage
            .keys
            .delete_key("no-such-kid")
            .await
            .must("delete_key"),
        "delete_key: an unknown kid did not give false"
    );
    if let Some(users) = &storage.users {
        assert!(
            users
                .get_user("no-such-user")
                .await
                .must("get_user")
                .is_none(),
            "get_user: an unknown username did not give None"
        );
        assert!(
            !users
                .set_password_hash("no-such-user", "$argon2id$x")
                .await
                .must("set_password_hash"),
            "set_password_hash: an unknown username did not give false"
        );
        assert!(
            !users.delete_user("no-such-user").await.must("delete_user"),
            "delete_user: an unknown username did not give false"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Codes
// ---------------------------------------------------------------------------------------------

/// `take_code` MUST return the stored code once (`Redeemed`), then `Replayed` with the code's family.
pub async fn code_is_taken_once(storage: Storage) {
    let family = unique("fam");
    let code = sample_code(&family, now() + 60);
    storage
        .tokens
        .insert_code(code.clone())
        .await
        .must("insert_code");
    assert_eq!(
        storage
            .tokens
            .take_code(&code.code_hash)
            .await
            .must("take_code"),
        CodeRedemption::Redeemed(code.clone()),
        "take_code: the first take did not return the stored code as Redeemed"
    );
    assert_eq!(
        storage
            .tokens
            .take_code(&code.code_hash)
            .await
            .must("take_code"),
        CodeRedemption::Replayed {
            family_id: family.clone()
        },
        "take_code: a second take was not Replayed with the code's family"
    );
}

/// `take_code` MUST be atomic: of 16 concurrent calls for one code exactly one gets `Redeemed`, the
/// others `Replayed` with the code's family (never `Unknown`). A store that reads and then deletes
/// in two steps lets two callers redeem one code.
pub async fn concurrent_take_code_has_one_winner(storage: Storage) {
    const RACERS: usize = 16;
    let family = unique("fam");
    let code = sample_code(&family, now() + 60);
    storage
        .tokens
        .insert_code(code.clone())
        .await
        .must("insert_code");
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let tokens = Arc::clone(&storage.tokens);
        let hash = code.code_hash.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            tokens.take_code(&hash).await.must("take_code")
        }));
    }
    let mut winners = 0;
    for t in tasks {
        match joined(t).await {
            CodeRedemption::Redeemed(_) => winners += 1,
            CodeRedemption::Replayed { family_id } => assert_eq!(
                family_id, family,
                "take_code: a racing replay named another family"
            ),
            CodeRedemption::Unknown => {
                panic!("take_code: a racing take of a stored code was Unknown")
            }
        }
    }
    assert!(
        winners <= 1,
        "take_code: a code was redeemed {} under {RACERS} concurrent calls",
        if winners == 2 {
            "twice".to_string()
        } else {
            format!("{winners} times")
        }
    );
    assert_eq!(
        winners, 1,
        "take_code: no caller redeemed the code under {RACERS} concurrent calls"
    );
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// `insert_tokens` MUST store the access record and the optional refresh record exactly; `revoke`
/// MUST mark either revoked, return `true`, be idempotent; a revoked refresh token MUST NOT rotate.
pub async fn tokens_roundtrip_and_revoke(storage: Storage) {
    let family = unique("fam");
    let access = sample_access(&family, now() + 600);
    let refresh = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(access.clone(), Some(refresh.clone()))
        .await
        .must("insert_tokens");
    assert_eq!(
        storage
            .tokens
            .get_access_token(&access.jti)
            .await
            .must("get_access_token"),
        Some(access.clone()),
        "get_access_token: did not return exactly the record insert_tokens stored"
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&refresh.token_hash)
            .await
            .must("get_refresh_token"),
        Some(refresh.clone()),
        "get_refresh_token: did not return exactly the record insert_tokens stored"
    );

    assert!(
        storage
            .tokens
            .revoke(RevokeTarget::AccessToken {
                jti: access.jti.clone()
            })
            .await
            .must("revoke"),
        "revoke: revoking a stored access token did not return true"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&access.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke: the access token is not marked revoked"
    );
    // Idempotent.
    storage
        .tokens
        .revoke(RevokeTarget::AccessToken {
            jti: access.jti.clone(),
        })
        .await
        .must("revoke (idempotent)");

    assert!(
        storage
            .tokens
            .revoke(RevokeTarget::RefreshToken {
                token_hash: refresh.token_hash.clone()
            })
            .await
            .must("revoke"),
        "revoke: revoking a stored refresh token did not return true"
    );
    let r = storage
        .tokens
        .get_refresh_token(&refresh.token_hash)
        .await
        .must("get_refresh_token")
        .expect("get_refresh_token: a stored record was not found");
    assert_eq!(
        r.state,
        RefreshTokenState::Revoked,
        "revoke: the refresh token is not marked revoked"
    );
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&refresh.token_hash, &family, now() + 1))
            .await
            .must("rotate_refresh_token"),
        Rotation::Unknown,
        "rotate_refresh_token: a revoked refresh token rotated"
    );

    // Access token without refresh token (client_credentials).
    let lone = sample_access(&unique("fam"), now() + 600);
    storage
        .tokens
        .insert_tokens(lone.clone(), None)
        .await
        .must("insert_tokens");
    assert_eq!(
        storage
            .tokens
            .get_access_token(&lone.jti)
            .await
            .must("get_access_token"),
        Some(lone),
        "insert_tokens: an access token without a refresh token was not stored"
    );
}

/// `rotate_refresh_token` of an active token MUST give `Rotated`, mark the old token rotated and
/// store the new pair; a later rotation of the old token MUST give `Replayed` with the first
/// successor inside the grace window, `Reused` outside it or once `clear_successors` dropped the
/// successor, and MUST store nothing then; an expired token MUST NOT rotate.
pub async fn rotation_and_reuse(storage: Storage) {
    let family = unique("fam");
    let first = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(sample_access(&family, now() + 600), Some(first.clone()))
        .await
        .must("insert_tokens");

    let req = rotate_request(&first.token_hash, &family, now() + 1);
    let first_sealed = req.sealed_successor.clone();
    let second = req.new_refresh.clone();
    let second_access = req.new_access.clone();
    match storage
        .tokens
        .rotate_refresh_token(req)
        .await
        .must("rotate_refresh_token")
    {
        Rotation::Rotated(old) => assert_eq!(
            old.token_hash, first.token_hash,
            "rotate_refresh_token: Rotated did not hold the old record"
        ),
        other => panic!(
            "rotate_refresh_token: rotating an active token did not give Rotated, got {other:?}"
        ),
    }
    let old = storage
        .tokens
        .get_refresh_token(&first.token_hash)
        .await
        .must("get_refresh_token")
        .expect("get_refresh_token: a stored record was not found");
    assert!(
        matches!(old.state, RefreshTokenState::Rotated { .. }),
        "rotate_refresh_token: the old token is not marked rotated"
    );
    let new = storage
        .tokens
        .get_refresh_token(&second.token_hash)
        .await
        .must("get_refresh_token")
        .expect("get_refresh_token: a stored record was not found");
    assert_eq!(
        new.state,
        RefreshTokenState::Active,
        "rotate_refresh_token: the new refresh token is not stored active"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&second_access.jti)
            .await
            .must("get_access_token")
            .is_some(),
        "rotate_refresh_token: the new access token was not stored"
    );

    // Reuse outside the grace window: reported, nothing stored.
    let again = rotate_request(&first.token_hash, &family, now() + 1);
    let again_hash = again.new_refresh.token_hash.clone();
    match storage
        .tokens
        .rotate_refresh_token(again)
        .await
        .must("rotate_refresh_token")
    {
        Rotation::Reused(old) => assert_eq!(
            old.family_id, family,
            "rotate_refresh_token: Reused did not hold the old record"
        ),
        other => panic!(
            "rotate_refresh_token: reusing a rotated token outside the grace window did not give Reused, got {other:?}"
        ),
    }
    assert!(
        storage
            .tokens
            .get_refresh_token(&again_hash)
            .await
            .must("get_refresh_token")
            .is_none(),
        "rotate_refresh_token: a Reused rotation stored a new token"
    );

    // Reuse inside the grace window: the same successor comes back, nothing new is stored (a
    // family never has two live branches).
    let grace = rotate_request(&first.token_hash, &family, now() - 60);
    let grace_hash = grace.new_refresh.token_hash.clone();
    match storage
        .tokens
        .rotate_refresh_token(grace)
        .await
        .must("rotate_refresh_token")
    {
        Rotation::Replayed {
            old,
            sealed_successor,
        } => {
            assert_eq!(
                old.token_hash, first.token_hash,
                "rotate_refresh_token: Replayed did not hold the old record"
            );
            assert_eq!(
                sealed_successor, first_sealed,
                "rotate_refresh_token: a replay inside the grace window did not return the first rotation's successor"
            );
        }
        other => panic!(
            "rotate_refresh_token: a reuse inside the grace window did not give Replayed, got {other:?}"
        ),
    }
    assert!(
        storage
            .tokens
            .get_refresh_token(&grace_hash)
            .await
            .must("get_refresh_token")
            .is_none(),
        "rotate_refresh_token: a Replayed rotation stored a new token (two live branches)"
    );
    // Once the successors are cleared, a replay is reuse.
    assert!(
        storage
            .tokens
            .clear_successors(now() + 10)
            .await
            .must("clear_successors")
            >= 1,
        "clear_successors: a kept successor older than rotated_before was not counted"
    );
    match storage
        .tokens
        .rotate_refresh_token(rotate_request(&first.token_hash, &family, now() - 60))
        .await
        .must("rotate_refresh_token")
    {
        Rotation::Reused(_) => {}
        other => panic!(
            "clear_successors: a replay after the successor was cleared did not give Reused, got {other:?}"
        ),
    }

    // Expired tokens never rotate.
    let expired = sample_refresh(&family, now() - 1);
    storage
        .tokens
        .insert_tokens(sample_access(&family, now() + 600), Some(expired.clone()))
        .await
        .must("insert_tokens");
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&expired.token_hash, &family, now() + 1))
            .await
            .must("rotate_refresh_token"),
        Rotation::Unknown,
        "rotate_refresh_token: an expired refresh token rotated"
    );
}

/// `rotate_refresh_token` MUST be atomic: of 8 concurrent rotations of one active token exactly one
/// gets `Rotated`; the others `Replayed` or `Reused` (never `Unknown`).
pub async fn racing_rotations_have_one_winner(storage: Storage) {
    const RACERS: usize = 8;
    let family = unique("fam");
    let first = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(sample_access(&family, now() + 600), Some(first.clone()))
        .await
        .must("insert_tokens");
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let tokens = Arc::clone(&storage.tokens);
        let barrier = Arc::clone(&barrier);
        let req = rotate_request(&first.token_hash, &family, now() + 1);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            tokens
                .rotate_refresh_token(req)
                .await
                .must("rotate_refresh_token")
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        match joined(t).await {
            Rotation::Rotated(_) => rotated += 1,
            Rotation::Reused(_) | Rotation::Replayed { .. } => {}
            Rotation::Unknown => {
                panic!("rotate_refresh_token: a racing rotation of a live token was Unknown")
            }
        }
    }
    assert!(
        rotated <= 1,
        "rotate_refresh_token: {} (of {RACERS} concurrent calls for one token)",
        if rotated == 2 {
            "two racing rotations both won".to_string()
        } else {
            format!("{rotated} racing rotations all won")
        }
    );
    assert_eq!(
        rotated, 1,
        "rotate_refresh_token: none of {RACERS} racing rotations of an active token won"
    );
}

/// `rotate_refresh_token` racing `revoke_family` on the same family MUST both succeed (neither may
/// fail with a lock error: take locks in one order), and the family MUST end revoked: the successor
/// a winning rotation stored is not `Active` afterwards.
pub async fn rotation_racing_revocation_neither_fails_nor_survives(storage: Storage) {
    const PAIRS: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(2 * PAIRS));
    let mut tasks = Vec::new();
    for _ in 0..PAIRS {
        let family = unique("fam");
        let first = sample_refresh(&family, now() + 3600);
        storage
            .tokens
            .insert_tokens(sample_access(&family, now() + 600), Some(first.clone()))
            .await
            .must("insert_tokens");
        let req = rotate_request(&first.token_hash, &family, now() + 1);
        let successor = req.new_refresh.token_hash.clone();
        let (tokens, gate) = (Arc::clone(&storage.tokens), Arc::clone(&barrier));
        let rotate = tokio::spawn(async move {
            gate.wait().await;
            tokens.rotate_refresh_token(req).await
        });
        let (tokens, gate, fam) = (Arc::clone(&storage.tokens), Arc::clone(&barrier), family);
        let revoke = tokio::spawn(async move {
            gate.wait().await;
            tokens.revoke_family(&fam, now() + 3600).await
        });
        tasks.push((rotate, revoke, successor));
    }
    for (rotate, revoke, successor) in tasks {
        let rotated = joined(rotate).await;
        let revoked = joined(revoke).await;
        assert!(
            rotated.is_ok() && revoked.is_ok(),
            "rotate_refresh_token / revoke_family: racing on one family, one of them failed \
             (rotate: {rotated:?}, revoke: {revoked:?}); take the family lock before the token's row"
        );
        let after = storage
            .tokens
            .get_refresh_token(&successor)
            .await
            .must("get_refresh_token");
        assert!(
            !after.is_some_and(|r| r.state == RefreshTokenState::Active),
            "rotate_refresh_token: a rotation racing revoke_family left an active successor in the \
             revoked family"
        );
    }
}

/// `revoke_family` MUST mark every code (as used), access token and refresh token of the family
/// revoked, and MUST remember the family so that tokens inserted for it afterwards are stored
/// revoked and never rotate; other families MUST be untouched.
pub async fn revoke_family_reaches_everything(storage: Storage) {
    let family = unique("fam");
    let bystander = unique("fam");
    let code = sample_code(&family, now() + 60);
    storage
        .tokens
        .insert_code(code.clone())
        .await
        .must("insert_code");
    let a1 = sample_access(&family, now() + 600);
    let r1 = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(a1.clone(), Some(r1.clone()))
        .await
        .must("insert_tokens");
    let a2 = sample_access(&family, now() + 600);
    let r2 = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(a2.clone(), Some(r2.clone()))
        .await
        .must("insert_tokens");
    let other_a = sample_access(&bystander, now() + 600);
    let other_r = sample_refresh(&bystander, now() + 3600);
    storage
        .tokens
        .insert_tokens(other_a.clone(), Some(other_r.clone()))
        .await
        .must("insert_tokens");

    storage
        .tokens
        .revoke_family(&family, now() + 3600)
        .await
        .must("revoke_family");

    for jti in [&a1.jti, &a2.jti] {
        assert!(
            storage
                .tokens
                .get_access_token(jti)
                .await
                .must("get_access_token")
                .expect("get_access_token: a stored record was not found")
                .revoked,
            "revoke_family: an access token of the family is not revoked"
        );
    }
    for h in [&r1.token_hash, &r2.token_hash] {
        let r = storage
            .tokens
            .get_refresh_token(h)
            .await
            .must("get_refresh_token")
            .expect("get_refresh_token: a stored record was not found");
        assert_eq!(
            r.state,
            RefreshTokenState::Revoked,
            "revoke_family: a refresh token of the family is not revoked"
        );
        assert_eq!(
            storage
                .tokens
                .rotate_refresh_token(rotate_request(h, &family, now() + 1))
                .await
                .must("rotate_refresh_token"),
            Rotation::Unknown,
            "revoke_family: a refresh token of the revoked family still rotates"
        );
    }
    assert!(
        !matches!(
            storage
                .tokens
                .take_code(&code.code_hash)
                .await
                .must("take_code"),
            CodeRedemption::Redeemed(_)
        ),
        "revoke_family: a code of the revoked family can still be redeemed"
    );
    // Tokens inserted for the family afterwards (a racing redemption) are born revoked.
    let late_a = sample_access(&family, now() + 600);
    let late_r = sample_refresh(&family, now() + 3600);
    storage
        .tokens
        .insert_tokens(late_a.clone(), Some(late_r.clone()))
        .await
        .must("insert_tokens");
    assert!(
        storage
            .tokens
            .get_access_token(&late_a.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_family: an access token inserted into the family afterwards is not born revoked"
    );
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&late_r.token_hash, &family, now() + 1))
            .await
            .must("rotate_refresh_token"),
        Rotation::Unknown,
        "revoke_family: a refresh token inserted into the family afterwards rotates"
    );
    // Other families are untouched.
    assert!(
        !storage
            .tokens
            .get_access_token(&other_a.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_family: an access token of another family was revoked"
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&other_r.token_hash)
            .await
            .must("get_refresh_token")
            .expect("get_refresh_token: a stored record was not found")
            .state,
        RefreshTokenState::Active,
        "revoke_family: a refresh token of another family was revoked"
    );
}

/// `purge_expired` (tokens and interactions) MUST remove every code, access record, refresh record
/// and login transaction whose `expires_at` ≤ `now`, and only those.
pub async fn purge_removes_only_expired(storage: Storage) {
    let family = unique("fam");
    let t = now();
    let live_code = sample_code(&family, t + 60);
    let dead_code = sample_code(&family, t - 5);
    storage
        .tokens
        .insert_code(live_code.clone())
        .await
        .must("insert_code");
    storage
        .tokens
        .insert_code(dead_code.clone())
        .await
        .must("insert_code");
    let live_a = sample_access(&family, t + 600);
    let dead_a = sample_access(&family, t - 5);
    let live_r = sample_refresh(&family, t + 3600);
    let dead_r = sample_refresh(&family, t - 5);
    storage
        .tokens
        .insert_tokens(live_a.clone(), Some(live_r.clone()))
        .await
        .must("insert_tokens");
    storage
        .tokens
        .insert_tokens(dead_a.clone(), Some(dead_r.clone()))
        .await
        .must("insert_tokens");
    let live_tx = sample_transaction(t + 600);
    let dead_tx = sample_transaction(t - 5);
    storage
        .interactions
        .insert_transaction(live_tx.clone())
        .await
        .must("insert_transaction");
    storage
        .interactions
        .insert_transaction(dead_tx.clone())
        .await
        .must("insert_transaction");

    let counts = storage.tokens.purge_expired(t).await.must("purge_expired");
    assert!(
        counts.codes >= 1 && counts.access_tokens >= 1 && counts.refresh_tokens >= 1,
        "purge_expired: expired codes, access and refresh records were not all counted: {counts:?}"
    );
    assert!(
        storage
            .interactions
            .purge_expired(t)
            .await
            .must("purge_expired")
            >= 1,
        "purge_expired (interactions): an expired transaction was not counted"
    );

    assert_eq!(
        storage
            .tokens
            .take_code(&dead_code.code_hash)
            .await
            .must("take_code"),
        CodeRedemption::Unknown,
        "purge_expired: an expired code was kept"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&dead_a.jti)
            .await
            .must("get_access_token")
            .is_none(),
        "purge_expired: an expired access record was kept"
    );
    assert!(
        storage
            .tokens
            .get_refresh_token(&dead_r.token_hash)
            .await
            .must("get_refresh_token")
            .is_none(),
        "purge_expired: an expired refresh record was kept"
    );
    assert!(
        storage
            .interactions
            .get_transaction(&dead_tx.id_hash)
            .await
            .must("get_transaction")
            .is_none(),
        "purge_expired (interactions): an expired transaction was kept"
    );

    assert!(
        matches!(
            storage
                .tokens
                .take_code(&live_code.code_hash)
                .await
                .must("take_code"),
            CodeRedemption::Redeemed(_)
        ),
        "purge_expired: a live code was removed"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&live_a.jti)
            .await
            .must("get_access_token")
            .is_some(),
        "purge_expired: a live access record was removed"
    );
    assert!(
        storage
            .tokens
            .get_refresh_token(&live_r.token_hash)
            .await
            .must("get_refresh_token")
            .is_some(),
        "purge_expired: a live refresh record was removed"
    );
    assert!(
        storage
            .interactions
            .get_transaction(&live_tx.id_hash)
            .await
            .must("get_transaction")
            .is_some(),
        "purge_expired (interactions): a live transaction was removed"
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

/// `KeyStore`: `insert_key` MUST give `Conflict` on a duplicate `kid`; `activate_key` MUST
/// atomically make its key the only active one and set `retire_at` on the key it replaced; key
/// bytes MUST round-trip; `delete_key` MUST remove the key.
pub async fn keys_activate_one_at_a_time(storage: Storage) {
    let k1 = unique("kid");
    let k2 = unique("kid");
    storage
        .keys
        .insert_key(sample_key(&k1, false))
        .await
        .must("insert_key");
    match storage.keys.insert_key(sample_key(&k1, false)).await {
        Err(ProviderError::Conflict(_)) => {}
        other => panic!("insert_key: a duplicate kid did not give Conflict, got {other:?}"),
    }
    storage
        .keys
        .insert_key(sample_key(&k2, false))
        .await
        .must("insert_key");
    for kid in [&k1, &k2] {
        assert!(
            storage
                .keys
                .activate_key(kid, now() + 100)
                .await
                .must("activate_key"),
            "activate_key: activating a stored key did not return true"
        );
    }
    let keys = storage.keys.list_keys().await.must("list_keys");
    let active: Vec<_> = keys.iter().filter(|k| k.active).collect();
    assert_eq!(
        active.len(),
        1,
        "activate_key: {} keys are active after two activations, not exactly one",
        active.len()
    );
    assert_eq!(
        active[0].kid, k2,
        "activate_key: the last activated key is not the active one"
    );
    let old = keys
        .iter()
        .find(|k| k.kid == k1)
        .expect("list_keys: a stored key is missing from the list");
    assert!(
        old.retire_at.is_some(),
        "activate_key: the replaced key got no retire_at"
    );
    assert_eq!(
        old.private_key,
        vec![1, 2, 3, 4],
        "list_keys: the private key bytes did not round-trip"
    );
    assert!(
        storage.keys.delete_key(&k1).await.must("delete_key"),
        "delete_key: deleting a stored key did not return true"
    );
    assert!(
        storage
            .keys
            .list_keys()
            .await
            .must("list_keys")
            .iter()
            .all(|k| k.kid != k1),
        "delete_key: the deleted key is still listed"
    );
}

// ---------------------------------------------------------------------------------------------
// Interactions
// ---------------------------------------------------------------------------------------------

/// `InteractionStore`: transactions MUST round-trip; `set_transaction_user` MUST attach the user;
/// `take_transaction` MUST be atomic (of 16 concurrent calls exactly one gets `Some`); a consent MUST
/// be replaced by a newer one for the same (subject, client, resource), MUST NOT answer for another
/// client or resource, MUST NOT be returned once expired; `purge_expired` MUST remove expired
/// consents; `forget_consents` MUST remove a subject's consents and count them.
pub async fn transactions_and_consent(storage: Storage) {
    let tx = sample_transaction(now() + 600);
    storage
        .interactions
        .insert_transaction(tx.clone())
        .await
        .must("insert_transaction");
    assert_eq!(
        storage
            .interactions
            .get_transaction(&tx.id_hash)
            .await
            .must("get_transaction"),
        Some(tx.clone()),
        "get_transaction: did not return exactly the transaction insert_transaction stored"
    );
    let user = sample_user_identity("alice");
    assert!(
        storage
            .interactions
            .set_transaction_user(&tx.id_hash, user.clone())
            .await
            .must("set_transaction_user"),
        "set_transaction_user: a stored transaction did not give true"
    );
    let got = storage
        .interactions
        .get_transaction(&tx.id_hash)
        .await
        .must("get_transaction")
        .expect("get_transaction: a stored record was not found");
    assert_eq!(
        got.user,
        Some(user),
        "set_transaction_user: the user was not stored with the transaction"
    );

    const RACERS: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(RACERS));
    let mut tasks = Vec::new();
    for _ in 0..RACERS {
        let interactions = Arc::clone(&storage.interactions);
        let barrier = Arc::clone(&barrier);
        let h = tx.id_hash.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            interactions
                .take_transaction(&h)
                .await
                .must("take_transaction")
        }));
    }
    let mut winners = 0;
    for t in tasks {
        if joined(t).await.is_some() {
            winners += 1;
        }
    }
    assert_eq!(
        winners, 1,
        "take_transaction: a transaction was taken {winners} times under {RACERS} concurrent calls, not exactly once"
    );

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
        .must("remember_consent");
    assert_eq!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now())
            .await
            .must("get_consent"),
        Some(c1),
        "get_consent: did not return exactly the consent remember_consent stored"
    );
    let c2 = ConsentRecord {
        scopes: vec!["a".into(), "b".into()],
        ..sample_consent(&subject)
    };
    storage
        .interactions
        .remember_consent(c2.clone())
        .await
        .must("remember_consent");
    assert_eq!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now())
            .await
            .must("get_consent"),
        Some(c2),
        "remember_consent: a newer consent did not replace the older one"
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "other", RESOURCE, now())
            .await
            .must("get_consent")
            .is_none(),
        "get_consent: a consent for one client answered for another"
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "c", "http://127.0.0.1:9000/other", now())
            .await
            .must("get_consent")
            .is_none(),
        "get_consent: a consent for one resource answered for another"
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now() + 7200)
            .await
            .must("get_consent")
            .is_none(),
        "get_consent: an expired consent was returned"
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
        .must("remember_consent");
    assert!(
        storage
            .interactions
            .purge_expired(now())
            .await
            .must("purge_expired")
            >= 1,
        "purge_expired (interactions): an expired consent was not purged"
    );
    assert_eq!(
        storage
            .interactions
            .forget_consents(&subject)
            .await
            .must("forget_consents"),
        1,
        "forget_consents: did not count the subject's one remaining consent"
    );
    assert!(
        storage
            .interactions
            .get_consent(&subject, "c", RESOURCE, now())
            .await
            .must("get_consent")
            .is_none(),
        "forget_consents: a forgotten consent is still returned"
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

/// `UserStore` (when the backend keeps local accounts): usernames MUST be unique (`Conflict` on a
/// duplicate); records MUST round-trip by username and by subject; an unknown subject MUST give
/// `None`; `set_password_hash` MUST replace the hash; `list_users` MUST include stored users;
/// `delete_user` MUST remove the user.
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
    users.insert_user(rec.clone()).await.must("insert_user");
    match users
        .insert_user(UserRecord {
            subject: "other".into(),
            ..rec.clone()
        })
        .await
    {
        Err(ProviderError::Conflict(_)) => {}
        other => panic!("insert_user: a duplicate username did not give Conflict, got {other:?}"),
    }
    assert_eq!(
        users.get_user(&name).await.must("get_user"),
        Some(rec.clone()),
        "get_user: did not return exactly the user insert_user stored"
    );
    assert_eq!(
        users
            .get_user_by_subject(&rec.subject)
            .await
            .must("get_user_by_subject"),
        Some(rec.clone()),
        "get_user_by_subject: did not return exactly the user insert_user stored"
    );
    assert!(
        users
            .get_user_by_subject("no-such-subject")
            .await
            .must("get_user_by_subject")
            .is_none(),
        "get_user_by_subject: an unknown subject did not give None"
    );
    assert!(
        users
            .set_password_hash(&name, "$argon2id$v=19$two")
            .await
            .must("set_password_hash"),
        "set_password_hash: a stored user did not give true"
    );
    assert_eq!(
        users
            .get_user(&name)
            .await
            .must("get_user")
            .expect("get_user: a stored record was not found")
            .password_hash,
        "$argon2id$v=19$two",
        "set_password_hash: the new hash was not stored"
    );
    assert!(
        users
            .list_users()
            .await
            .must("list_users")
            .iter()
            .any(|u| u.username == name),
        "list_users: a stored user is missing from the list"
    );
    assert!(
        users.delete_user(&name).await.must("delete_user"),
        "delete_user: a stored user did not give true"
    );
    assert!(
        users.get_user(&name).await.must("get_user").is_none(),
        "delete_user: the deleted user is still returned by get_user"
    );
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

/// `begin_attempt` MUST be atomic per username: of 24 concurrent calls for one username exactly one
/// is `Admitted` while its lease is held, the others are `Busy` and count nothing; an expired lease
/// (a crashed server) MUST NOT hold the username; `end_attempt` MUST release the lease.
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
                throttle
                    .begin_attempt(&a, &policy)
                    .await
                    .must("begin_attempt")
            }));
        }
        let mut admitted = 0;
        for task in tasks {
            match joined(task).await {
                ThrottleDecision::Admitted => admitted += 1,
                ThrottleDecision::Busy => {}
                other => panic!(
                    "begin_attempt: a racing attempt was neither Admitted nor Busy: {other:?}"
                ),
            }
        }
        assert_eq!(
            admitted, 1,
            "begin_attempt: {admitted} of 24 concurrent calls for one username were admitted, not exactly one"
        );
    }
    // The lease is released by end_attempt, and runs out by itself.
    let a = attempt(&user, "10.0.0.200", t);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&a, &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Busy,
        "begin_attempt: a second check was admitted while the first one's lease is held"
    );
    let later = attempt(&user, "10.0.0.200", t + policy.in_flight_lease);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&later, &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "begin_attempt: an expired lease (a crashed server) still holds the username"
    );
    storage
        .throttle
        .end_attempt(&later, false, &policy)
        .await
        .must("end_attempt");
    assert_eq!(
        storage
            .throttle
            .begin_attempt(
                &attempt(&user, "10.0.0.201", t + policy.in_flight_lease),
                &policy
            )
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "end_attempt: the lease was not released"
    );
}

/// `begin_attempt` + `end_attempt`: of many tasks racing to guess through one address, exactly
/// `max_failures_per_address` checks MUST be admitted, never more; then `Refused` with
/// `retry_after` ≥ 1; a success from another address MUST NOT unlock the guessing address.
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
                match throttle
                    .begin_attempt(&a, &policy)
                    .await
                    .must("begin_attempt")
                {
                    ThrottleDecision::Admitted => {
                        admitted += 1;
                        throttle
                            .end_attempt(&a, false, &policy)
                            .await
                            .must("end_attempt");
                    }
                    ThrottleDecision::Busy => tokio::task::yield_now().await,
                    ThrottleDecision::Refused { retry_after } => {
                        assert!(
                            retry_after >= 1,
                            "begin_attempt: Refused with a retry_after below one second"
                        );
                        return admitted;
                    }
                }
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += joined(task).await;
    }
    assert_eq!(
        total, policy.max_failures_per_address,
        "begin_attempt: 16 racing guessers through one address were not admitted exactly max_failures_per_address times"
    );
    // Another address is not refused (the username's back-off is far away in this policy) …
    let elsewhere = attempt(&user, "198.51.100.1", t);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&elsewhere, &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "begin_attempt: another address was refused for the first address's failures"
    );
    // … and a success there does not unlock the guessing address.
    storage
        .throttle
        .end_attempt(&elsewhere, true, &policy)
        .await
        .must("end_attempt");
    assert!(
        matches!(
            storage
                .throttle
                .begin_attempt(&attempt(&user, "192.0.2.7", t), &policy)
                .await
                .must("begin_attempt"),
            ThrottleDecision::Refused { .. }
        ),
        "end_attempt: the user's own success elsewhere unlocked the guessing address"
    );
}

/// `begin_attempt`: after `backoff_after` failures the username's back-off MUST apply to every new
/// address, MUST spare an address that signed in before (`end_attempt` with success), and MUST
/// NOT affect other usernames.
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
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "begin_attempt: a fresh username was not admitted"
    );
    storage
        .throttle
        .end_attempt(&home, true, &policy)
        .await
        .must("end_attempt");
    for i in 0..3 {
        let a = attempt(&user, &format!("stranger-{i}"), t);
        assert_eq!(
            storage
                .throttle
                .begin_attempt(&a, &policy)
                .await
                .must("begin_attempt"),
            ThrottleDecision::Admitted,
            "begin_attempt: refused before backoff_after failures"
        );
        storage
            .throttle
            .end_attempt(&a, false, &policy)
            .await
            .must("end_attempt");
    }
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&user, "stranger-9", t), &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Refused { retry_after: 1 },
        "begin_attempt: after backoff_after failures a new address was not made to wait"
    );
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&user, "home", t), &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "begin_attempt: an address that signed in before was not spared the back-off"
    );
    // Another username is not affected at all.
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&unique("user"), "stranger-9", t), &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "begin_attempt: one username's back-off affected another username"
    );
}

/// `end_attempt` MUST date a failure when its check ended (its `now`), so a slow check does not
/// shorten the wait after it.
pub async fn throttle_dates_a_failure_when_its_check_ends(storage: Storage) {
    let policy = ThrottlePolicy {
        max_failures_per_address: 1,
        ..throttle_policy()
    };
    let user = unique("user");
    let t = now();
    let a = attempt(&user, "192.0.2.3", t);
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&a, &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "begin_attempt: a fresh username was not admitted"
    );
    let ended = attempt(&user, "192.0.2.3", t + 20);
    storage
        .throttle
        .end_attempt(&ended, false, &policy)
        .await
        .must("end_attempt");
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&user, "192.0.2.3", t + 20), &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Refused {
            retry_after: policy.failure_window
        },
        "end_attempt: the failure window did not run from the end of the failed check"
    );
}

/// `purge_expired` (throttle) MUST remove the counters that no longer affect any decision, and
/// only those.
pub async fn throttle_purge_removes_only_expired(storage: Storage) {
    let policy = throttle_policy();
    let (old, fresh) = (unique("user"), unique("user"));
    let t = now();
    let a = attempt(&old, "192.0.2.1", t - 10_000);
    storage
        .throttle
        .begin_attempt(&a, &policy)
        .await
        .must("begin_attempt");
    storage
        .throttle
        .end_attempt(&a, false, &policy)
        .await
        .must("end_attempt");
    for _ in 0..5 {
        let b = attempt(&fresh, "192.0.2.1", t);
        assert_eq!(
            storage
                .throttle
                .begin_attempt(&b, &policy)
                .await
                .must("begin_attempt"),
            ThrottleDecision::Admitted,
            "begin_attempt: refused before max_failures_per_address failures"
        );
        storage
            .throttle
            .end_attempt(&b, false, &policy)
            .await
            .must("end_attempt");
    }
    assert!(
        storage
            .throttle
            .purge_expired(t)
            .await
            .must("purge_expired")
            >= 2,
        "purge_expired (throttle): counters older than every window were not purged"
    );
    assert!(
        matches!(
            storage
                .throttle
                .begin_attempt(&attempt(&fresh, "192.0.2.1", t), &policy)
                .await
                .must("begin_attempt"),
            ThrottleDecision::Refused { .. }
        ),
        "purge_expired (throttle): a live counter was purged"
    );
}

/// `username_counters` MUST show one username's counters (its own, and each address's with
/// failures) without changing them; `clear_username` MUST clear that username's failures only, so
/// its next attempt is admitted while another username stays refused, and report what it cleared.
pub async fn throttle_unlock_clears_one_username(storage: Storage) {
    let policy = throttle_policy();
    let (locked, other) = (unique("user"), unique("user"));
    let t = now();
    for name in [&locked, &other] {
        for _ in 0..policy.max_failures_per_address {
            let a = attempt(name, "192.0.2.1", t);
            storage
                .throttle
                .begin_attempt(&a, &policy)
                .await
                .must("begin_attempt");
            storage
                .throttle
                .end_attempt(&a, false, &policy)
                .await
                .must("end_attempt");
        }
    }
    let refused = |d: ThrottleDecision| matches!(d, ThrottleDecision::Refused { .. });
    let counters = storage
        .throttle
        .username_counters(&locked)
        .await
        .must("username_counters");
    assert_eq!(
        counters.user.failures, policy.max_failures_per_address,
        "username_counters: the username's own counter is wrong: {counters:?}"
    );
    assert_eq!(
        counters
            .addresses
            .iter()
            .map(|(a, c)| (a.as_str(), c.failures))
            .collect::<Vec<_>>(),
        [("192.0.2.1", policy.max_failures_per_address)],
        "username_counters: the address counters are wrong"
    );
    assert!(
        policy.locked_until(&counters, t).is_some(),
        "the counters read back do not lock the username"
    );
    assert_eq!(
        storage
            .throttle
            .username_counters(&locked)
            .await
            .must("username_counters"),
        counters,
        "username_counters changed the counters"
    );
    assert!(
        storage
            .throttle
            .clear_username(&locked)
            .await
            .must("clear_username")
            >= 2,
        "clear_username: did not report the username's and the address's counters"
    );
    let cleared = storage
        .throttle
        .username_counters(&locked)
        .await
        .must("username_counters");
    assert!(
        cleared.user.failures == 0 && cleared.addresses.is_empty(),
        "clear_username left failures: {cleared:?}"
    );
    assert_eq!(
        storage
            .throttle
            .begin_attempt(&attempt(&locked, "192.0.2.1", t), &policy)
            .await
            .must("begin_attempt"),
        ThrottleDecision::Admitted,
        "clear_username: the unlocked username is still refused"
    );
    assert!(
        refused(
            storage
                .throttle
                .begin_attempt(&attempt(&other, "192.0.2.1", t), &policy)
                .await
                .must("begin_attempt")
        ),
        "clear_username: another username was unlocked too"
    );
}

// ---------------------------------------------------------------------------------------------
// Client approval, unused registrations, grants by user
// ---------------------------------------------------------------------------------------------

/// `touch_client` MUST only move a client's last use forward, succeed silently for an unknown id and
/// leave the client itself unchanged; `clients_last_used` MUST list used clients only; a deleted
/// client MUST no longer be listed.
pub async fn clients_last_used_moves_forward(storage: Storage) {
    let (used, unused) = (unique("used"), unique("unused"));
    for id in [&used, &unused] {
        storage
            .clients
            .insert_client(sample_client(id))
            .await
            .must("insert_client");
    }
    let t = now();
    let c = &storage.clients;
    let before = c.get_client(&used).await.must("get_client");
    c.touch_client(&used, t).await.must("touch_client");
    c.touch_client(&used, t - 100).await.must("touch_client");
    c.touch_client(&unique("nobody"), t)
        .await
        .must("touch_client (unknown id)");
    let last = c.clients_last_used().await.must("clients_last_used");
    assert_eq!(
        last.get(&used),
        Some(&t),
        "clients_last_used: the last use is wrong (an older touch moved it back?)"
    );
    assert!(
        !last.contains_key(&unused),
        "clients_last_used: lists a client never used"
    );
    assert_eq!(
        c.get_client(&used).await.must("get_client"),
        before,
        "touch_client changed the client record"
    );
    c.touch_client(&used, t + 60).await.must("touch_client");
    assert_eq!(
        c.clients_last_used()
            .await
            .must("clients_last_used")
            .get(&used),
        Some(&(t + 60))
    );
    c.delete_client(&used).await.must("delete_client");
    assert!(
        !c.clients_last_used()
            .await
            .must("clients_last_used")
            .contains_key(&used),
        "clients_last_used: lists a deleted client"
    );
}

/// `mark_client_approved` MUST keep the first approval and succeed silently for an unknown id;
/// `origin` and `resource_server` MUST round-trip; `purge_unused_clients` MUST delete only clients
/// registered (origin `Registration`) before the cut-off and never approved.
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
        storage
            .clients
            .insert_client(c.clone())
            .await
            .must("insert_client");
    }
    storage
        .clients
        .mark_client_approved(&approved.client_id, old + 5)
        .await
        .must("mark_client_approved");
    storage
        .clients
        .mark_client_approved(&approved.client_id, old + 50)
        .await
        .must("mark_client_approved");
    storage
        .clients
        .mark_client_approved("no-such-client", old)
        .await
        .must("mark_client_approved");
    let got = storage
        .clients
        .get_client(&approved.client_id)
        .await
        .must("get_client")
        .expect("get_client: a stored record was not found");
    assert_eq!(
        got.approved_at,
        Some(old + 5),
        "mark_client_approved: a later approval replaced the first one"
    );
    let got_admin = storage
        .clients
        .get_client(&admin.client_id)
        .await
        .must("get_client")
        .expect("get_client: a stored record was not found");
    assert_eq!(
        got_admin, admin,
        "get_client: origin and resource_server did not round-trip"
    );
    let purged = storage
        .clients
        .purge_unused_clients(now() - 100)
        .await
        .must("purge_unused_clients");
    assert!(
        purged >= 1,
        "purge_unused_clients: an old, never approved registration was not counted"
    );
    let exists = |id: String| {
        let clients = Arc::clone(&storage.clients);
        async move { clients.get_client(&id).await.must("get_client").is_some() }
    };
    assert!(
        !exists(unused.client_id.clone()).await,
        "purge_unused_clients: an old, never approved registration was kept"
    );
    assert!(
        exists(approved.client_id.clone()).await,
        "purge_unused_clients: an approved client was purged"
    );
    assert!(
        exists(admin.client_id.clone()).await,
        "purge_unused_clients: a client made by an administrator was purged"
    );
    assert!(
        exists(fresh.client_id.clone()).await,
        "purge_unused_clients: a client registered after the cut-off was purged"
    );
}

/// `list_grants` by subject MUST return the subject's live families only (with their expiry and
/// whether they are refreshable); `revoke_grants` by subject MUST revoke every family of the subject
/// with a code, access or refresh token, count them, remember them (a later insert is born
/// revoked), leave other subjects alone, and MUST refuse an empty filter.
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
        .must("insert_tokens");
    let mut code = sample_code(&pending, now() + 60);
    code.code_hash = hash("code");
    code.subject = alice.clone();
    storage
        .tokens
        .insert_code(code.clone())
        .await
        .must("insert_code");
    let mut b = sample_access(&theirs, now() + 600);
    b.subject = bob.clone();
    storage
        .tokens
        .insert_tokens(b.clone(), None)
        .await
        .must("insert_tokens");

    let filter = GrantFilter {
        subject: Some(alice.clone()),
        client_id: None,
    };
    let listed = storage
        .tokens
        .list_grants(&filter, now())
        .await
        .must("list_grants");
    assert_eq!(
        listed.len(),
        1,
        "list_grants: the subject's one live token family was not listed alone: {listed:?}"
    );
    assert_eq!(
        listed[0].family_id, mine,
        "list_grants: listed the wrong family"
    );
    assert_eq!(
        listed[0].subject, alice,
        "list_grants: listed the wrong subject"
    );
    assert!(
        listed[0].refreshable,
        "list_grants: a family with a live refresh token is not refreshable"
    );
    assert_eq!(
        listed[0].expires_at, r.expires_at,
        "list_grants: expires_at is not the latest expiry of the family's live tokens"
    );
    let revoked = storage
        .tokens
        .revoke_grants(&filter, now() + 7200)
        .await
        .must("revoke_grants");
    assert_eq!(
        revoked, 2,
        "revoke_grants: did not count the token family and the pending code's family"
    );
    assert!(
        storage
            .tokens
            .list_grants(&filter, now())
            .await
            .must("list_grants")
            .is_empty(),
        "revoke_grants: a revoked family is still listed as a live grant"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&a.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_grants: an access token of the subject is not revoked"
    );
    assert_eq!(
        storage
            .tokens
            .take_code(&code.code_hash)
            .await
            .must("take_code"),
        CodeRedemption::Replayed {
            family_id: pending.clone()
        },
        "revoke_grants: a pending code of the subject can still be redeemed"
    );
    // A racing insert into a revoked family is born revoked.
    let mut late = sample_access(&pending, now() + 600);
    late.subject = alice.clone();
    storage
        .tokens
        .insert_tokens(late.clone(), None)
        .await
        .must("insert_tokens");
    assert!(
        storage
            .tokens
            .get_access_token(&late.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_grants: a token inserted into a revoked family afterwards is not born revoked"
    );
    // Bob is untouched.
    assert!(
        !storage
            .tokens
            .get_access_token(&b.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_grants: another subject's access token was revoked"
    );
    assert!(
        storage
            .tokens
            .revoke_grants(&GrantFilter::default(), now())
            .await
            .is_err(),
        "revoke_grants: an empty filter was not refused (it would revoke everything)"
    );
}

/// `revoke_grants` by client MUST reach every family of that client (its pending codes, its access
/// tokens, its refresh tokens), count them, and MUST leave other clients' grants alone. (The core
/// calls it before `delete_client`; deleting a client itself revokes nothing in the store.)
pub async fn grants_are_revoked_by_client(storage: Storage) {
    let client = unique("client");
    let other_client = unique("client");
    let (with_code, with_tokens, theirs) = (unique("fam"), unique("fam"), unique("fam"));
    let mut code = sample_code(&with_code, now() + 60);
    code.client_id = client.clone();
    storage
        .tokens
        .insert_code(code.clone())
        .await
        .must("insert_code");
    let mut access = sample_access(&with_tokens, now() + 600);
    access.client_id = client.clone();
    let mut refresh = sample_refresh(&with_tokens, now() + 3600);
    refresh.client_id = client.clone();
    storage
        .tokens
        .insert_tokens(access.clone(), Some(refresh.clone()))
        .await
        .must("insert_tokens");
    let mut other_code = sample_code(&theirs, now() + 60);
    other_code.client_id = other_client.clone();
    storage
        .tokens
        .insert_code(other_code.clone())
        .await
        .must("insert_code");
    let mut other_access = sample_access(&theirs, now() + 600);
    other_access.client_id = other_client.clone();
    let mut other_refresh = sample_refresh(&theirs, now() + 3600);
    other_refresh.client_id = other_client.clone();
    storage
        .tokens
        .insert_tokens(other_access.clone(), Some(other_refresh.clone()))
        .await
        .must("insert_tokens");

    let filter = GrantFilter {
        subject: None,
        client_id: Some(client.clone()),
    };
    let revoked = storage
        .tokens
        .revoke_grants(&filter, now() + 7200)
        .await
        .must("revoke_grants");
    assert_eq!(
        revoked, 2,
        "revoke_grants: by client, did not count the client's two families (one with a pending code, one with tokens)"
    );
    assert!(
        storage
            .tokens
            .get_access_token(&access.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_grants: by client, the client's access token is not revoked"
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&refresh.token_hash)
            .await
            .must("get_refresh_token")
            .expect("get_refresh_token: a stored record was not found")
            .state,
        RefreshTokenState::Revoked,
        "revoke_grants: by client, the client's refresh token is not revoked"
    );
    assert_eq!(
        storage
            .tokens
            .rotate_refresh_token(rotate_request(&refresh.token_hash, &with_tokens, now() + 1))
            .await
            .must("rotate_refresh_token"),
        Rotation::Unknown,
        "revoke_grants: by client, the client's refresh token still rotates"
    );
    assert!(
        !matches!(
            storage
                .tokens
                .take_code(&code.code_hash)
                .await
                .must("take_code"),
            CodeRedemption::Redeemed(_)
        ),
        "revoke_grants: by client, the client's pending code can still be redeemed"
    );
    assert!(
        storage
            .tokens
            .list_grants(&filter, now())
            .await
            .must("list_grants")
            .is_empty(),
        "revoke_grants: by client, a revoked family is still listed as a live grant"
    );

    // The other client is untouched.
    assert!(
        !storage
            .tokens
            .get_access_token(&other_access.jti)
            .await
            .must("get_access_token")
            .expect("get_access_token: a stored record was not found")
            .revoked,
        "revoke_grants: by client, another client's access token was revoked"
    );
    assert_eq!(
        storage
            .tokens
            .get_refresh_token(&other_refresh.token_hash)
            .await
            .must("get_refresh_token")
            .expect("get_refresh_token: a stored record was not found")
            .state,
        RefreshTokenState::Active,
        "revoke_grants: by client, another client's refresh token was revoked"
    );
    assert!(
        matches!(
            storage
                .tokens
                .take_code(&other_code.code_hash)
                .await
                .must("take_code"),
            CodeRedemption::Redeemed(_)
        ),
        "revoke_grants: by client, another client's pending code can no longer be redeemed"
    );
}

// ---------------------------------------------------------------------------------------------
// Shared state: single-use claims and the document cache
// ---------------------------------------------------------------------------------------------

/// The storage's shared state, or `None` (and a note) for a backend that keeps none: the core then
/// uses one [`LocalSharedState`] per process, whose contracts are checked with the memory backend.
fn shared_part(storage: &Storage, check: &str) -> Option<Arc<dyn SharedStateStore>> {
    let shared = storage.shared.clone();
    if shared.is_none() {
        eprintln!("{check}: skipped, Storage::shared is None (state kept per process)");
    }
    shared
}

/// `claim_once` MUST be atomic across processes: of 16 concurrent claims of one key exactly one is
/// `true`, and the key stays claimed until it expires.
pub async fn shared_claims_have_one_winner(storage: Storage) {
    let Some(shared) = shared_part(&storage, "shared_claims_have_one_winner") else {
        return;
    };
    let t = now();
    // Several rounds, all callers released at once: a store that reads, then writes, lets two
    // through in at least one of them.
    for _ in 0..8 {
        let key = unique("cimd-jti");
        let barrier = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let shared = Arc::clone(&shared);
            let barrier = Arc::clone(&barrier);
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                shared.claim_once(&key, t + 300, t).await.must("claim_once")
            }));
        }
        let mut winners = 0;
        for task in tasks {
            if joined(task).await {
                winners += 1;
            }
        }
        assert!(
            winners == 1,
            "claim_once: {winners} of 16 concurrent claims of one key returned true, not exactly one"
        );
        assert!(
            !shared
                .claim_once(&key, t + 300, t + 299)
                .await
                .must("claim_once"),
            "claim_once: a key was claimed again before its record expired"
        );
    }
    let other = unique("cimd-jti");
    assert!(
        shared
            .claim_once(&other, t + 300, t)
            .await
            .must("claim_once"),
        "claim_once: a key never claimed was refused"
    );
}

/// An expired claim (`expires_at <= now`) MUST NOT block a new claim of its key; `purge_expired`
/// MUST remove expired claims and keep live ones.
pub async fn shared_expired_claims_can_be_claimed_again(storage: Storage) {
    let Some(shared) = shared_part(&storage, "shared_expired_claims_can_be_claimed_again") else {
        return;
    };
    let t = now();
    let key = unique("cimd-jti");
    assert!(shared.claim_once(&key, t + 10, t).await.must("claim_once"));
    assert!(
        !shared
            .claim_once(&key, t + 20, t + 9)
            .await
            .must("claim_once"),
        "claim_once: a key was claimed again one second before its record expired"
    );
    assert!(
        shared
            .claim_once(&key, t + 20, t + 10)
            .await
            .must("claim_once"),
        "claim_once: an expired record (expires_at <= now) still blocks its key"
    );
    assert!(
        !shared
            .claim_once(&key, t + 30, t + 15)
            .await
            .must("claim_once"),
        "claim_once: the renewed claim does not hold until its new expiry"
    );

    // The purge: an expired claim goes (claiming it again at an earlier `now` proves the record is
    // gone), a live one stays.
    let gone = unique("cimd-jti");
    let kept = unique("cimd-jti");
    assert!(shared.claim_once(&gone, t + 5, t).await.must("claim_once"));
    assert!(
        shared
            .claim_once(&kept, t + 100, t)
            .await
            .must("claim_once")
    );
    let removed = shared.purge_expired(t + 5).await.must("purge_expired");
    assert!(
        removed >= 1,
        "purge_expired: an expired claim was not counted ({removed})"
    );
    assert!(
        shared.claim_once(&gone, t + 5, t).await.must("claim_once"),
        "purge_expired: an expired claim was kept"
    );
    assert!(
        !shared
            .claim_once(&kept, t + 100, t + 6)
            .await
            .must("claim_once"),
        "purge_expired: a live claim was removed"
    );
}

/// `get_document` MUST NOT return an entry whose `expires_at <= now`; `put_document` replaces (the
/// last writer wins); `purge_expired` removes expired documents and keeps live ones.
pub async fn shared_cache_never_returns_expired_entries(storage: Storage) {
    let Some(shared) = shared_part(&storage, "shared_cache_never_returns_expired_entries") else {
        return;
    };
    let t = now();
    let url = format!("https://client.example/{}.json", unique("doc"));
    assert!(
        shared
            .get_document(&url, t)
            .await
            .must("get_document")
            .is_none(),
        "get_document: an unknown URL returned a document"
    );
    let first = CachedDocument {
        body: br#"{"client_id":"first"}"#.to_vec(),
        expires_at: t + 10,
    };
    shared.put_document(&url, &first).await.must("put_document");
    assert_eq!(
        shared.get_document(&url, t + 9).await.must("get_document"),
        Some(first.clone()),
        "get_document: a fresh entry did not come back as stored"
    );
    assert!(
        shared
            .get_document(&url, t + 10)
            .await
            .must("get_document")
            .is_none(),
        "get_document: returned an entry at its expires_at"
    );
    assert!(
        shared
            .get_document(&url, t + 1000)
            .await
            .must("get_document")
            .is_none(),
        "get_document: returned an expired entry"
    );
    let second = CachedDocument {
        body: vec![b'x'; 5 * 1024],
        expires_at: t + 60,
    };
    shared
        .put_document(&url, &second)
        .await
        .must("put_document");
    assert_eq!(
        shared.get_document(&url, t).await.must("get_document"),
        Some(second.clone()),
        "put_document: the last writer did not win"
    );

    // The purge: the expired document goes (read back at an earlier `now` to tell), the live stays.
    let old = format!("https://client.example/{}.json", unique("doc"));
    shared
        .put_document(
            &old,
            &CachedDocument {
                body: b"{}".to_vec(),
                expires_at: t + 5,
            },
        )
        .await
        .must("put_document");
    shared.purge_expired(t + 5).await.must("purge_expired");
    assert!(
        shared
            .get_document(&old, t)
            .await
            .must("get_document")
            .is_none(),
        "purge_expired: an expired document was kept"
    );
    assert_eq!(
        shared.get_document(&url, t + 6).await.must("get_document"),
        Some(second),
        "purge_expired: a live document was removed"
    );
}

/// Generates one `#[tokio::test]` per storage check. `$make` is an async expression evaluating to
/// a fresh [`Storage`]; it is evaluated once per test, and checks use unique ids, so one database
/// may serve them all. With `optional:`, `$make` evaluates to `Option<Storage>` and `None` skips
/// (for backends whose service may be absent; `$make` itself must panic instead when the test run
/// declared the service required).
///
/// A plugin runs the kit from its own tests with two dev-dependencies and one macro call. In its
/// `Cargo.toml`:
///
/// ```toml
/// [dev-dependencies]
/// mcp-oauth-provider = { version = "0.1", features = ["testkit"] }
/// tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
/// ```
///
/// and in `tests/conformance.rs` (or a `#[cfg(test)] mod` of the crate):
///
/// ```ignore
/// mcp_oauth_provider::storage_conformance_tests!(async {
///     let store = std::sync::Arc::new(my_backend::Store::open_for_tests().await);
///     mcp_oauth_provider::Storage::from_one(store)
/// });
/// ```
///
/// Each check is also a public `async fn(Storage)` in this module, for a plugin that wants to run
/// some of them (or wrap one, as the memory backend's test of a deliberately broken store does).
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
            rotation_racing_revocation_neither_fails_nor_survives,
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
            throttle_unlock_clears_one_username,
            clients_last_used_moves_forward,
            unused_registrations_are_purged,
            grants_are_listed_and_revoked_by_user,
            grants_are_revoked_by_client,
            shared_claims_have_one_winner,
            shared_expired_claims_can_be_claimed_again,
            shared_cache_never_returns_expired_entries,
        );
    };
    (@optional $make:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let storage: Option<$crate::Storage> = $make.await;
                match storage {
                    Some(storage) => $crate::testkit::$check(storage).await,
                    None => ::std::eprintln!("skipped {}: backend not available", ::core::stringify!($check)),
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
            rotation_racing_revocation_neither_fails_nor_survives,
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
            throttle_unlock_clears_one_username,
            clients_last_used_moves_forward,
            unused_registrations_are_purged,
            grants_are_listed_and_revoked_by_user,
            grants_are_revoked_by_client,
            shared_claims_have_one_winner,
            shared_expired_claims_can_be_claimed_again,
            shared_cache_never_returns_expired_entries,
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
