//! GitHub's organizations and teams of the signed-in user, read with their access token through the
//! REST API (`GET /user/orgs`, `GET /user/teams`; both need the `read:org` scope): the user's
//! groups are the logins of their orgs and `org/team-slug` for their teams. They decide the
//! allow-list (`allowed_orgs`, `allowed_teams`, `allowed_groups`) and the `scope_map`.
//!
//! Each list is read a page of 100 at a time, at most `max_membership_pages` pages (a user in more
//! orgs or teams than that is judged on the first ones, and the log says so).

use mcp_oauth_provider::{ProviderResult, UpstreamOutcome};
use serde_json::Value;

use crate::oauth2::upstream::{OAuth2Upstream, refused};

const PER_PAGE: usize = 100;

/// The user's orgs and teams, or a refusal (the API refused to list them).
pub async fn memberships(
    upstream: &OAuth2Upstream,
    access_token: &str,
) -> ProviderResult<Result<Vec<String>, UpstreamOutcome>> {
    let mut groups = Vec::new();
    for (path, what) in [
        ("/user/orgs", "the user's organizations"),
        ("/user/teams", "the user's teams"),
    ] {
        let items = match list(upstream, path, what, access_token).await? {
            Ok(items) => items,
            Err(outcome) => return Ok(Err(outcome)),
        };
        for item in items {
            let name = if path == "/user/orgs" {
                item.get("login")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            } else {
                let org = item
                    .get("organization")
                    .and_then(|o| o.get("login"))
                    .and_then(Value::as_str);
                let slug = item.get("slug").and_then(Value::as_str);
                org.zip(slug).map(|(o, s)| format!("{o}/{s}"))
            };
            if let Some(name) = name
                && !groups.contains(&name)
            {
                groups.push(name);
            }
        }
    }
    Ok(Ok(groups))
}

async fn list(
    upstream: &OAuth2Upstream,
    path: &str,
    what: &str,
    access_token: &str,
) -> ProviderResult<Result<Vec<Value>, UpstreamOutcome>> {
    let s = upstream.settings();
    let mut all = Vec::new();
    for page in 1..=s.max_membership_pages {
        let url = format!("{}{path}?per_page={PER_PAGE}&page={page}", s.api_url);
        let items = match upstream.get_json(&url, access_token, what).await? {
            Ok(Value::Array(items)) => items,
            Ok(_) => {
                return Ok(Err(refused(format!(
                    "GitHub's list of {what} is not a list"
                ))));
            }
            Err(status) => {
                return Ok(Err(refused(format!(
                    "GitHub refused to list {what} (HTTP {}); the sign-in needs the read:org \
                     scope",
                    status.as_u16()
                ))));
            }
        };
        let last = items.len() < PER_PAGE;
        all.extend(items);
        if last {
            return Ok(Ok(all));
        }
    }
    tracing::warn!(
        upstream = %s.name,
        "{what}: more than max_membership_pages ({}) pages; the rest was not read",
        s.max_membership_pages
    );
    Ok(Ok(all))
}
