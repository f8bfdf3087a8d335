//! A misconfigured plugin stops `config check` and `serve`: exit code 1 (an error, not a panic's
//! 101), and a message naming the section and the key.

use crate::support::Site;

/// Runs `config check` and `serve` with `env` added; both must fail naming every one of `names`.
async fn both_refuse(site: &Site, env: &[(&str, &str)], names: &[&str]) {
    for args in [&["config", "check"][..], &["serve"]] {
        let (code, _out, err) = site.run(args, env).await;
        assert_eq!(code, Some(1), "{args:?} with {env:?} exits 1: {err}");
        assert!(!err.contains("panicked"), "{args:?}: no panic: {err}");
        for name in names {
            assert!(
                err.contains(name),
                "{args:?} with {env:?} names {name}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn the_example_configuration_checks_out() {
    let site = Site::new().await;
    let (code, out, err) = site.run(&["config", "check"], &[]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("users:     htpasswd"), "{out}");
    assert!(out.contains("policy:    allowlist"), "{out}");
}

#[tokio::test]
async fn an_unknown_key_in_the_authenticator_table_is_named() {
    let site = Site::new().await;
    both_refuse(
        &site,
        &[("MCP_OAUTH__USERS__HTPASSWD__COLOUR", "blue")],
        &["[users.htpasswd]", "colour"],
    )
    .await;
}

#[tokio::test]
async fn an_unknown_key_in_the_policy_table_is_named() {
    let site = Site::new().await;
    both_refuse(
        &site,
        &[("MCP_OAUTH__POLICY__ALLOWLIST__REDIRECT_HOST", "localhost")],
        &["[policy.allowlist]", "redirect_host"],
    )
    .await;
}

#[tokio::test]
async fn an_unknown_users_kind_is_named() {
    let site = Site::new().await;
    both_refuse(
        &site,
        &[("MCP_OAUTH__USERS__KIND", "htpasswdd")],
        &["users.kind", "htpasswdd", "htpasswd"],
    )
    .await;
}

#[tokio::test]
async fn a_missing_htpasswd_file_and_a_weak_hash_are_named() {
    let site = Site::new().await;
    let nowhere = site.dir.path().join("nowhere.htpasswd");
    both_refuse(
        &site,
        &[(
            "MCP_OAUTH__USERS__HTPASSWD__FILE",
            nowhere.to_str().unwrap(),
        )],
        &["[users.htpasswd]", "file", "nowhere.htpasswd"],
    )
    .await;
    let weak = site.dir.path().join("weak.htpasswd");
    std::fs::write(&weak, "carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
    both_refuse(
        &site,
        &[("MCP_OAUTH__USERS__HTPASSWD__FILE", weak.to_str().unwrap())],
        &["[users.htpasswd]", "line 1", "SHA-1"],
    )
    .await;
}
