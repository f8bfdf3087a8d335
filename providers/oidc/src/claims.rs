//! From validated ID-token claims to an [`AuthenticatedUser`]: the subject claim, username, e-mail,
//! display name and groups; groups mapped to scopes (`default_scopes` ∪ the scopes of every
//! `scope_map` group the user is in); the allow-list of e-mail domains and groups.

use mcp_oauth_provider::AuthenticatedUser;
use serde_json::{Map, Value};

use crate::settings::OidcSettings;

fn string_claim(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Groups as a JSON array of strings or one string.
fn groups(claims: &Map<String, Value>, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `email_verified` as `true`, or as the string `"true"` some providers send.
fn email_verified(claims: &Map<String, Value>) -> bool {
    match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// The user the claims describe, or why they may not sign in (shown on the error page).
pub fn user_from_claims(
    settings: &OidcSettings,
    claims: &Map<String, Value>,
) -> Result<AuthenticatedUser, String> {
    let upstream_subject = string_claim(claims, &settings.subject_claim).ok_or_else(|| {
        format!(
            "the identity provider's ID token has no {:?} claim to identify the user",
            settings.subject_claim
        )
    })?;
    // Our subject is namespaced by the upstream's name: an upstream's `sub` is unique only at that
    // issuer (OIDC Core §2), and local accounts, LDAP entries and other upstreams share one subject
    // space in the store (grants, remembered consent). `corp:248289761001`, never a bare `sub`.
    let subject = format!("{}:{upstream_subject}", settings.name);
    let email = string_claim(claims, &settings.email_claim);
    let groups = groups(claims, &settings.groups_claim);
    if !admitted(settings, email.as_deref(), email_verified(claims), &groups) {
        return Err(
            "this account is not allowed to sign in here (it is outside the configured \
                    e-mail domains and groups)"
                .to_string(),
        );
    }
    let mut allowed: Vec<String> = settings.default_scopes.clone();
    for m in &settings.scope_map {
        if groups.contains(&m.group) {
            for s in &m.scopes {
                if !allowed.contains(s) {
                    allowed.push(s.clone());
                }
            }
        }
    }
    // Nothing mapped at all: no restriction beyond the client's and the resource's, as for local
    // accounts. Once a map or default scopes are configured, a user gets exactly what they grant.
    let allowed_scopes = if settings.scope_map.is_empty() && settings.default_scopes.is_empty() {
        None
    } else {
        Some(allowed)
    };
    Ok(AuthenticatedUser {
        username: string_claim(claims, &settings.username_claim)
            .or_else(|| email.clone())
            .unwrap_or_else(|| upstream_subject.clone()),
        display_name: string_claim(claims, &settings.name_claim),
        subject,
        email,
        groups,
        allowed_scopes,
    })
}

/// The allow-list: empty admits everyone; else a verified e-mail in an allowed domain, or
/// membership of an allowed group. An unverified e-mail never counts (anyone can type one).
fn admitted(
    settings: &OidcSettings,
    email: Option<&str>,
    verified: bool,
    groups: &[String],
) -> bool {
    if settings.allowed_email_domains.is_empty() && settings.allowed_groups.is_empty() {
        return true;
    }
    let domain_ok = verified
        && email
            .and_then(|e| e.rsplit_once('@'))
            .is_some_and(|(_, domain)| {
                settings
                    .allowed_email_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
            });
    domain_ok || groups.iter().any(|g| settings.allowed_groups.contains(g))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mcp_oauth_provider::FactoryContext;
    use serde_json::json;

    fn settings(extra: Value) -> OidcSettings {
        let mut v = json!({"issuer": "https://sso.example.com", "client_id": "c"});
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        OidcSettings::from_context(&FactoryContext::new("users.oidc", v, ".".into())).unwrap()
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn groups_map_to_scopes() {
        let s = settings(json!({
            "default_scopes": ["mcp:tools"],
            "scope_map": [{"group": "admins", "scopes": ["mcp:admin"]},
                          {"group": "other", "scopes": ["x"]}],
        }));
        let u = user_from_claims(
            &s,
            &claims(json!({
                "sub": "u1", "email": "a@example.com", "name": "Ann", "groups": ["admins"],
                "preferred_username": "ann"
            })),
        )
        .unwrap();
        assert_eq!(u.subject, "oidc:u1", "namespaced by the upstream name");
        assert_eq!(u.username, "ann");
        assert_eq!(u.display_name.as_deref(), Some("Ann"));
        assert_eq!(
            u.allowed_scopes,
            Some(vec!["mcp:tools".into(), "mcp:admin".into()])
        );
        let plain = settings(json!({}));
        let u = user_from_claims(&plain, &claims(json!({"sub": "u1"}))).unwrap();
        assert_eq!(u.allowed_scopes, None);
        assert_eq!(u.username, "u1");
        let err = user_from_claims(&plain, &claims(json!({"email": "a@b"}))).unwrap_err();
        assert!(err.contains("\"sub\""), "{err}");
    }

    #[test]
    fn the_allow_list_needs_a_verified_domain_or_a_group() {
        let s = settings(
            json!({"allowed_email_domains": ["example.com"], "allowed_groups": ["staff"]}),
        );
        let ok = |c: Value| user_from_claims(&s, &claims(c)).is_ok();
        assert!(ok(
            json!({"sub": "1", "email": "a@EXAMPLE.com", "email_verified": true})
        ));
        assert!(ok(
            json!({"sub": "1", "email": "a@example.com", "email_verified": "true"})
        ));
        assert!(
            !ok(json!({"sub": "1", "email": "a@example.com"})),
            "unverified"
        );
        assert!(!ok(
            json!({"sub": "1", "email": "a@example.com.evil", "email_verified": true})
        ));
        assert!(!ok(
            json!({"sub": "1", "email": "a@evil.com", "email_verified": true})
        ));
        assert!(ok(json!({"sub": "1", "groups": ["staff"]})));
        assert!(ok(json!({"sub": "1", "groups": "staff"})));
        assert!(!ok(json!({"sub": "1", "groups": ["guests"]})));
    }
}
