//! What an upstream told us about a user at their last sign-in, kept to judge them again at every
//! refresh of their grants (RFC 6749 §6: the server decides whether a refresh token is still good;
//! RFC 9700 §4.14: a refresh token ends when the user's authorization does).
//!
//! An upstream that answers [`UpstreamOutcome::AuthenticatedWithFacts`] hands the core its own
//! facts (e.g. an OpenID Connect user's e-mail, whether it is verified, their groups; a GitHub
//! user's login, orgs and teams). The core keeps them in the store's shared state
//! ([`SharedStateStore`](mcp_oauth_provider::SharedStateStore)'s documents, so every server on one
//! store sees them and they survive a restart on a durable store) under a digest of the subject,
//! until `[tokens] max_grant_lifetime` after the sign-in, when no grant of that sign-in can be
//! refreshed any more. At a refresh, [`check_subject`] finds the upstream the subject belongs to
//! (`<name>:…`) and asks it with those facts, so a changed allow-list or scope map applies to
//! grants already issued. A subject whose upstream is no longer configured goes to `[users]`, which
//! knows no such user (`Gone`). Facts the store no longer has (a cache may forget) reach the
//! upstream as `None`, and the built-in upstreams fail closed: such a user is judged as one with
//! no e-mail and no group (an allow-list ends the grant, a scope map leaves the default scopes).
//!
//! [`UpstreamOutcome::AuthenticatedWithFacts`]: mcp_oauth_provider::UpstreamOutcome::AuthenticatedWithFacts

use mcp_oauth_provider::shared_state::MAX_DOCUMENT_BYTES;
use mcp_oauth_provider::{CachedDocument, ProviderError, ProviderResult, SubjectStatus};
use serde::{Deserialize, Serialize};

use crate::oauth::secrets::hash_secret;
use crate::state::{AppState, now};

/// What is stored: the upstream the facts came from, and the facts.
#[derive(Serialize, Deserialize)]
struct Stored {
    upstream: String,
    facts: serde_json::Value,
}

/// The shared-state key of `subject`'s facts (a digest: subjects may be long, and the key names
/// no one).
fn key(subject: &str) -> String {
    format!(
        "mcp-oauth:upstream-user-facts:v1:{}",
        hash_secret(subject).as_str()
    )
}

/// Keeps `facts` of `subject`, signed in through `upstream`, until no grant of this sign-in can be
/// refreshed. Facts larger than the store keeps are an error (the sign-in then fails: an upstream
/// whose users could not be judged again would silently keep them in).
pub async fn remember(
    state: &AppState,
    upstream: &str,
    subject: &str,
    facts: serde_json::Value,
) -> ProviderResult<()> {
    let body = serde_json::to_vec(&Stored {
        upstream: upstream.to_string(),
        facts,
    })
    .map_err(|e| ProviderError::backend("encoding an upstream user's facts", e))?;
    if body.len() > MAX_DOCUMENT_BYTES {
        return Err(ProviderError::backend_msg(format!(
            "the upstream {upstream:?} answered {} bytes of facts about the user, more than the \
             {MAX_DOCUMENT_BYTES} kept",
            body.len()
        )));
    }
    let doc = CachedDocument {
        body,
        expires_at: now().saturating_add(state.max_grant_lifetime),
    };
    state
        .provider
        .shared_state()
        .put_document(&key(subject), &doc)
        .await
}

/// Whether `subject` may still use its grants: its upstream's judgement with the facts kept, when
/// its `<name>:` prefix names a configured upstream; else `[users]`'s.
pub async fn check_subject(state: &AppState, subject: &str) -> ProviderResult<SubjectStatus> {
    let authenticator = state.provider.authenticator();
    let owner = subject.split_once(':').and_then(|(name, _)| {
        authenticator
            .upstreams()
            .into_iter()
            .find(|u| u.name() == name)
    });
    let Some(upstream) = owner else {
        return authenticator.check_subject(subject).await;
    };
    let stored = state
        .provider
        .shared_state()
        .get_document(&key(subject), now())
        .await?
        .and_then(|doc| serde_json::from_slice::<Stored>(&doc.body).ok())
        .filter(|s| s.upstream == upstream.name());
    upstream
        .check_subject(subject, stored.as_ref().map(|s| &s.facts))
        .await
}
