//! # mcp-oauth-provider-memory
//!
//! The in-memory storage backend: every store behind one mutex, so each operation is trivially
//! atomic. Nothing survives a restart; use it for tests, demos and single-process development.
//! It is written against the public provider API only, exactly like an outside plugin.

mod throttle;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use mcp_oauth_provider::{
    AccessTokenRecord, AuthenticatedUser, AuthorizationCode, Client, ClientOrigin, ClientStore,
    CodeRedemption, ConsentRecord, FactoryContext, GrantFilter, GrantSummary, InteractionStore,
    KeyStore, LocalSharedState, LoginTransaction, NoSettings, ProviderError, ProviderFactory,
    ProviderResult, PurgeCounts, RefreshTokenRecord, RefreshTokenState, RevokeTarget,
    RotateRefreshToken, Rotation, SecretHash, SigningKeyRecord, Storage, StoreLocality, TokenStore,
    UnixTime, UserRecord, UserStore,
};

#[derive(Default)]
struct State {
    clients: HashMap<String, Client>,
    /// When each client was last used (`ClientStore::touch_client`).
    client_last_used: HashMap<String, UnixTime>,
    /// Codes with a "used" flag: a used code is kept (until it expires) so a replay is recognised.
    codes: HashMap<SecretHash, (AuthorizationCode, bool)>,
    access: HashMap<String, AccessTokenRecord>,
    refresh: HashMap<SecretHash, RefreshTokenRecord>,
    /// Revoked families and until when they are remembered.
    revoked_families: HashMap<String, UnixTime>,
    keys: Vec<SigningKeyRecord>,
    transactions: HashMap<SecretHash, LoginTransaction>,
    consents: HashMap<(String, String, String), ConsentRecord>,
    /// Sealed successors of rotated refresh tokens (issue: replay inside the grace window).
    successors: HashMap<SecretHash, (UnixTime, Vec<u8>)>,
    users: HashMap<String, UserRecord>,
    throttle: throttle::ThrottleState,
}

/// The in-memory backend. Cloning shares the same data.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    /// Single-use claims and the document cache: the provider API's in-process implementation,
    /// shared by every server built on this store (clones included).
    shared: Arc<LocalSharedState>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// All parts of this backend as a [`Storage`].
    pub fn storage(&self) -> Storage {
        let store = Arc::new(self.clone());
        Storage::from_one(store.clone())
            .with_users(store)
            .with_shared_state(self.shared.clone())
    }

    fn lock(&self) -> ProviderResult<MutexGuard<'_, State>> {
        // A poisoned lock means a panic mid-update; refuse rather than serve possibly torn state.
        self.state
            .lock()
            .map_err(|_| ProviderError::backend_msg("memory store lock poisoned"))
    }
}

/// Registers the backend as `[storage] kind = "memory"`.
pub struct MemoryFactory;

#[async_trait]
impl ProviderFactory for MemoryFactory {
    fn kind(&self) -> &'static str {
        "memory"
    }
    /// `[storage.memory]` has no settings.
    fn check_settings(&self, ctx: &FactoryContext) -> ProviderResult<()> {
        ctx.parse_settings::<NoSettings>().map(drop)
    }
    fn location(&self, _ctx: &FactoryContext) -> Option<String> {
        Some("in memory (nothing survives a restart)".into())
    }
    async fn open(&self, ctx: &FactoryContext) -> ProviderResult<Storage> {
        self.check_settings(ctx)?;
        Ok(MemoryStore::new().storage())
    }
    /// Nothing outlives the process, so a random key per start is enough.
    fn locality(&self) -> StoreLocality {
        StoreLocality::InProcess
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn get_client(&self, client_id: &str) -> ProviderResult<Option<Client>> {
        Ok(self.lock()?.clients.get(client_id).cloned())
    }
    async fn insert_client(&self, client: Client) -> ProviderResult<()> {
        let mut s = self.lock()?;
        if s.clients.contains_key(&client.client_id) {
            return Err(ProviderError::Conflict(format!(
                "client {} exists",
                client.client_id
            )));
        }
        s.clients.insert(client.client_id.clone(), client);
        Ok(())
    }
    async fn list_clients(&self) -> ProviderResult<Vec<Client>> {
        let mut v: Vec<Client> = self.lock()?.clients.values().cloned().collect();
        v.sort_by_key(|c| c.client_id_issued_at);
        Ok(v)
    }
    async fn delete_client(&self, client_id: &str) -> ProviderResult<bool> {
        let mut s = self.lock()?;
        s.client_last_used.remove(client_id);
        Ok(s.clients.remove(client_id).is_some())
    }
    async fn touch_client(&self, client_id: &str, at: UnixTime) -> ProviderResult<()> {
        let mut s = self.lock()?;
        if s.clients.contains_key(client_id) {
            let last = s
                .client_last_used
                .entry(client_id.to_string())
                .or_insert(at);
            *last = (*last).max(at);
        }
        Ok(())
    }
    async fn clients_last_used(&self) -> ProviderResult<HashMap<String, UnixTime>> {
        Ok(self.lock()?.client_last_used.clone())
    }
    async fn mark_client_approved(&self, client_id: &str, at: UnixTime) -> ProviderResult<()> {
        if let Some(c) = self.lock()?.clients.get_mut(client_id) {
            c.approved_at.get_or_insert(at);
        }
        Ok(())
    }
    async fn purge_unused_clients(&self, registered_before: UnixTime) -> ProviderResult<u64> {
        let mut s = self.lock()?;
        let before = s.clients.len();
        s.clients.retain(|_, c| {
            c.origin != ClientOrigin::Registration
                || c.approved_at.is_some()
                || c.client_id_issued_at >= registered_before
        });
        Ok((before - s.clients.len()) as u64)
    }
}

impl State {
    fn family_revoked(&self, family_id: &str) -> bool {
        self.revoked_families.contains_key(family_id)
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn insert_code(&self, code: AuthorizationCode) -> ProviderResult<()> {
        let mut s = self.lock()?;
        let used = s.family_revoked(&code.family_id);
        s.codes.insert(code.code_hash.clone(), (code, used));
        Ok(())
    }

    async fn take_code(&self, code_hash: &SecretHash) -> ProviderResult<CodeRedemption> {
        let mut s = self.lock()?;
        Ok(match s.codes.get_mut(code_hash) {
            None => CodeRedemption::Unknown,
            Some((code, used)) if *used => CodeRedemption::Replayed {
                family_id: code.family_id.clone(),
            },
            Some((code, used)) => {
                *used = true;
                CodeRedemption::Redeemed(code.clone())
            }
        })
    }

    async fn insert_tokens(
        &self,
        mut access: AccessTokenRecord,
        refresh: Option<RefreshTokenRecord>,
    ) -> ProviderResult<()> {
        let mut s = self.lock()?;
        let revoked = s.family_revoked(&access.family_id);
        access.revoked |= revoked;
        s.access.insert(access.jti.clone(), access);
        if let Some(mut r) = refresh {
            if s.family_revoked(&r.family_id) {
                r.state = RefreshTokenState::Revoked;
            }
            s.refresh.insert(r.token_hash.clone(), r);
        }
        Ok(())
    }

    async fn get_access_token(&self, jti: &str) -> ProviderResult<Option<AccessTokenRecord>> {
        Ok(self.lock()?.access.get(jti).cloned())
    }

    async fn get_refresh_token(
        &self,
        token_hash: &SecretHash,
    ) -> ProviderResult<Option<RefreshTokenRecord>> {
        Ok(self.lock()?.refresh.get(token_hash).cloned())
    }

    async fn rotate_refresh_token(&self, req: RotateRefreshToken) -> ProviderResult<Rotation> {
        let mut s = self.lock()?;
        let Some(old) = s.refresh.get(&req.old_hash).cloned() else {
            return Ok(Rotation::Unknown);
        };
        if old.expires_at <= req.now || s.family_revoked(&old.family_id) {
            return Ok(Rotation::Unknown);
        }
        match old.state {
            RefreshTokenState::Revoked => return Ok(Rotation::Unknown),
            RefreshTokenState::Rotated { at } if at < req.reuse_grace_since => {
                return Ok(Rotation::Reused(old));
            }
            RefreshTokenState::Rotated { .. } => {
                return Ok(match s.successors.get(&req.old_hash) {
                    Some((_, sealed)) => Rotation::Replayed {
                        old,
                        sealed_successor: sealed.clone(),
                    },
                    None => Rotation::Reused(old),
                });
            }
            RefreshTokenState::Active => {
                if let Some(r) = s.refresh.get_mut(&req.old_hash) {
                    r.state = RefreshTokenState::Rotated { at: req.now };
                }
                s.successors
                    .insert(req.old_hash.clone(), (req.now, req.sealed_successor));
            }
        }
        s.access.insert(req.new_access.jti.clone(), req.new_access);
        s.refresh
            .insert(req.new_refresh.token_hash.clone(), req.new_refresh);
        Ok(Rotation::Rotated(old))
    }

    async fn revoke(&self, target: RevokeTarget) -> ProviderResult<bool> {
        let mut s = self.lock()?;
        Ok(match target {
            RevokeTarget::AccessToken { jti } => match s.access.get_mut(&jti) {
                Some(a) => {
                    a.revoked = true;
                    true
                }
                None => false,
            },
            RevokeTarget::RefreshToken { token_hash } => match s.refresh.get_mut(&token_hash) {
                Some(r) => {
                    r.state = RefreshTokenState::Revoked;
                    true
                }
                None => false,
            },
        })
    }

    async fn revoke_family(&self, family_id: &str, remember_until: UnixTime) -> ProviderResult<()> {
        let mut s = self.lock()?;
        let until = s
            .revoked_families
            .get(family_id)
            .copied()
            .unwrap_or(remember_until)
            .max(remember_until);
        s.revoked_families.insert(family_id.to_string(), until);
        for (code, used) in s.codes.values_mut() {
            if code.family_id == family_id {
                *used = true;
            }
        }
        for a in s.access.values_mut() {
            if a.family_id == family_id {
                a.revoked = true;
            }
        }
        for r in s.refresh.values_mut() {
            if r.family_id == family_id {
                r.state = RefreshTokenState::Revoked;
            }
        }
        Ok(())
    }

    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<PurgeCounts> {
        let mut s = self.lock()?;
        let (c, a, r) = (s.codes.len(), s.access.len(), s.refresh.len());
        s.codes.retain(|_, (code, _)| code.expires_at > now);
        s.access.retain(|_, t| t.expires_at > now);
        s.refresh.retain(|_, t| t.expires_at > now);
        s.revoked_families.retain(|_, until| *until > now);
        let State {
            refresh,
            successors,
            ..
        } = &mut *s;
        successors.retain(|hash, _| refresh.contains_key(hash));
        Ok(PurgeCounts {
            codes: (c - s.codes.len()) as u64,
            access_tokens: (a - s.access.len()) as u64,
            refresh_tokens: (r - s.refresh.len()) as u64,
        })
    }

    async fn clear_successors(&self, rotated_before: UnixTime) -> ProviderResult<u64> {
        let mut s = self.lock()?;
        let before = s.successors.len();
        s.successors.retain(|_, (at, _)| *at >= rotated_before);
        Ok((before - s.successors.len()) as u64)
    }

    async fn list_grants(
        &self,
        filter: &GrantFilter,
        now: UnixTime,
    ) -> ProviderResult<Vec<GrantSummary>> {
        let s = self.lock()?;
        let mut grants: HashMap<String, GrantSummary> = HashMap::new();
        let live_access = s
            .access
            .values()
            .filter(|a| !a.revoked && a.expires_at > now)
            .map(|a| {
                (
                    &a.family_id,
                    &a.client_id,
                    &a.subject,
                    &a.resource,
                    a.issued_at,
                    a.expires_at,
                    false,
                )
            });
        let live_refresh = s
            .refresh
            .values()
            .filter(|r| r.state == RefreshTokenState::Active && r.expires_at > now)
            .map(|r| {
                (
                    &r.family_id,
                    &r.client_id,
                    &r.subject,
                    &r.resource,
                    r.issued_at,
                    r.expires_at,
                    true,
                )
            });
        for (family, client, subject, resource, issued, expires, refreshable) in
            live_access.chain(live_refresh)
        {
            if !matches_filter(filter, subject, client) || s.family_revoked(family) {
                continue;
            }
            let g = grants
                .entry(family.clone())
                .or_insert_with(|| GrantSummary {
                    family_id: family.clone(),
                    client_id: client.clone(),
                    subject: subject.clone(),
                    resource: resource.clone(),
                    issued_at: issued,
                    expires_at: expires,
                    refreshable,
                });
            g.issued_at = g.issued_at.min(issued);
            g.expires_at = g.expires_at.max(expires);
            g.refreshable |= refreshable;
        }
        let mut out: Vec<GrantSummary> = grants.into_values().collect();
        out.sort_by(|a, b| {
            a.issued_at
                .cmp(&b.issued_at)
                .then_with(|| a.family_id.cmp(&b.family_id))
        });
        Ok(out)
    }

    async fn revoke_grants(
        &self,
        filter: &GrantFilter,
        remember_until: UnixTime,
    ) -> ProviderResult<u64> {
        if filter.subject.is_none() && filter.client_id.is_none() {
            return Err(ProviderError::Unsupported(
                "revoking grants needs a subject or a client".into(),
            ));
        }
        let families: std::collections::HashSet<String> = {
            let s = self.lock()?;
            s.codes
                .values()
                .map(|(c, _)| (&c.family_id, &c.subject, &c.client_id))
                .chain(
                    s.access
                        .values()
                        .map(|a| (&a.family_id, &a.subject, &a.client_id)),
                )
                .chain(
                    s.refresh
                        .values()
                        .map(|r| (&r.family_id, &r.subject, &r.client_id)),
                )
                .filter(|(_, subject, client)| matches_filter(filter, subject, client))
                .map(|(f, _, _)| f.clone())
                .collect()
        };
        for family in &families {
            self.revoke_family(family, remember_until).await?;
        }
        Ok(families.len() as u64)
    }
}

fn matches_filter(filter: &GrantFilter, subject: &str, client_id: &str) -> bool {
    filter.subject.as_deref().is_none_or(|s| s == subject)
        && filter.client_id.as_deref().is_none_or(|c| c == client_id)
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn list_keys(&self) -> ProviderResult<Vec<SigningKeyRecord>> {
        let mut keys = self.lock()?.keys.clone();
        keys.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.kid.cmp(&a.kid))
        });
        Ok(keys)
    }
    async fn insert_key(&self, key: SigningKeyRecord) -> ProviderResult<()> {
        let mut s = self.lock()?;
        if s.keys.iter().any(|k| k.kid == key.kid) {
            return Err(ProviderError::Conflict(format!("key {} exists", key.kid)));
        }
        if key.active {
            for k in &mut s.keys {
                k.active = false;
            }
        }
        s.keys.push(key);
        Ok(())
    }
    async fn activate_key(&self, kid: &str, retire_previous_at: UnixTime) -> ProviderResult<bool> {
        let mut s = self.lock()?;
        if !s.keys.iter().any(|k| k.kid == kid) {
            return Ok(false);
        }
        for k in &mut s.keys {
            if k.kid == kid {
                k.active = true;
                k.retire_at = None;
            } else if k.active {
                k.active = false;
                k.retire_at = Some(retire_previous_at);
            }
        }
        Ok(true)
    }
    async fn delete_key(&self, kid: &str) -> ProviderResult<bool> {
        let mut s = self.lock()?;
        let before = s.keys.len();
        s.keys.retain(|k| k.kid != kid);
        Ok(s.keys.len() != before)
    }
}

#[async_trait]
impl InteractionStore for MemoryStore {
    async fn insert_transaction(&self, tx: LoginTransaction) -> ProviderResult<()> {
        self.lock()?.transactions.insert(tx.id_hash.clone(), tx);
        Ok(())
    }
    async fn get_transaction(
        &self,
        id_hash: &SecretHash,
    ) -> ProviderResult<Option<LoginTransaction>> {
        Ok(self.lock()?.transactions.get(id_hash).cloned())
    }
    async fn set_transaction_user(
        &self,
        id_hash: &SecretHash,
        user: AuthenticatedUser,
    ) -> ProviderResult<bool> {
        Ok(match self.lock()?.transactions.get_mut(id_hash) {
            Some(tx) => {
                tx.user = Some(user);
                true
            }
            None => false,
        })
    }
    async fn take_transaction(
        &self,
        id_hash: &SecretHash,
    ) -> ProviderResult<Option<LoginTransaction>> {
        Ok(self.lock()?.transactions.remove(id_hash))
    }
    async fn remember_consent(&self, consent: ConsentRecord) -> ProviderResult<()> {
        self.lock()?.consents.insert(
            (
                consent.subject.clone(),
                consent.client_id.clone(),
                consent.resource.clone(),
            ),
            consent,
        );
        Ok(())
    }
    async fn get_consent(
        &self,
        subject: &str,
        client_id: &str,
        resource: &str,
        now: UnixTime,
    ) -> ProviderResult<Option<ConsentRecord>> {
        Ok(self
            .lock()?
            .consents
            .get(&(
                subject.to_string(),
                client_id.to_string(),
                resource.to_string(),
            ))
            .filter(|c| c.expires_at > now)
            .cloned())
    }
    async fn forget_consents(&self, subject: &str) -> ProviderResult<u64> {
        let mut s = self.lock()?;
        let before = s.consents.len();
        s.consents.retain(|(sub, _, _), _| sub != subject);
        Ok((before - s.consents.len()) as u64)
    }
    async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64> {
        let mut s = self.lock()?;
        let before = s.transactions.len() + s.consents.len();
        s.transactions.retain(|_, tx| tx.expires_at > now);
        s.consents.retain(|_, c| c.expires_at > now);
        Ok((before - s.transactions.len() - s.consents.len()) as u64)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn get_user(&self, username: &str) -> ProviderResult<Option<UserRecord>> {
        Ok(self.lock()?.users.get(username).cloned())
    }
    async fn get_user_by_subject(&self, subject: &str) -> ProviderResult<Option<UserRecord>> {
        Ok(self
            .lock()?
            .users
            .values()
            .find(|u| u.subject == subject)
            .cloned())
    }
    async fn insert_user(&self, user: UserRecord) -> ProviderResult<()> {
        let mut s = self.lock()?;
        if s.users.contains_key(&user.username) {
            return Err(ProviderError::Conflict(format!(
                "user {} exists",
                user.username
            )));
        }
        s.users.insert(user.username.clone(), user);
        Ok(())
    }
    async fn list_users(&self) -> ProviderResult<Vec<UserRecord>> {
        let mut v: Vec<UserRecord> = self.lock()?.users.values().cloned().collect();
        v.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(v)
    }
    async fn set_password_hash(&self, username: &str, password_hash: &str) -> ProviderResult<bool> {
        Ok(match self.lock()?.users.get_mut(username) {
            Some(u) => {
                u.password_hash = password_hash.to_string();
                true
            }
            None => false,
        })
    }
    async fn delete_user(&self, username: &str) -> ProviderResult<bool> {
        Ok(self.lock()?.users.remove(username).is_some())
    }
}

#[cfg(test)]
mod kit_catches_broken_stores;

#[cfg(test)]
mod conformance {
    mcp_oauth_provider::storage_conformance_tests!(async { crate::MemoryStore::new().storage() });
}
