//! Attack: a user an upstream admitted keeps refreshing after the operator stopped admitting them
//! (removed their org from `allowed_orgs`, their domain from `allowed_email_domains`, their group
//! from the `scope_map`). At every refresh the user must be judged again against the *current*
//! configuration, with what the upstream told us at their last sign-in; a user no longer admitted
//! gets `invalid_grant` and every grant of theirs ends, as after `users delete`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::github::github_toml;
use crate::mixed_upstreams::{company_toml, sqlite_storage, upstream_tokens};
use crate::processes::TempDir;
use crate::support::*;
use crate::upstream_github::FakeGitHub;
use crate::upstream_op::FakeOp;

async fn refresh_status(s: &TestServer, client_id: &str, t: &Value) -> (StatusCode, String) {
    let r = s
        .refresh(client_id, t["refresh_token"].as_str().unwrap())
        .await;
    if r.status() == StatusCode::OK {
        (StatusCode::OK, String::new())
    } else {
        error_of(r).await
    }
}

#[tokio::test]
async fn attack_upstream_user_no_longer_admitted_keeps_refreshing() {
    let op = FakeOp::start().await;
    op.set(|b| b.user = crate::federated::ann());
    let gh = FakeGitHub::start().await;
    let dir = TempDir::new("mcp-oauth-recheck");
    let data = TempDir::new("mcp-oauth-recheck-data");
    let upstreams = |github_more: &str, company: String| {
        format!("{company}\n{}", github_toml(&gh, &dir, github_more))
    };
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(upstreams("", company_toml(&op, &dir))),
        ..Default::default()
    })
    .await;
    let port = s.port();
    let client_id = s.register_public().await;
    let params = with(
        &s.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    // octocat: in org acme and team acme/admins (→ mcp:admin); ann: a verified example.com e-mail.
    let sign_in = |name: &'static str, base: String| {
        let (s, params, client_id) = (&s, params.clone(), client_id.clone());
        async move {
            let at = crate::github::to_upstream_callback(s, name, &base, &params).await;
            let r = at.browser.get(&at.callback).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
            crate::federated::approve_and_exchange(s, &at, &client_id).await
        }
    };
    let octocat = sign_in("github", gh.base.clone()).await;
    assert_eq!(octocat["scope"], "mcp:tools mcp:admin");
    let octocat_2 = sign_in("github", gh.base.clone()).await;
    let ann = upstream_tokens(&s, "company", &op.base, &client_id).await;
    s.stop().await;

    // The operator drops acme/admins from the scope map: octocat may no longer grant mcp:admin.
    let no_admin_map = "scope_map = [{ group = \"acme/other\", scopes = [\"mcp:admin\"] }]";
    let github_no_admin = github_toml(&gh, &dir, "").replace(
        "scope_map = [{ group = \"acme/admins\", scopes = [\"mcp:admin\"] }]",
        no_admin_map,
    );
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(format!("{}\n{github_no_admin}", company_toml(&op, &dir))),
        port: Some(port),
        ..Default::default()
    })
    .await;
    let (status, error) = refresh_status(&s, &client_id, &octocat).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant"),
        "a grant of mcp:admin outlived the scope map that allowed it"
    );
    s.stop().await;

    // The operator narrows the allow-lists: acme is out, and only example.org e-mails.
    let company_narrowed =
        company_toml(&op, &dir).replace("[\"example.com\"]", "[\"example.org\"]");
    let github_narrowed = github_toml(&gh, &dir, "").replace("[\"acme\"]", "[\"other-org\"]");
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(format!("{company_narrowed}\n{github_narrowed}")),
        port: Some(port),
        ..Default::default()
    })
    .await;
    for (who, t) in [("octocat", &octocat_2), ("ann", &ann)] {
        let (status, error) = refresh_status(&s, &client_id, t).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_grant"),
            "{who}, no longer admitted, refreshed anyway"
        );
        let introspected = s.introspect(t["access_token"].as_str().unwrap()).await;
        assert_eq!(introspected["active"], false, "{who}: {introspected}");
    }
}

#[tokio::test]
async fn upstream_users_still_admitted_keep_refreshing() {
    let gh = FakeGitHub::start().await;
    let dir = TempDir::new("mcp-oauth-recheck-ok");
    let data = TempDir::new("mcp-oauth-recheck-ok-data");
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(github_toml(&gh, &dir, "")),
        ..Default::default()
    })
    .await;
    let port = s.port();
    let client_id = s.register_public().await;
    let t = upstream_tokens(&s, "github", &gh.base, &client_id).await;
    s.stop().await;
    // A restart with another org added: octocat (acme) is still in.
    let widened = github_toml(&gh, &dir, "").replace("[\"acme\"]", "[\"acme\", \"more\"]");
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(widened),
        port: Some(port),
        ..Default::default()
    })
    .await;
    assert_eq!(refresh_status(&s, &client_id, &t).await.0, StatusCode::OK);
}
