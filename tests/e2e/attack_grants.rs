//! Issue 8 §3 attacks: grants end with their user (deletion, password change), a refresh re-checks
//! the user, and every grant has an absolute lifetime. Issue 8 §6: the refresh grace window never
//! forks a grant.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::mcp::McpClient;
use crate::processes::{TempDir, run_cli};
use crate::support::*;

/// A server on SQLite in `dir`, and the same settings as a config file for the CLI.
pub async fn sqlite_server(
    dir: &TempDir,
    env: Vec<(&'static str, String)>,
) -> (TestServer, std::path::PathBuf) {
    let storage = format!("kind = \"sqlite\"\ndata_dir = \"{}\"", dir.path().display());
    let s = start_with(Options {
        storage: Some(storage.clone()),
        env,
        ..Default::default()
    })
    .await;
    let cfg = dir.path().join("cli.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nissuer = \"{base}\"\n\n[storage]\n{storage}\n\n\
             [[resources]]\nuri = \"{res}\"\nname = \"Test\"\nscopes = [\"mcp:tools\", \"mcp:admin\"]\n",
            port = s.port(),
            base = s.base,
            res = s.resource
        ),
    )
    .unwrap();
    (s, cfg)
}

/// Tokens for `alice` through the browser flow: (client_id, access, refresh).
async fn alice_grant(s: &TestServer) -> (String, String, String) {
    let client = s.register_public().await;
    let code = s.obtain_code(&client).await;
    let r = s.exchange(&client, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    (
        client,
        v["access_token"].as_str().unwrap().to_string(),
        v["refresh_token"].as_str().unwrap().to_string(),
    )
}

async fn assert_grant_is_dead(
    s: &TestServer,
    client: &str,
    access: &str,
    refresh: &str,
    why: &str,
) {
    let r = s.refresh(client, refresh).await;
    let (status, err) = error_of(r).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "{why}: the refresh token still works"
    );
    let intro = introspect_as_resource_server(s, access).await;
    assert_eq!(
        intro["active"], false,
        "{why}: the access token is still active: {intro}"
    );
    let mut mcp = McpClient::new(&s.resource, Some(access));
    assert!(
        mcp.initialize().await.is_err(),
        "{why}: the access token still calls /mcp"
    );
}

#[tokio::test]
async fn attack_deleted_user_keeps_their_grants() {
    let dir = TempDir::new("mcp-oauth-attack-delete");
    let (s, cfg) = sqlite_server(&dir, vec![]).await;
    let (client, access, refresh) = alice_grant(&s).await;
    let (ok, _, err) = run_cli(Some(&cfg), &["users", "delete", USER], &[], None).await;
    assert!(ok, "{err}");
    assert_grant_is_dead(&s, &client, &access, &refresh, "after `users delete`").await;
}

#[tokio::test]
async fn attack_password_change_keeps_old_grants() {
    let dir = TempDir::new("mcp-oauth-attack-passwd");
    let (s, cfg) = sqlite_server(&dir, vec![]).await;
    let (client, access, refresh) = alice_grant(&s).await;
    let (ok, _, err) = run_cli(
        Some(&cfg),
        &["users", "passwd", USER, "--password-stdin"],
        &[],
        Some("a brand new password\n"),
    )
    .await;
    assert!(ok, "{err}");
    assert_grant_is_dead(&s, &client, &access, &refresh, "after `users passwd`").await;
}

/// A refresh re-checks the user: an account removed from the store directly (another instance, a
/// plugin, a database admin) ends the grant at its next refresh.
#[tokio::test]
async fn attack_refresh_for_a_user_that_no_longer_exists() {
    let s = start().await;
    let (client, _access, refresh) = alice_grant(&s).await;
    assert!(
        s.state
            .provider
            .user_store()
            .unwrap()
            .delete_user(USER)
            .await
            .unwrap()
    );
    let (status, err) = error_of(s.refresh(&client, &refresh).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
}

/// Rotation does not restart the clock: after `max_grant_lifetime` the user signs in again.
#[tokio::test]
async fn attack_grant_lives_forever_by_rotation() {
    let s = start_with(Options {
        env: vec![
            ("MCP_OAUTH__TOKENS__MAX_GRANT_LIFETIME", "3s".into()),
            ("MCP_OAUTH__TOKENS__ACCESS_TOKEN_TTL", "1s".into()),
        ],
        ..Default::default()
    })
    .await;
    let (client, _access, mut refresh) = alice_grant(&s).await;
    let started = std::time::Instant::now();
    let mut last = StatusCode::OK;
    while started.elapsed() < std::time::Duration::from_secs(5) {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let r = s.refresh(&client, &refresh).await;
        last = r.status();
        if last != StatusCode::OK {
            break;
        }
        refresh = r.json::<Value>().await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
    }
    assert_eq!(
        last,
        StatusCode::BAD_REQUEST,
        "the grant outlived max_grant_lifetime"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}

/// `grants list` shows a user's grants without token values; `grants revoke --user` ends them.
#[tokio::test]
async fn attack_no_way_to_end_a_users_grants() {
    let dir = TempDir::new("mcp-oauth-attack-grants-cli");
    let (s, cfg) = sqlite_server(&dir, vec![]).await;
    let (client, access, refresh) = alice_grant(&s).await;
    let (ok, out, err) = run_cli(Some(&cfg), &["grants", "list", "--user", USER], &[], None).await;
    assert!(ok, "{err}");
    assert!(out.contains(&client), "{out}");
    assert!(
        !out.contains(&refresh) && !out.contains(&access),
        "no token values: {out}"
    );
    let (ok, out, err) =
        run_cli(Some(&cfg), &["grants", "revoke", "--user", USER], &[], None).await;
    assert!(ok, "{out} {err}");
    assert_grant_is_dead(
        &s,
        &client,
        &access,
        &refresh,
        "after `grants revoke --user`",
    )
    .await;
}

/// §6: replaying a just-rotated refresh token inside the grace window returns the same successor,
/// never a new independent one; a family never has two live branches.
#[tokio::test]
async fn attack_grace_window_forks_the_grant() {
    let s = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__REFRESH_REUSE_GRACE", "30s".into())],
        ..Default::default()
    })
    .await;
    let (client, _access, refresh) = alice_grant(&s).await;
    let mut successors = Vec::new();
    for _ in 0..5 {
        let r = s.refresh(&client, &refresh).await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "a replay inside the window is answered"
        );
        let v: Value = r.json().await.unwrap();
        successors.push(v["refresh_token"].as_str().unwrap().to_string());
    }
    let first = successors[0].clone();
    assert!(
        successors.iter().all(|s| *s == first),
        "replays inside the grace window minted {} different successors",
        successors
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    // The one live branch keeps working.
    let r = s.refresh(&client, &first).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// §6: a replay after the window revokes the family. The window is 2 s, not 1 s: with 1 s the
/// window's start `t - grace` and a wrong `t / grace` coincide (token.rs `reuse_grace_since`).
#[tokio::test]
async fn attack_replay_after_grace_window_is_detected() {
    let s = start_with(Options {
        env: vec![("MCP_OAUTH__TOKENS__REFRESH_REUSE_GRACE", "2s".into())],
        ..Default::default()
    })
    .await;
    let (client, _access, refresh) = alice_grant(&s).await;
    let r = s.refresh(&client, &refresh).await;
    let successor = r.json::<Value>().await.unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let (status, err) = error_of(s.refresh(&client, &refresh).await).await;
    assert_eq!(
        (status, err.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    let (status, _) = error_of(s.refresh(&client, &successor).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the family was revoked");
    let _ = json!({});
}

/// `grants list --client` shows one client's grants; `grants revoke --id` ends exactly that grant
/// and `grants revoke --client` every grant of a client.
#[tokio::test]
async fn grants_are_revoked_by_id_and_by_client() {
    let dir = TempDir::new("mcp-oauth-grants-by-client");
    let (s, cfg) = sqlite_server(&dir, vec![]).await;
    let (first, first_access, first_refresh) = alice_grant(&s).await;
    let (second, second_access, second_refresh) = alice_grant(&s).await;
    let (ok, out, err) = run_cli(
        Some(&cfg),
        &["grants", "list", "--client", &first],
        &[],
        None,
    )
    .await;
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "one grant of that client: {out}");
    assert!(!out.contains(&second), "{out}");
    let id = lines[0].split('\t').next().unwrap();
    let (ok, out, err) = run_cli(Some(&cfg), &["grants", "revoke", "--id", id], &[], None).await;
    assert!(ok, "{out} {err}");
    assert_grant_is_dead(
        &s,
        &first,
        &first_access,
        &first_refresh,
        "after `grants revoke --id`",
    )
    .await;
    assert_eq!(
        s.refresh(&second, &second_refresh).await.status(),
        StatusCode::OK,
        "the other grant lives on"
    );
    let (ok, out, err) = run_cli(
        Some(&cfg),
        &["grants", "revoke", "--client", &second],
        &[],
        None,
    )
    .await;
    assert!(ok && out.contains("revoked 1 grant"), "{out} {err}");
    let intro = introspect_as_resource_server(&s, &second_access).await;
    assert_eq!(intro["active"], false, "{intro}");
}

/// Issue 10: a store only stores, so deleting a client no longer revokes anything by itself; the
/// core must end the client's grants. Its access token must stop working at once (introspection and
/// /mcp), and its refresh token must not bring it back.
#[tokio::test]
async fn attack_deleted_client_keeps_its_tokens() {
    let dir = TempDir::new("mcp-oauth-attack-delete-client");
    let (s, cfg) = sqlite_server(&dir, vec![]).await;
    let (client, access, refresh) = alice_grant(&s).await;
    let (ok, out, err) = run_cli(Some(&cfg), &["clients", "delete", &client], &[], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("revoked its 1 grant(s)"), "{out}");
    let intro = introspect_as_resource_server(&s, &access).await;
    assert_eq!(
        intro["active"], false,
        "after `clients delete` the access token is still active: {intro}"
    );
    let mut mcp = McpClient::new(&s.resource, Some(&access));
    assert!(
        mcp.initialize().await.is_err(),
        "after `clients delete` the access token still calls /mcp"
    );
    let r = s.refresh(&client, &refresh).await;
    assert_ne!(r.status(), StatusCode::OK, "the refresh token still works");
}
