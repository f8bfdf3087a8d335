//! Judging an upstream user by the facts kept from their sign-in, for the OpenID Connect
//! ([`claims::Facts`](crate::claims::Facts)) and the OAuth 2 upstreams
//! ([`oauth2::userinfo::Facts`](crate::oauth2::userinfo::Facts)): the same rules at sign-in and at
//! every refresh (RFC 6749 §6: the server decides whether a refresh token is still good).

use mcp_oauth_provider::SubjectStatus;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::settings::ScopeMapping;

/// What an upstream's allow-list and scope map read of a user.
pub trait Facts: Default + DeserializeOwned {
    type Settings;

    /// Whether the allow-lists of `settings` admit this user.
    fn admitted(&self, settings: &Self::Settings) -> bool;

    /// The scopes this user may grant under `settings` (`None`: no restriction).
    fn allowed_scopes(&self, settings: &Self::Settings) -> Option<Vec<String>>;
}

/// The user of `facts` judged against `settings` now: `Gone` when no longer admitted, else the
/// scopes they may grant.
///
/// Facts the store no longer has (a cache may forget; a grant from before facts were kept) or
/// cannot read fail closed: the user is judged as one of whom nothing is known (no e-mail, no
/// group), so an allow-list ends the grant and a scope map leaves only the default scopes.
pub fn recheck<F: Facts>(settings: &F::Settings, facts: Option<&Value>) -> SubjectStatus {
    let facts = facts
        .and_then(|f| serde_json::from_value::<F>(f.clone()).ok())
        .unwrap_or_default();
    if !facts.admitted(settings) {
        return SubjectStatus::Gone;
    }
    SubjectStatus::Active {
        allowed_scopes: facts.allowed_scopes(settings),
    }
}

/// `default_scopes` plus the scopes of each `scope_map` group the user is a member of. Nothing
/// mapped at all: `None`, no restriction beyond the client's and the resource's (as for local
/// accounts); once a map or default scopes are configured, a user gets exactly what they grant.
pub fn mapped_scopes(
    default_scopes: &[String],
    scope_map: &[ScopeMapping],
    is_member: impl Fn(&str) -> bool,
) -> Option<Vec<String>> {
    if scope_map.is_empty() && default_scopes.is_empty() {
        return None;
    }
    let mut allowed: Vec<String> = default_scopes.to_vec();
    for m in scope_map.iter().filter(|m| is_member(&m.group)) {
        for s in &m.scopes {
            if !allowed.contains(s) {
                allowed.push(s.clone());
            }
        }
    }
    Some(allowed)
}
