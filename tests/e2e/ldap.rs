//! Users from an LDAP directory (`[users] kind = "ldap"`): the whole authorization-code flow with a
//! directory user, group → scope mapping as seen on the consent page and in the token, the generic
//! failure message, and a directory outage that leaves every other endpoint working.
//!
//! The directory is the test slapd started by `scripts/services/slapd.sh`
//! (`MCP_OAUTH_TEST_LDAP_URL`); with `MCP_OAUTH_REQUIRE_SERVICES=1` its absence fails these tests.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

const ALICE_PW: &str = "alice-test-password";
const BOB_PW: &str = "bob-test-password";

/// The test directory's URL, or `None` when it is not configured and not required.
pub(crate) fn directory_url() -> Option<String> {
    let required = std::env::var("MCP_OAUTH_REQUIRE_SERVICES").as_deref() == Ok("1");
    match std::env::var("MCP_OAUTH_TEST_LDAP_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                !required,
                "MCP_OAUTH_REQUIRE_SERVICES=1 but MCP_OAUTH_TEST_LDAP_URL is not set \
                 (scripts/services/slapd.sh sets it)"
            );
            eprintln!("skipped: no test directory (run scripts/test.sh)");
            None
        }
    }
}

/// A file holding the service account's password, removed on drop.
pub(crate) struct PasswordFile(std::path::PathBuf);

impl PasswordFile {
    pub(crate) fn new() -> Self {
        let path = std::env::temp_dir().join(format!(
            "mcp-oauth-e2e-ldap-service-{}",
            mcp_oauth::oauth::secrets::new_secret()
        ));
        std::fs::write(&path, "service-test-password\n").unwrap();
        Self(path)
    }
}

impl Drop for PasswordFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `[users] kind = "ldap"` in search-then-bind mode, members of mcp-admins allowed
/// `mcp:admin`, everyone `mcp:tools`.
pub(crate) fn ldap_users_toml(url: &str, password_file: &PasswordFile) -> String {
    format!(
        r#"
[users]
kind = "ldap"

[users.ldap]
url = "{url}"
mode = "search"
base_dn = "ou=people,dc=example,dc=org"
user_filter = "(&(objectClass=inetOrgPerson)(uid={{username}}))"
bind_dn = "cn=mcp-service,ou=services,dc=example,dc=org"
bind_password_file = "{file}"
connect_timeout = "2s"
operation_timeout = "2s"
groups = "member_of"
default_scopes = ["mcp:tools"]

[[users.ldap.scope_map]]
group = "cn=mcp-admins,ou=groups,dc=example,dc=org"
scopes = ["mcp:admin"]
"#,
        file = password_file.0.display()
    )
}

/// LDAP users compose with any storage backend; these tests store on SQLite.
pub(crate) async fn start_ldap_server(users_toml: String) -> TestServer {
    start_with(Options {
        users_toml: Some(users_toml),
        sqlite_temp: true,
        ..Default::default()
    })
    .await
}

/// Signs `user` in asking for `mcp:tools mcp:admin`; returns the consent page and the token response.
async fn sign_in_and_get_tokens(
    server: &TestServer,
    user: &str,
    password: &str,
) -> (String, Value) {
    let client_id = server.register_public().await;
    let params = with(
        &server.auth_params(&client_id),
        "scope",
        Some("mcp:tools mcp:admin"),
    );
    let b = browser();
    let (tx, csrf, _) = server.start_login(&b, &params).await;
    let r = server.post_login(&b, &tx, &csrf, user, password).await;
    assert_eq!(r.status(), StatusCode::OK);
    let consent = r.text().await.unwrap();
    assert!(
        consent.contains("Allow access?"),
        "consent page expected: {consent}"
    );
    let r = server.post_consent(&b, &tx, &csrf, "approve", false).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let code = query_param(&location(&r), "code").expect("code in redirect");
    let r = server.exchange(&client_id, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    (consent, r.json().await.unwrap())
}

#[tokio::test]
async fn a_directory_user_completes_the_flow_and_the_token_reflects_the_entry() {
    let Some(url) = directory_url() else { return };
    let password_file = PasswordFile::new();
    let server = start_ldap_server(ldap_users_toml(&url, &password_file)).await;

    let (consent, tokens) = sign_in_and_get_tokens(&server, "alice", ALICE_PW).await;
    assert!(
        consent.contains("Alice Admin"),
        "the display name from the directory"
    );
    assert!(consent.contains("<code>mcp:admin</code>"), "{consent}");
    assert_eq!(tokens["scope"], "mcp:tools mcp:admin");
    let access = tokens["access_token"].as_str().unwrap();
    let claims = server.introspect(access).await;
    assert_eq!(claims["active"], true);
    assert_eq!(claims["sub"], "alice", "sub is the entry's uid");
    assert_eq!(claims["scope"], "mcp:tools mcp:admin");
    assert!(
        server.state.provider.user_store().is_none()
            || server
                .state
                .provider
                .user_store()
                .unwrap()
                .list_users()
                .await
                .unwrap()
                .is_empty(),
        "no local admin account is created for LDAP users"
    );
}

#[tokio::test]
async fn a_user_outside_the_admin_group_never_gets_the_admin_scope() {
    let Some(url) = directory_url() else { return };
    let password_file = PasswordFile::new();
    let server = start_ldap_server(ldap_users_toml(&url, &password_file)).await;

    let (consent, tokens) = sign_in_and_get_tokens(&server, "bob", BOB_PW).await;
    assert!(consent.contains("<code>mcp:tools</code>"), "{consent}");
    assert!(
        !consent.contains("mcp:admin"),
        "the consent page offers only scopes bob may have: {consent}"
    );
    assert_eq!(tokens["scope"], "mcp:tools");
    let claims = server
        .introspect(tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(claims["sub"], "bob");
    assert_eq!(claims["scope"], "mcp:tools");

    // Refreshing cannot widen it either.
    let client_id = claims["client_id"].as_str().unwrap().to_string();
    let r = server
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            ("scope", "mcp:tools mcp:admin"),
        ])
        .await;
    let (status, error) = error_of(r).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "invalid_scope"),
        "refresh must not add mcp:admin"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_generic_message() {
    let Some(url) = directory_url() else { return };
    let password_file = PasswordFile::new();
    let server = start_ldap_server(ldap_users_toml(&url, &password_file)).await;
    let client_id = server.register_public().await;
    let params = server.auth_params(&client_id);
    let b = browser();
    let (tx, csrf, _) = server.start_login(&b, &params).await;
    for (user, pw) in [
        ("alice", "wrong-password"),
        ("nobody", ALICE_PW),
        ("alice", ""),
        ("*", ALICE_PW),
        (")(uid=*", ALICE_PW),
    ] {
        let r = server.post_login(&b, &tx, &csrf, user, pw).await;
        assert_eq!(r.status(), StatusCode::OK, "{user}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Invalid username or password."),
            "{user}: {html}"
        );
        assert!(!html.contains("Allow access?"), "{user}");
        assert!(!html.contains("unavailable"), "{user}");
    }
}

#[tokio::test]
async fn a_directory_outage_is_temporarily_unavailable_and_other_endpoints_keep_working() {
    // Nothing listens on this port: the directory is down for the whole test. (Recovery when it
    // returns is tested against a real slapd in providers/ldap/tests/ldap.rs.)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password_file = PasswordFile::new();
    let server = start_ldap_server(ldap_users_toml(
        &format!("ldap://127.0.0.1:{port}/"),
        &password_file,
    ))
    .await;
    let client_id = server.register_public().await;
    let b = browser();
    let (tx, csrf, _) = server
        .start_login(&b, &server.auth_params(&client_id))
        .await;
    let started = std::time::Instant::now();
    let r = server.post_login(&b, &tx, &csrf, "alice", ALICE_PW).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "within the timeout"
    );
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = r.text().await.unwrap();
    assert!(html.contains("temporarily unavailable"), "{html}");

    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
        "/jwks.json",
    ] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let (id, secret) = admin_client(
        &server,
        serde_json::json!({"grant_types": ["client_credentials"], "scope": "mcp:tools"}),
    )
    .await;
    let r = http()
        .post(server.url("/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "mcp:tools")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "client_credentials needs no directory"
    );
}

/// Runs `ldapadd` / `ldapdelete` as the test directory's root DN (scripts/services/slapd.sh
/// installs ldap-utils).
fn ldap_admin(url: &str, tool: &str, args: &[&str], stdin: Option<&str>) {
    use std::io::Write;
    let mut child = std::process::Command::new(tool)
        .args(["-x", "-H", url, "-D", "cn=admin,dc=example,dc=org"])
        .args(["-w", "admin-test-password"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs `uid` in for `scope` and returns (client id, refresh token).
async fn directory_grant(
    server: &TestServer,
    uid: &str,
    password: &str,
    scope: &str,
) -> (String, String) {
    let client_id = server.register_public().await;
    let params = with(&server.auth_params(&client_id), "scope", Some(scope));
    let b = browser();
    let (tx, csrf, _) = server.start_login(&b, &params).await;
    let r = server.post_login(&b, &tx, &csrf, uid, password).await;
    assert!(r.text().await.unwrap().contains("Allow access?"));
    let r = server.post_consent(&b, &tx, &csrf, "approve", false).await;
    let code = query_param(&location(&r), "code").expect("code");
    let tokens: Value = server
        .exchange(&client_id, &code)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(tokens["scope"], scope, "{tokens}");
    (
        client_id,
        tokens["refresh_token"].as_str().unwrap().to_string(),
    )
}

/// Refreshes; returns the new refresh token, or the error code.
async fn refresh_once(
    server: &TestServer,
    client_id: &str,
    refresh: &str,
) -> Result<String, String> {
    let r = server.refresh(client_id, refresh).await;
    if r.status() == StatusCode::OK {
        Ok(r.json::<Value>().await.unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string())
    } else {
        Err(error_of(r).await.1)
    }
}

/// Issue 8 §3: in search mode a refresh looks the user up again. A grant whose scopes the user's
/// groups no longer allow ends; a deleted entry ends every grant.
#[tokio::test]
async fn directory_changes_end_grants_at_the_next_refresh() {
    let Some(url) = directory_url() else { return };
    let password_file = PasswordFile::new();
    let server = start_ldap_server(ldap_users_toml(&url, &password_file)).await;
    let uid: String = format!("carol{}", mcp_oauth::oauth::secrets::new_secret())
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(16)
        .collect::<String>()
        .to_lowercase();
    let dn = format!("uid={uid},ou=people,dc=example,dc=org");
    let admins = "cn=mcp-admins,ou=groups,dc=example,dc=org";
    ldap_admin(
        &url,
        "ldapadd",
        &[],
        Some(&format!(
            "dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Carol\nsn: Test\n\
             userPassword: carol-test-password\n"
        )),
    );
    let group_change =
        |op: &str| format!("dn: {admins}\nchangetype: modify\n{op}: member\nmember: {dn}\n");
    ldap_admin(&url, "ldapmodify", &[], Some(&group_change("add")));
    let pw = "carol-test-password";
    let (admin_client, admin_rt) = directory_grant(&server, &uid, pw, "mcp:tools mcp:admin").await;
    let (tools_client, tools_rt) = directory_grant(&server, &uid, pw, "mcp:tools").await;
    let admin_rt = refresh_once(&server, &admin_client, &admin_rt)
        .await
        .expect("still an admin: the admin grant refreshes");

    ldap_admin(&url, "ldapmodify", &[], Some(&group_change("delete")));
    assert_eq!(
        refresh_once(&server, &admin_client, &admin_rt).await,
        Err("invalid_grant".to_string()),
        "no longer in mcp-admins: the grant holding mcp:admin ends"
    );
    let tools_rt = refresh_once(&server, &tools_client, &tools_rt)
        .await
        .expect("mcp:tools is still allowed: that grant refreshes");

    ldap_admin(&url, "ldapdelete", &[&dn], None);
    assert_eq!(
        refresh_once(&server, &tools_client, &tools_rt).await,
        Err("invalid_grant".to_string()),
        "the entry is gone: the grant ends"
    );
}
