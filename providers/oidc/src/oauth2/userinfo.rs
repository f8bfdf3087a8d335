//! From the userinfo answer (a JSON object) to an [`AuthenticatedUser`]: values found by dotted
//! JSON paths (`id`, `data.user.id`; a number selects an array element), the subject namespaced by
//! the upstream's name, groups mapped to scopes as for OpenID Connect, and the allow-lists of users
//! and groups. The username and groups are also the [`Facts`] the core keeps for [`recheck`] at
//! every refresh.

use mcp_oauth_provider::{AuthenticatedUser, SubjectStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::judging;
use crate::oauth2::settings::OAuth2Settings;

/// The value at `path` in `v`.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// A string or number at `path` (numbers as written: GitHub's ids are numbers).
pub fn string_at(v: &Value, path: &str) -> Option<String> {
    match at(v, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Groups at `path`: an array of strings, or one string.
pub fn groups_at(v: &Value, path: &str) -> Vec<String> {
    match at(v, path) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// The user the userinfo answer describes, with `groups` (read from it, or from GitHub's API), or
/// why they may not sign in (shown on the error page).
pub fn user_from_userinfo(
    settings: &OAuth2Settings,
    info: &Value,
    groups: Vec<String>,
) -> Result<AuthenticatedUser, String> {
    let upstream_subject = string_at(info, &settings.subject_path).ok_or_else(|| {
        format!(
            "the identity provider's user information has no {:?} to identify the user \
             (subject_path)",
            settings.subject_path
        )
    })?;
    let subject = format!("{}:{upstream_subject}", settings.name);
    let username = string_at(info, &settings.username_path);
    let email = string_at(info, &settings.email_path);
    let facts = Facts {
        username: username.clone(),
        groups: groups.clone(),
    };
    if !facts.admitted(settings) {
        return Err(
            "this account is not allowed to sign in here (it is outside the configured users \
             and groups)"
                .to_string(),
        );
    }
    let allowed_scopes = facts.allowed_scopes(settings);
    Ok(AuthenticatedUser {
        username: username
            .or_else(|| email.clone())
            .unwrap_or_else(|| upstream_subject.clone()),
        display_name: string_at(info, &settings.name_path),
        subject,
        email,
        groups,
        allowed_scopes,
    })
}

/// What the allow-lists and the scope map read of a user, kept between their sign-in and the
/// refreshes of their grants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub username: Option<String>,
    pub groups: Vec<String>,
}

impl Facts {
    /// Empty allow-lists admit everyone; else the username is listed, or one of the groups is
    /// (GitHub's `allowed_orgs` and `allowed_teams` are groups too: an org's login,
    /// `org/team-slug`). GitHub logins compare without case, as GitHub does.
    pub fn admitted(&self, settings: &OAuth2Settings) -> bool {
        let listed_groups: Vec<&String> = settings
            .allowed_groups
            .iter()
            .chain(&settings.allowed_orgs)
            .chain(&settings.allowed_teams)
            .collect();
        if settings.allowed_users.is_empty() && listed_groups.is_empty() {
            return true;
        }
        let user_ok = self.username.as_deref().is_some_and(|u| {
            settings
                .allowed_users
                .iter()
                .any(|a| a.eq_ignore_ascii_case(u))
        });
        user_ok
            || self
                .groups
                .iter()
                .any(|g| listed_groups.iter().any(|l| l.eq_ignore_ascii_case(g)))
    }

    /// `default_scopes` plus the scopes of each `scope_map` group the user is in
    /// ([`judging::mapped_scopes`]; group names compare without case, as GitHub's do).
    pub fn allowed_scopes(&self, settings: &OAuth2Settings) -> Option<Vec<String>> {
        judging::mapped_scopes(&settings.default_scopes, &settings.scope_map, |g| {
            self.groups.iter().any(|mine| mine.eq_ignore_ascii_case(g))
        })
    }
}

impl judging::Facts for Facts {
    type Settings = OAuth2Settings;

    fn admitted(&self, settings: &OAuth2Settings) -> bool {
        Facts::admitted(self, settings)
    }

    fn allowed_scopes(&self, settings: &OAuth2Settings) -> Option<Vec<String>> {
        Facts::allowed_scopes(self, settings)
    }
}

/// The user of `facts` judged against `settings` now ([`judging::recheck`]: missing or
/// unreadable facts fail closed).
pub fn recheck(settings: &OAuth2Settings, facts: Option<&Value>) -> SubjectStatus {
    judging::recheck::<Facts>(settings, facts)
}

/// The facts [`user_from_userinfo`] judged, for the core to keep.
pub fn facts_of(settings: &OAuth2Settings, info: &Value, groups: &[String]) -> Value {
    serde_json::to_value(Facts {
        username: string_at(info, &settings.username_path),
        groups: groups.to_vec(),
    })
    .unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::oauth2::settings::Flavour;
    use mcp_oauth_provider::FactoryContext;
    use serde_json::json;

    fn settings(flavour: Flavour, extra: Value) -> OAuth2Settings {
        let mut v = json!({"name": "gh", "client_id": "c"});
        if flavour == Flavour::Generic {
            v["authorization_endpoint"] = json!("https://idp.example/authorize");
            v["token_endpoint"] = json!("https://idp.example/token");
            v["userinfo_url"] = json!("https://idp.example/userinfo");
        }
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        OAuth2Settings::from_context(&FactoryContext::new("upstreams.gh", v, ".".into()), flavour)
            .unwrap()
    }

    #[test]
    fn paths_find_nested_values() {
        let v = json!({"data": {"user": {"id": 7, "tags": ["a", "b"]}}, "login": "ann"});
        assert_eq!(string_at(&v, "data.user.id").as_deref(), Some("7"));
        assert_eq!(string_at(&v, "data.user.tags.1").as_deref(), Some("b"));
        assert_eq!(string_at(&v, "login").as_deref(), Some("ann"));
        assert_eq!(string_at(&v, "data.missing"), None);
        assert_eq!(groups_at(&v, "data.user.tags"), vec!["a", "b"]);
    }

    #[test]
    fn github_users_are_admitted_by_org_or_team_and_mapped_to_scopes() {
        let s = settings(
            Flavour::GitHub,
            json!({"allowed_orgs": ["acme"], "allowed_teams": ["other/ops"],
                   "default_scopes": ["mcp:tools"],
                   "scope_map": [{"group": "acme/admins", "scopes": ["mcp:admin"]}]}),
        );
        let info = json!({"id": 42, "login": "Ann", "name": "Ann A", "email": null});
        let u = user_from_userinfo(&s, &info, vec!["acme".into(), "acme/admins".into()]).unwrap();
        assert_eq!(u.subject, "gh:42");
        assert_eq!(u.username, "Ann");
        assert_eq!(u.display_name.as_deref(), Some("Ann A"));
        assert_eq!(
            u.allowed_scopes,
            Some(vec!["mcp:tools".into(), "mcp:admin".into()])
        );
        assert!(user_from_userinfo(&s, &info, vec!["other/ops".into()]).is_ok());
        let err = user_from_userinfo(&s, &info, vec!["evil".into(), "other".into()]).unwrap_err();
        assert!(err.contains("not allowed"), "{err}");
        let err = user_from_userinfo(&s, &json!({"login": "x"}), vec!["acme".into()]).unwrap_err();
        assert!(err.contains("\"id\""), "{err}");
    }

    #[test]
    fn kept_facts_are_judged_against_the_settings_of_the_refresh() {
        let then = settings(
            Flavour::GitHub,
            json!({"allowed_orgs": ["acme"],
                   "scope_map": [{"group": "acme/admins", "scopes": ["mcp:admin"]}]}),
        );
        let info = json!({"id": 1, "login": "ann"});
        let facts = facts_of(&then, &info, &["acme".into(), "acme/admins".into()]);
        assert_eq!(
            recheck(&then, Some(&facts)),
            SubjectStatus::Active {
                allowed_scopes: Some(vec!["mcp:admin".into()])
            }
        );
        let narrowed = settings(Flavour::GitHub, json!({"allowed_orgs": ["other"]}));
        assert_eq!(recheck(&narrowed, Some(&facts)), SubjectStatus::Gone);
        let by_login = settings(Flavour::GitHub, json!({"allowed_users": ["ANN"]}));
        assert!(matches!(
            recheck(&by_login, Some(&facts)),
            SubjectStatus::Active { .. }
        ));
        // Facts the store forgot fail closed: judged as a user in no org and no team.
        assert_eq!(recheck(&then, None), SubjectStatus::Gone);
        assert_eq!(recheck(&then, Some(&json!(42))), SubjectStatus::Gone);
        let mapped = settings(
            Flavour::GitHub,
            json!({"default_scopes": ["mcp:tools"],
                   "scope_map": [{"group": "acme/admins", "scopes": ["mcp:admin"]}]}),
        );
        assert_eq!(
            recheck(&mapped, None),
            SubjectStatus::Active {
                allowed_scopes: Some(vec!["mcp:tools".into()])
            }
        );
    }

    #[test]
    fn generic_upstreams_read_groups_and_users_from_userinfo() {
        let s = settings(
            Flavour::Generic,
            json!({"groups_path": "roles", "allowed_groups": ["staff"], "allowed_users": ["bob"]}),
        );
        let ok = |v: Value| {
            let g = groups_at(&v, "roles");
            user_from_userinfo(&s, &v, g).is_ok()
        };
        assert!(ok(json!({"sub": "1", "roles": ["staff"]})));
        assert!(ok(json!({"sub": "2", "preferred_username": "BOB"})));
        assert!(!ok(
            json!({"sub": "3", "roles": ["guests"], "preferred_username": "eve"})
        ));
        let open = settings(Flavour::Generic, json!({}));
        let u = user_from_userinfo(&open, &json!({"sub": "9", "email": "a@b.c"}), vec![]).unwrap();
        assert_eq!((u.subject.as_str(), u.username.as_str()), ("gh:9", "a@b.c"));
        assert_eq!(u.allowed_scopes, None);
    }
}
