//! Ending grants (issue 8 §3): a grant is one family of codes and tokens from one approval. Deleting
//! a user or changing their password revokes all of theirs, and forgets their remembered consent;
//! administrators list and revoke grants by user, client or id (`mcp-oauth grants`).
//!
//! Revocation goes through [`TokenStore::revoke_grants`] / `revoke_family`, which remember the
//! families as revoked, so a token a racing request inserts afterwards is born revoked (OAuth 2.1
//! §4.3.1 family semantics; RFC 7009 §2.1 "revoke … all tokens based on the same authorization
//! grant").

use mcp_oauth_provider::{
    ClientStore, GrantFilter, InteractionStore, ProviderResult, TokenLifetimes, TokenStore,
    UnixTime,
};

/// How long a revoked family must be remembered: longer than anything in it can live.
pub fn remember_revoked_until(lifetimes: &TokenLifetimes, t: UnixTime) -> UnixTime {
    let longest = lifetimes
        .refresh_token
        .max(lifetimes.access_token)
        .max(lifetimes.code);
    t.saturating_add(longest).saturating_add(60)
}

/// Deletes a client and revokes every grant issued to it (codes, access and refresh tokens), which
/// must not outlive it. The client goes first, so no new grant can start once revocation began;
/// returns `None` for an unknown client, else how many grants were revoked. A store only stores:
/// this rule spans the client and token stores, so the core drives it.
pub async fn delete_client(
    clients: &dyn ClientStore,
    tokens: &dyn TokenStore,
    client_id: &str,
    remember_until: UnixTime,
) -> anyhow::Result<Option<u64>> {
    if !clients.delete_client(client_id).await? {
        return Ok(None);
    }
    let filter = GrantFilter {
        subject: None,
        client_id: Some(client_id.to_string()),
    };
    let revoked = tokens
        .revoke_grants(&filter, remember_until)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "deleted client {client_id}, but revoking its grants failed ({e}); run \
                 `mcp-oauth grants revoke --client {client_id}`"
            )
        })?;
    tracing::info!(client_id = %client_id, grants = revoked, "deleted a client and ended its grants");
    Ok(Some(revoked))
}

/// Revokes every grant of `subject` (codes, access and refresh tokens) and forgets the consents
/// they remembered. Returns how many grants were revoked.
pub async fn end_user_grants(
    tokens: &dyn TokenStore,
    interactions: &dyn InteractionStore,
    subject: &str,
    remember_until: UnixTime,
) -> ProviderResult<u64> {
    let filter = GrantFilter {
        subject: Some(subject.to_string()),
        client_id: None,
    };
    let revoked = tokens.revoke_grants(&filter, remember_until).await?;
    interactions.forget_consents(subject).await?;
    tracing::info!(subject = %subject, grants = revoked, "ended the user's grants");
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A revoked family is remembered past the end of anything it could still issue or hold, so a
    /// token a racing request inserts for it is born revoked (the store forgets it only after).
    #[test]
    fn a_revoked_family_outlives_everything_in_it() {
        let t = 1_800_000_000;
        for (access, refresh, code) in [(900, 2_592_000, 60), (3600, 600, 60), (60, 60, 600)] {
            let lifetimes = TokenLifetimes {
                access_token: access,
                refresh_token: refresh,
                code,
            };
            let until = remember_revoked_until(&lifetimes, t);
            for lifetime in [access, refresh, code] {
                assert!(
                    until > t + lifetime,
                    "{until} must be after {t} + {lifetime}"
                );
            }
        }
        let forever = TokenLifetimes {
            access_token: i64::MAX,
            refresh_token: 1,
            code: 1,
        };
        assert_eq!(
            remember_revoked_until(&forever, t),
            i64::MAX,
            "saturates, never wraps"
        );
    }
}
