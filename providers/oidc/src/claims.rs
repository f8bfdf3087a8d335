//! From validated ID-token claims to an [`AuthenticatedUser`]: the subject claim, username, e-mail,
//! display name and groups; groups mapped to scopes (`default_scopes` ∪ the scopes of every
//! `scope_map` group the user is in); the allow-list of e-mail domains and groups.
//!
//! What the allow-list and the scope map read (the e-mail, whether it is verified, the groups) is
//! also returned as [`Facts`], which the core keeps and hands back at every refresh: [`recheck`]
//! judges the user again against the configuration of that moment.

use mcp_oauth_provider::{AuthenticatedUser, SubjectStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::judging;
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
    let facts = Facts {
        email: email.clone(),
        email_verified: email_verified(claims),
        groups: groups.clone(),
    };
    if !facts.admitted(settings) {
        return Err(
            "this account is not allowed to sign in here (it is outside the configured \
                    e-mail domains and groups)"
                .to_string(),
        );
    }
    let allowed_scopes = facts.allowed_scopes(settings);
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

/// What the allow-list and the scope map read of a user, kept between their sign-in and the
/// refreshes of their grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub email: Option<String>,
    pub email_verified: bool,
    pub groups: Vec<String>,
}

impl Facts {
    /// The allow-list: empty admits everyone; else a verified e-mail in an allowed domain, or
    /// membership of an allowed group. An unverified e-mail never counts (anyone can type one).
    pub fn admitted(&self, settings: &OidcSettings) -> bool {
        if settings.allowed_email_domains.is_empty() && settings.allowed_groups.is_empty() {
            return true;
        }
        let domain_ok = self.email_verified
            && self
                .email
                .as_deref()
                .and_then(|e| e.rsplit_once('@'))
                .is_some_and(|(_, domain)| {
                    settings
                        .allowed_email_domains
                        .iter()
                        .any(|d| d.eq_ignore_ascii_case(domain))
                });
        domain_ok
            || self
                .groups
                .iter()
                .any(|g| settings.allowed_groups.contains(g))
    }

    /// `default_scopes` plus the scopes of each `scope_map` group the user is in
    /// ([`judging::mapped_scopes`]; group names compare exactly).
    pub fn allowed_scopes(&self, settings: &OidcSettings) -> Option<Vec<String>> {
        judging::mapped_scopes(&settings.default_scopes, &settings.scope_map, |g| {
            self.groups.iter().any(|mine| mine == g)
        })
    }
}

impl judging::Facts for Facts {
    type Settings = OidcSettings;

    fn admitted(&self, settings: &OidcSettings) -> bool {
        Facts::admitted(self, settings)
    }

    fn allowed_scopes(&self, settings: &OidcSettings) -> Option<Vec<String>> {
        Facts::allowed_scopes(self, settings)
    }
}

/// The user of `facts` judged against `settings` now ([`judging::recheck`]: missing or
/// unreadable facts fail closed).
pub fn recheck(settings: &OidcSettings, facts: Option<&Value>) -> SubjectStatus {
    judging::recheck::<Facts>(settings, facts)
}

/// The facts of `claims` (for the core to keep), as [`user_from_claims`] read them.
pub fn facts_from_claims(settings: &OidcSettings, claims: &Map<String, Value>) -> Value {
    serde_json::to_value(Facts {
        email: string_claim(claims, &settings.email_claim),
        email_verified: email_verified(claims),
        groups: groups(claims, &settings.groups_claim),
    })
    .unwrap_or(Value::Null)
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
    fn kept_facts_are_judged_against_the_settings_of_the_refresh() {
        let claims = claims(
            json!({"sub": "1", "email": "a@example.com", "email_verified": true,
                                   "groups": ["admins"]}),
        );
        let then = settings(json!({"allowed_email_domains": ["example.com"],
                                   "scope_map": [{"group": "admins", "scopes": ["mcp:admin"]}]}));
        let facts = facts_from_claims(&then, &claims);
        assert_eq!(
            recheck(&then, Some(&facts)),
            SubjectStatus::Active {
                allowed_scopes: Some(vec!["mcp:admin".into()])
            }
        );
        let narrowed = settings(json!({"allowed_email_domains": ["example.org"]}));
        assert_eq!(recheck(&narrowed, Some(&facts)), SubjectStatus::Gone);
        let open = settings(json!({}));
        assert_eq!(
            recheck(&open, Some(&facts)),
            SubjectStatus::Active {
                allowed_scopes: None
            }
        );
        // Facts the store forgot (or wrote in another shape) fail closed: judged as a user with no
        // e-mail and no group, never as whoever signed in.
        let open_any = SubjectStatus::Active {
            allowed_scopes: None,
        };
        assert_eq!(recheck(&open, None), open_any);
        assert_eq!(recheck(&open, Some(&json!("junk"))), open_any);
        assert_eq!(recheck(&then, None), SubjectStatus::Gone);
        assert_eq!(recheck(&then, Some(&json!("junk"))), SubjectStatus::Gone);
        let mapped = settings(json!({"default_scopes": ["mcp:tools"],
                                     "scope_map": [{"group": "admins", "scopes": ["mcp:admin"]}]}));
        assert_eq!(
            recheck(&mapped, None),
            SubjectStatus::Active {
                allowed_scopes: Some(vec!["mcp:tools".into()])
            }
        );
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
