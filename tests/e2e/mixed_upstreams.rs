//! Several upstreams at once beside local accounts (`[users] kind = "local"` with
//! `[upstreams.company] kind = "oidc"` and `[upstreams.github] kind = "github"`): the login page
//! offers all three ways, each signs in, an answer arriving at the other upstream's callback is
//! refused (mix-up, RFC 9700 §4.4), refreshing an upstream user's grant works while the upstream is
//! configured and ends once it is removed, and the configuration errors name what is wrong.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::federated::{AtCallback, ann, approve_and_exchange, nothing_issued, refusal_page};
use crate::github::{github_toml, to_upstream_callback};
use crate::mcp::McpClient;
use crate::processes::{TempDir, run_cli};
use crate::support::*;
use crate::upstream_github::FakeGitHub;
use crate::upstream_op::{CLIENT_ID, CLIENT_SECRET, FakeOp};

/// `[upstreams.company]` for `op`, the secret in a file in `dir`.
pub fn company_toml(op: &FakeOp, dir: &TempDir) -> String {
    let file = dir.path().join("company-secret");
    std::fs::write(&file, CLIENT_SECRET).unwrap();
    format!(
        r#"[upstreams.company]
kind = "oidc"
label = "Company SSO"
issuer = "{issuer}"
client_id = "{CLIENT_ID}"
client_secret_file = "{file}"
allowed_email_domains = ["example.com"]
"#,
        issuer = op.base,
        file = file.display()
    )
}

struct Mixed {
    op: FakeOp,
    gh: FakeGitHub,
    dir: TempDir,
}

impl Mixed {
    async fn start() -> Self {
        let op = FakeOp::start().await;
        op.set(|b| b.user = ann());
        Self {
            op,
            gh: FakeGitHub::start().await,
            dir: TempDir::new("mcp-oauth-mixed"),
        }
    }

    fn upstreams_toml(&self) -> String {
        format!(
            "{}\n{}",
            company_toml(&self.op, &self.dir),
            github_toml(&self.gh, &self.dir, "")
        )
    }
}

async fn whoami(s: &TestServer, token: &str) -> Value {
    let mut mcp = McpClient::new(&s.resource, Some(token));
    mcp.initialize().await.unwrap();
    mcp.call("whoami", json!({})).await.unwrap()["structuredContent"].clone()
}

/// The password path: login → consent → tokens.
pub async fn password_tokens(s: &TestServer, client_id: &str) -> Value {
    let b = browser();
    let (tx, csrf, html) = s.start_login(&b, &s.auth_params(client_id)).await;
    assert!(html.contains("type=\"password\""), "{html}");
    let r = s.post_login(&b, &tx, &csrf, USER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Allow access?"));
    let at = AtCallback {
        browser: b,
        tx,
        csrf,
        callback: String::new(),
    };
    approve_and_exchange(s, &at, client_id).await
}

pub async fn upstream_tokens(s: &TestServer, name: &str, base: &str, client_id: &str) -> Value {
    let at = to_upstream_callback(s, name, base, &s.auth_params(client_id)).await;
    let r = at.browser.get(&at.callback).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    approve_and_exchange(s, &at, client_id).await
}

#[tokio::test]
async fn two_upstreams_and_local_accounts_each_sign_in() {
    let m = Mixed::start().await;
    let s = start_with(Options {
        extra_toml: Some(m.upstreams_toml()),
        ..Default::default()
    })
    .await;
    let client_id = s.register_public().await;

    let b = browser();
    let (_, _, html) = s.start_login(&b, &s.auth_params(&client_id)).await;
    for wanted in [
        "Sign in with Company SSO",
        "Sign in with GitHub",
        "type=\"password\"",
        "action=\"&#x2f;login&#x2f;upstream&#x2f;company\"",
        "action=\"&#x2f;login&#x2f;upstream&#x2f;github\"",
    ] {
        assert!(html.contains(wanted), "{wanted}: {html}");
    }

    let company = upstream_tokens(&s, "company", &m.op.base, &client_id).await;
    let who = whoami(&s, company["access_token"].as_str().unwrap()).await;
    assert_eq!(who["subject"], "company:upstream-user-1");

    let github = upstream_tokens(&s, "github", &m.gh.base, &client_id).await;
    let who = whoami(&s, github["access_token"].as_str().unwrap()).await;
    assert_eq!(who["subject"], "github:583231");

    let local = password_tokens(&s, &client_id).await;
    let who = whoami(&s, local["access_token"].as_str().unwrap()).await;
    assert_eq!(who["subject"], USER);

    // Every grant refreshes: each upstream's users are that upstream's to check, not the local
    // accounts' (which know no `company:…` user).
    for t in [&company, &github, &local] {
        let r = s
            .refresh(&client_id, t["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    }
}

#[tokio::test]
async fn an_answer_at_the_other_upstreams_callback_is_refused() {
    let m = Mixed::start().await;
    let s = start_with(Options {
        extra_toml: Some(m.upstreams_toml()),
        ..Default::default()
    })
    .await;
    let client_id = s.register_public().await;
    let params = s.auth_params(&client_id);

    // Started at `company`, its (valid) answer delivered to `github`'s callback.
    let at = to_upstream_callback(&s, "company", &m.op.base, &params).await;
    let moved = at
        .callback
        .replace("/login/callback/company?", "/login/callback/github?");
    let r = at.browser.get(&moved).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(refusal_page(r).await.contains("wrong identity provider"));
    nothing_issued(&s, &at).await;
    assert_eq!(
        m.gh.authenticated_token_requests(),
        0,
        "github never saw it"
    );

    // And the other way round.
    let at = to_upstream_callback(&s, "github", &m.gh.base, &params).await;
    let moved = at
        .callback
        .replace("/login/callback/github?", "/login/callback/company?");
    let r = at.browser.get(&moved).send().await.unwrap();
    assert!(refusal_page(r).await.contains("wrong identity provider"));
    nothing_issued(&s, &at).await;

    // The password form still works beside them.
    let local = password_tokens(&s, &client_id).await;
    assert!(local["access_token"].is_string());
}

pub fn sqlite_storage(dir: &TempDir) -> String {
    format!("kind = \"sqlite\"\ndata_dir = \"{}\"", dir.path().display())
}

#[tokio::test]
async fn removing_an_upstream_ends_its_users_grants_at_refresh() {
    let m = Mixed::start().await;
    let data = TempDir::new("mcp-oauth-mixed-data");
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(m.upstreams_toml()),
        ..Default::default()
    })
    .await;
    let port = s.port();
    let client_id = s.register_public().await;
    let company = upstream_tokens(&s, "company", &m.op.base, &client_id).await;
    let company_2 = upstream_tokens(&s, "company", &m.op.base, &client_id).await;
    let github = upstream_tokens(&s, "github", &m.gh.base, &client_id).await;
    let local = password_tokens(&s, &client_id).await;
    s.stop().await;

    // The operator removes [upstreams.company]; the same store, issuer and port.
    let s = start_with(Options {
        storage: Some(sqlite_storage(&data)),
        extra_toml: Some(github_toml(&m.gh, &m.dir, "")),
        port: Some(port),
        ..Default::default()
    })
    .await;
    let r = s
        .refresh(&client_id, company["refresh_token"].as_str().unwrap())
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_grant")
    );
    // Every grant of that user ended (as `users delete` ends them), not only the one refreshed.
    let introspected = s
        .introspect(company_2["access_token"].as_str().unwrap())
        .await;
    assert_eq!(introspected["active"], false, "{introspected}");
    let r = s
        .refresh(&client_id, company_2["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(error_of(r).await.1, "invalid_grant");
    // The upstream still configured, and the local account, keep theirs.
    for t in [&github, &local] {
        let r = s
            .refresh(&client_id, t["refresh_token"].as_str().unwrap())
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{:?}", r.text().await);
    }
}

#[tokio::test]
async fn upstream_configuration_errors_name_the_place() {
    let m = Mixed::start().await;
    let dir = TempDir::new("mcp-oauth-mixed-config");
    let check = |body: String| {
        let cfg = dir.path().join("mixed.toml");
        std::fs::write(
            &cfg,
            format!(
                "[server]\nbind = \"127.0.0.1:9100\"\n\n[storage]\nkind = \"memory\"\n\n{body}"
            ),
        )
        .unwrap();
        async move { run_cli(Some(&cfg), &["config", "check", "--offline"], &[], None).await }
    };
    let good = m.upstreams_toml();
    let (ok, out, err) = check(good.clone()).await;
    assert!(ok && out.contains("configuration OK"), "{out}\n{err}");

    // Two upstreams with one name: [users] kind = "oidc" names its upstream "company" too.
    let users_oidc = format!(
        "[users]\nkind = \"oidc\"\n[users.oidc]\nname = \"company\"\nissuer = \"{}\"\nclient_id = \"x\"\n\n{good}",
        m.op.base
    );
    let (ok, _, err) = check(users_oidc).await;
    assert!(
        !ok && err.contains(
            "[users] and [upstreams.company] both configure an upstream named \"company\""
        ),
        "{err}"
    );
    for (body, wanted) in [
        (
            "[upstreams.x]\nkind = \"saml\"\n".to_string(),
            "upstreams.x.kind \"saml\" is not registered (available: github, oauth2, oidc)",
        ),
        (
            "[upstreams.x]\nclient_id = \"c\"\n".to_string(),
            "upstreams.x.kind is missing",
        ),
        (
            "[upstreams.Bad]\nkind = \"github\"\nclient_id = \"c\"\n".to_string(),
            "the upstream name \"Bad\"",
        ),
        (
            "[upstreams.x]\nkind = \"github\"\nclient_id = \"c\"\nname = \"y\"\n".to_string(),
            "[upstreams.x]: name: an upstream's name is its table's key",
        ),
        (
            "[upstreams.x]\nkind = \"github\"\nclient_id = \"c\"\nclient_secret = \"s\"\n"
                .to_string(),
            "[upstreams.x]: client_secret: unknown field `client_secret`",
        ),
        (
            "[upstreams.x]\nkind = \"oauth2\"\nclient_id = \"c\"\n".to_string(),
            "[upstreams.x]: authorization_endpoint: is required for kind = \"oauth2\"",
        ),
        (
            "[upstreams.x]\nkind = \"oauth2\"\nclient_id = \"c\"\nallowed_orgs = [\"a\"]\n"
                .to_string(),
            "allowed_orgs: is a key of kind = \"github\" only",
        ),
    ] {
        let (ok, _, err) = check(body.clone()).await;
        assert!(
            !ok && err.contains(wanted),
            "{body}\nwanted {wanted}\ngot {err}"
        );
    }

    // The shipped example is valid as written (its providers are not reachable from the tests).
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/github.toml");
    let (ok, out, err) = run_cli(
        Some(&example),
        &["config", "check", "--offline"],
        &[
            ("MCP_OAUTH_GITHUB_CLIENT_SECRET", "example"),
            ("MCP_OAUTH_SSO_CLIENT_SECRET", "example"),
        ],
        None,
    )
    .await;
    assert!(ok && out.contains("configuration OK"), "{out}\n{err}");

    // Online, every upstream is checked: the OpenID provider's discovery among them.
    let cfg = dir.path().join("online.toml");
    std::fs::write(
        &cfg,
        format!("[server]\nbind = \"127.0.0.1:9100\"\n\n[storage]\nkind = \"memory\"\n\n{good}"),
    )
    .unwrap();
    let (ok, out, err) = run_cli(Some(&cfg), &["config", "check"], &[], None).await;
    assert!(ok, "{out}\n{err}");
    m.op.set(|b| b.discovery_issuer = Some("https://elsewhere.example".into()));
    let (ok, _, err) = run_cli(Some(&cfg), &["config", "check"], &[], None).await;
    assert!(
        !ok && err.contains("\"company\"") && err.contains("elsewhere.example"),
        "{err}"
    );
}
