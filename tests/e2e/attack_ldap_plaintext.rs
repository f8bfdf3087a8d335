//! Attack (issue 8 §8 "LDAP"): with `ldap://` to a directory on another host and no StartTLS,
//! every user's password crosses the network in clear text (a simple bind, RFC 4513 §5.1.1;
//! RFC 4513 §6.3.1 says such binds SHOULD be refused without confidentiality protection). The
//! server must refuse that configuration unless the operator says `allow_insecure = true`.

use crate::processes::{TempDir, run_cli};

fn config(dir: &TempDir, ldap: &str) -> std::path::PathBuf {
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[storage]\nkind = \"memory\"\n[users]\nkind = \"ldap\"\n[users.ldap]\nmode = \"direct\"\n\
             user_dn_template = \"uid={{username}},ou=people,dc=example,dc=org\"\n{ldap}\n"
        ),
    )
    .unwrap();
    path
}

#[tokio::test]
async fn attack_plaintext_ldap_to_another_host_is_refused() {
    let dir = TempDir::new("mcp-oauth-attack-ldap");
    let path = config(&dir, "url = \"ldap://directory.example.org:389\"");
    let (ok, out, err) = run_cli(Some(&path), &["config", "check", "--offline"], &[], None).await;
    assert!(
        !ok,
        "config check accepted plaintext LDAP to another host: {out}{err}"
    );
    assert!(err.contains("allow_insecure"), "{err}");
    let path = config(&dir, "url = \"ldap://192.0.2.10\"");
    let (ok, out, err) = run_cli(Some(&path), &["config", "check", "--offline"], &[], None).await;
    assert!(!ok, "accepted: {out}{err}");
}

#[tokio::test]
async fn protected_or_local_ldap_and_the_explicit_opt_out_are_accepted() {
    let dir = TempDir::new("mcp-oauth-attack-ldap");
    for ldap in [
        "url = \"ldap://directory.example.org\"\nstarttls = true",
        "url = \"ldaps://directory.example.org\"",
        "url = \"ldap://127.0.0.1:3389\"",
        "url = \"ldap://localhost\"",
        "url = \"ldap://[::1]:389\"",
        "url = \"ldap://directory.example.org\"\nallow_insecure = true",
    ] {
        let path = config(&dir, ldap);
        let (ok, out, err) =
            run_cli(Some(&path), &["config", "check", "--offline"], &[], None).await;
        assert!(ok, "{ldap}: {out}{err}");
    }
}
