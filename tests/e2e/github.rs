//! Sign-in through a GitHub-style upstream (`[upstreams.<name>] kind = "github"`, and the generic
//! `kind = "oauth2"`) against the small GitHub in [`crate::upstream_github`]: the whole flow to our
//! token with the org/team-mapped scopes, each refusal (outside the org list, the user endpoint
//! failing, the token request refused), and the client secret and GitHub's token never in a page,
//! a log line or our tokens.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::federated::{AtCallback, approve_and_exchange, nothing_issued, refusal_page};
use crate::mcp::McpClient;
use crate::processes::TempDir;
use crate::support::*;
use crate::upstream_github::{FakeGitHub, GH_CLIENT_ID, GH_CLIENT_SECRET};

/// `[upstreams.github]` for `gh`, the secret read from a file in `dir`, with `more` keys.
pub fn github_toml(gh: &FakeGitHub, dir: &TempDir, more: &str) -> String {
    let file = dir.path().join("github-secret");
    std::fs::write(&file, format!("{GH_CLIENT_SECRET}\n")).unwrap();
    format!(
        r#"[upstreams.github]
kind = "github"
api_url = "{base}"
client_id = "{GH_CLIENT_ID}"
client_secret_file = "{file}"
allowed_orgs = ["acme"]
default_scopes = ["mcp:tools"]
scope_map = [{{ group = "acme/admins", scopes = ["mcp:admin"] }}]
{more}
"#,
        base = gh.base,
        file = file.display()
    )
}

/// A server with local accounts and the GitHub upstream.
async fn start_github(gh: &FakeGitHub, dir: &TempDir, more: &str) -> TestServer {
    start_with(Options {
        extra_toml: Some(github_toml(gh, dir, more)),
        ..Default::default()
    })
    .await
}

/// `/authorize` → login page → the `name` button → the upstream → its redirect to our callback.
pub async fn to_upstream_callback(
    s: &TestServer,
    name: &str,
    upstream_base: &str,
    params: &[(String, String)],
) -> AtCallback {
    let browser = browser();
    let (tx, csrf, _) = s.start_login(&browser, params).await;
    let r = browser
        .post(s.url(&format!("/login/upstream/{name}")))
        .form(&[("tx", tx.as_str()), ("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{:?}", r.text().await);
    let upstream = location(&r);
    assert!(upstream.starts_with(upstream_base), "{upstream}");
    let r = browser.get(&upstream).send().await.unwrap();
    assert!(r.status().is_redirection(), "{:?}", r.text().await);
    let callback = location(&r);
    assert!(
        callback.starts_with(&s.url(&format!("/login/callback/{name}?"))),
        "{callback}"
    );
    AtCallback {
        browser,
        tx,
        csrf,
        callback,
    }
}

async fn whoami(s: &TestServer, token: &str) -> Value {
    let mut mcp = McpClient::new(&s.resource, Some(token));
    mcp.initialize().await.unwrap();
    mcp.call("whoami", json!({})).await.unwrap()["structuredContent"].clone()
}

#[tokio::test]
async fn github_sign_in_maps_teams_to_scopes_and_keeps_secrets_out() {
    let gh = FakeGitHub::start().await;
    let dir = TempDir::new("mcp-oauth-github");
    let s = start_github(&gh, &dir, "").await;
    let client_id = s.register_public().await;
    let params = with(
        &s.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let b = browser();
    let (_, _, html) = s.start_login(&b, &params).await;
    assert!(html.contains("Sign in with GitHub"), "{html}");
    assert!(
        html.contains("type=\"password\""),
        "local accounts stay: {html}"
    );

    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let asked = gh.authorize_requests().pop().unwrap();
    assert_eq!(asked["redirect_uri"], s.url("/login/callback/github"));
    assert_eq!(
        asked["scope"], "read:user read:org",
        "read:org for the org list"
    );
    assert_eq!(asked["code_challenge"].len(), 43);
    assert!(asked["state"].len() >= 43);
    assert!(!asked.contains_key("client_secret"));

    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Allow access?") && html.contains("The Octocat"),
        "{html}"
    );
    assert_eq!(gh.authenticated_token_requests(), 1, "the secret was sent");
    let tokens = approve_and_exchange(&s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
    let who = whoami(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        who["subject"], "github:583231",
        "GitHub's stable numeric id"
    );
    assert_eq!(who["issuer"], s.base, "our token, from our issuer");

    // In the org but not the team: the default scope only.
    gh.set(|b| b.teams.clear());
    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tokens = approve_and_exchange(&s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools");

    // Neither the client secret nor any GitHub token reached a log line or our tokens.
    let log = captured_log();
    assert!(!log.contains(GH_CLIENT_SECRET), "the secret was logged");
    for t in gh.issued() {
        assert!(!log.contains(&t), "GitHub's token was logged");
        assert!(!tokens.to_string().contains(&t), "token passthrough");
    }
}

#[tokio::test]
async fn github_refusals_are_pages_and_issue_nothing() {
    let gh = FakeGitHub::start().await;
    let dir = TempDir::new("mcp-oauth-github-refusals");
    let s = start_github(&gh, &dir, "").await;
    let client_id = s.register_public().await;
    let params = s.auth_params(&client_id);

    // Outside the org list.
    gh.set(|b| {
        b.orgs = vec!["elsewhere".into()];
        b.teams = vec![("elsewhere".into(), "admins".into())];
    });
    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(html.contains("not allowed to sign in here"), "{html}");
    nothing_issued(&s, &at).await;

    // The user endpoint refuses the token.
    gh.set(|b| {
        *b = Default::default();
        b.user_status = Some(401);
    });
    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(html.contains("refused to tell who signed in"), "{html}");
    nothing_issued(&s, &at).await;

    // The user endpoint is down: "unavailable", not "refused".
    gh.set(|b| b.user_status = Some(502));
    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refusal_page(r).await.contains("cannot be reached"));
    nothing_issued(&s, &at).await;

    // The org list cannot be read (no read:org granted, say).
    gh.set(|b| {
        b.user_status = None;
        b.orgs_status = Some(403);
    });
    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(refusal_page(r).await.contains("read:org"));
    nothing_issued(&s, &at).await;

    // The token request refused (GitHub says so with HTTP 200).
    gh.set(|b| {
        b.orgs_status = None;
        b.token_error = Some("bad_verification_code".into());
    });
    let at = to_upstream_callback(&s, "github", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = refusal_page(r).await;
    assert!(
        html.contains("refused to redeem the sign-in (bad_verification_code)"),
        "{html}"
    );
    nothing_issued(&s, &at).await;

    // No page and no log line showed the secret.
    assert!(!captured_log().contains(GH_CLIENT_SECRET));
    assert!(!html.contains(GH_CLIENT_SECRET));
}

#[tokio::test]
async fn a_generic_oauth2_upstream_reads_the_user_by_json_paths() {
    // The fake GitHub's endpoints, configured by hand as `kind = "oauth2"`: no org API, groups
    // from nowhere, the subject and names from the paths given.
    let gh = FakeGitHub::start().await;
    gh.set(|b| {
        b.user = json!({"data": {"uid": "u-7", "handle": "seven", "roles": ["ops"]}});
    });
    let dir = TempDir::new("mcp-oauth-oauth2");
    let file = dir.path().join("secret");
    std::fs::write(&file, GH_CLIENT_SECRET).unwrap();
    let toml = format!(
        r#"[upstreams.corp]
kind = "oauth2"
label = "Corp Login"
authorization_endpoint = "{b}/login/oauth/authorize"
token_endpoint = "{b}/login/oauth/access_token"
userinfo_url = "{b}/user"
token_endpoint_auth_method = "client_secret_post"
client_id = "{GH_CLIENT_ID}"
client_secret_file = "{f}"
scopes = ["profile"]
subject_path = "data.uid"
username_path = "data.handle"
groups_path = "data.roles"
allowed_groups = ["ops"]
scope_map = [{{ group = "ops", scopes = ["mcp:tools"] }}]
"#,
        b = gh.base,
        f = file.display()
    );
    let s = start_with(Options {
        extra_toml: Some(toml),
        ..Default::default()
    })
    .await;
    let client_id = s.register_public().await;
    let params = s.auth_params(&client_id);
    let at = to_upstream_callback(&s, "corp", &gh.base, &params).await;
    assert_eq!(gh.authorize_requests().pop().unwrap()["scope"], "profile");
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    let tokens = approve_and_exchange(&s, &at, &client_id).await;
    assert_eq!(tokens["scope"], "mcp:tools");
    let who = whoami(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(who["subject"], "corp:u-7");

    // Not in the allowed group.
    gh.set(|b| b.user = json!({"data": {"uid": "u-8", "roles": ["guests"]}}));
    let at = to_upstream_callback(&s, "corp", &gh.base, &params).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert!(
        refusal_page(r)
            .await
            .contains("not allowed to sign in here")
    );
    nothing_issued(&s, &at).await;
}
