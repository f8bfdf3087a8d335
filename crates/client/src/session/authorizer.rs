//! The authorizer: everything that turns "I want to talk to this MCP server" into a valid bearer
//! token (the original project's `async_auth_flow` and OAuth client provider).
//!
//! - A stored, fresh token is used as is (MCP *Token Requirements*: `Authorization: Bearer` on
//!   every request).
//! - Before expiry (with skew) and once after a 401, it refreshes (OAuth 2.1 §4.3) with RFC 8707
//!   `resource`, safely across processes: take the record's lock, re-read the record, use the
//!   tokens a sibling already rotated or refresh and write, release. A failed refresh re-reads the
//!   store before giving up and never deletes what a sibling stored.
//! - When refresh is impossible it logs in again (discovery, registration, PKCE, callback), where
//!   the [`LoginMode`] allows it.
//! - On 403 `insufficient_scope` it steps up (MCP *Step-Up Authorization Flow*): re-authorizes
//!   with the union of held and required scopes, at most `max_step_ups` times in a row.
//! - `logout` revokes (RFC 7009) and deletes the records.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use url::Url;

use crate::callback::{CallbackServer, DEFAULT_TIMEOUT};
use crate::discovery::{self, Challenge, Discovered};
use crate::error::{Error, Result};
use crate::flow::authorize::AuthorizationRequest;
use crate::flow::token;
use crate::login::{LoginMode, browser, headless};
use crate::registration::{self, ClientRegistration, RegistrationOptions, RegistrationSource};
use crate::secret::{Secret, unix_now};
use crate::store::{Record, RecordKey, RecordLock, TokenStore, Tokens};
use crate::urls::{UrlPolicy, canonical_server_url, canonical_string};

/// How the authorizer behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub login: LoginMode,
    /// Scopes to ask for instead of the discovered ones (`--scope`).
    pub scopes: Option<Vec<String>>,
    pub registration: RegistrationOptions,
    /// 0 = ephemeral.
    pub callback_port: u16,
    pub callback_timeout: Duration,
    pub policy: UrlPolicy,
    /// Refresh this many seconds before expiry (capped at half the token lifetime).
    pub refresh_skew_secs: i64,
    /// Step-up re-authorizations before giving up.
    pub max_step_ups: u32,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            login: LoginMode::Browser { open: true },
            scopes: None,
            registration: RegistrationOptions::default(),
            callback_port: 0,
            callback_timeout: DEFAULT_TIMEOUT,
            policy: UrlPolicy::STRICT,
            refresh_skew_secs: 60,
            max_step_ups: 3,
        }
    }
}

/// What `logout` did.
#[derive(Debug, Default)]
pub struct LogoutReport {
    /// Tokens revoked at the authorization server.
    pub revoked: usize,
    /// Records deleted.
    pub deleted: usize,
    /// What could not be done (revocation failures); the records are deleted regardless.
    pub warnings: Vec<String>,
}

/// Obtains, keeps and renews the authorization for one MCP server. Cheap to clone; clones share
/// state.
#[derive(Clone)]
pub struct Authorizer {
    inner: Arc<Inner>,
}

struct Inner {
    server: Url,
    server_key: String,
    http: reqwest::Client,
    store: Arc<dyn TokenStore>,
    opts: ClientOptions,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    record: Option<Record>,
    step_ups: u32,
    last_challenge: Option<Challenge>,
}

impl Authorizer {
    /// An authorizer for the MCP server at `server_url` (canonicalised: RFC 8707 `resource`).
    pub fn new(server_url: &str, store: Arc<dyn TokenStore>, opts: ClientOptions) -> Result<Self> {
        let server = canonical_server_url(server_url)?;
        opts.policy.check_url(&server)?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| Error::Usage(format!("cannot build an HTTP client: {e}")))?;
        Ok(Authorizer {
            inner: Arc::new(Inner {
                server_key: canonical_string(&server),
                server,
                http,
                store,
                opts,
                state: tokio::sync::Mutex::new(State::default()),
            }),
        })
    }

    /// The canonical server URL.
    pub fn server(&self) -> &str {
        &self.inner.server_key
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// The record in use (after a login or a load), for display.
    pub async fn record(&self) -> Result<Option<Record>> {
        let mut st = self.inner.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        Ok(st.record.clone())
    }

    /// Logs in now (discovery, registration, authorization code with PKCE), whatever is stored.
    pub async fn login(&self) -> Result<Record> {
        let mut st = self.inner.state.lock().await;
        self.login_locked(&mut st, None, None).await?;
        st.record
            .clone()
            .ok_or_else(|| Error::Usage("the login stored no record".into()))
    }

    /// A valid access token: the stored one, a refreshed one, or one from a new login.
    pub async fn access_token(&self) -> Result<Secret> {
        let mut st = self.inner.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        let tokens = st.record.as_ref().and_then(|r| r.tokens.clone());
        match tokens {
            None => self.login_or_fail(&mut st, None, None).await,
            Some(t) if t.needs_refresh(unix_now(), self.inner.opts.refresh_skew_secs) => {
                self.refresh_locked(&mut st, Some(&t.access_token)).await
            }
            Some(t) => Ok(t.access_token),
        }
    }

    /// After a 401 for `sent`: a sibling's newer token, a refresh, or a new login.
    pub async fn handle_unauthorized(
        &self,
        sent: Option<&str>,
        www_authenticate: &str,
    ) -> Result<Secret> {
        let challenge = Challenge::parse(www_authenticate);
        let mut st = self.inner.state.lock().await;
        st.last_challenge = Some(challenge.clone());
        self.ensure_loaded(&mut st).await?;
        let has_tokens = st.record.as_ref().is_some_and(|r| r.tokens.is_some());
        if !has_tokens {
            return self.login_or_fail(&mut st, None, Some(challenge)).await;
        }
        let sent = sent.map(Secret::new);
        self.refresh_locked(&mut st, sent.as_ref()).await
    }

    /// After a 403 `insufficient_scope`: re-authorize with held ∪ required scopes.
    pub async fn handle_insufficient_scope(&self, www_authenticate: &str) -> Result<Secret> {
        let challenge = Challenge::parse(www_authenticate);
        let mut st = self.inner.state.lock().await;
        let Some(required) = challenge
            .scope
            .clone()
            .filter(|_| challenge.is_insufficient_scope())
        else {
            return Err(Error::Mcp {
                server: self.inner.server_key.clone(),
                reason: format!(
                    "the server refused the request (HTTP 403{}) without naming the scopes it \
                     needs, so stepping up cannot help. Ask its administrator for access",
                    challenge
                        .error
                        .as_deref()
                        .map(|e| format!(" {e}"))
                        .unwrap_or_default()
                ),
            });
        };
        let mut scopes = st
            .record
            .as_ref()
            .and_then(|r| r.tokens.as_ref())
            .map(|t| t.scopes.clone())
            .unwrap_or_default();
        for s in required {
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        if st.step_ups >= self.inner.opts.max_step_ups {
            let attempts = st.step_ups;
            st.step_ups = 0;
            return Err(Error::StepUpExhausted {
                server: self.inner.server_key.clone(),
                attempts,
                scopes: scopes.join(" "),
            });
        }
        st.step_ups += 1;
        tracing::info!(attempt = st.step_ups, scopes = %scopes.join(" "), "stepping up authorization");
        self.login_or_fail(&mut st, Some(scopes), Some(challenge))
            .await
    }

    /// A request went through: the step-up budget starts again.
    pub async fn note_success(&self) {
        self.inner.state.lock().await.step_ups = 0;
    }

    /// Revokes what can be revoked (RFC 7009) and deletes every record of this server.
    pub async fn logout(&self) -> Result<LogoutReport> {
        let mut report = LogoutReport::default();
        let server = self.inner.server_key.clone();
        let found = self.blocking(move |s| s.find(&server)).await;
        match found {
            Ok(records) => {
                for rec in records {
                    self.revoke_record(&rec, &mut report).await;
                }
            }
            Err(e) => report
                .warnings
                .push(format!("{e}; deleting it without revoking")),
        }
        let server = self.inner.server_key.clone();
        report.deleted = self.blocking(move |s| s.delete_server(&server)).await?;
        self.inner.state.lock().await.record = None;
        Ok(report)
    }

    async fn revoke_record(&self, rec: &Record, report: &mut LogoutReport) {
        let (Some(reg), Some(tokens)) = (&rec.registration, &rec.tokens) else {
            return;
        };
        if rec.auth_server.revocation_endpoint.is_none() {
            report.warnings.push(format!(
                "{} has no revocation endpoint; the tokens stay valid there until they expire",
                rec.key.issuer
            ));
            return;
        }
        // Refresh token first: revoking it ends the grant (RFC 7009 §2.1).
        let mut list: Vec<(&Secret, &'static str)> = Vec::new();
        if let Some(rt) = &tokens.refresh_token {
            list.push((rt, "refresh_token"));
        }
        list.push((&tokens.access_token, "access_token"));
        for (tok, hint) in list {
            match token::revoke(&self.inner.http, &rec.auth_server, reg, tok, hint).await {
                Ok(true) => report.revoked += 1,
                Ok(false) => {}
                Err(e) => report.warnings.push(format!("revoking the {hint}: {e}")),
            }
        }
    }

    // ----- internals -------------------------------------------------------------------------

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn TokenStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(&self.inner.store);
        tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| Error::Usage(format!("the token store task failed: {e}")))?
    }

    async fn lock(&self, key: &RecordKey) -> Result<Box<dyn RecordLock>> {
        let key = key.clone();
        self.blocking(move |s| s.lock(&key)).await
    }

    async fn load(&self, key: &RecordKey) -> Result<Option<Record>> {
        let key = key.clone();
        self.blocking(move |s| s.load(&key)).await
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let record = record.clone();
        self.blocking(move |s| s.save(&record)).await
    }

    async fn ensure_loaded(&self, st: &mut State) -> Result<()> {
        if st.record.is_none() {
            let server = self.inner.server_key.clone();
            st.record = self
                .blocking(move |s| s.find(&server))
                .await?
                .into_iter()
                .next();
        }
        Ok(())
    }

    async fn login_or_fail(
        &self,
        st: &mut State,
        scopes: Option<Vec<String>>,
        challenge: Option<Challenge>,
    ) -> Result<Secret> {
        if matches!(self.inner.opts.login, LoginMode::Never) {
            return Err(Error::LoginRequired {
                server: self.inner.server_key.clone(),
            });
        }
        self.login_locked(st, scopes, challenge).await
    }

    /// Cross-process refresh. `stale` is the token the caller holds (or sent and saw rejected).
    async fn refresh_locked(&self, st: &mut State, stale: Option<&Secret>) -> Result<Secret> {
        let Some(key) = st.record.as_ref().map(|r| r.key.clone()) else {
            return self.login_or_fail(st, None, None).await;
        };
        let skew = self.inner.opts.refresh_skew_secs;
        // 1. take the lock
        let guard = self.lock(&key).await?;
        // 2. re-read
        let Some(mut fresh) = self.load(&key).await? else {
            drop(guard);
            st.record = None;
            return self.login_or_fail(st, None, None).await;
        };
        // 3. a sibling already rotated: use its tokens
        if let Some(t) = &fresh.tokens
            && Some(&t.access_token) != stale
            && !t.needs_refresh(unix_now(), skew)
        {
            tracing::debug!("using tokens another process refreshed");
            let tok = t.access_token.clone();
            st.record = Some(fresh);
            return Ok(tok);
        }
        let (Some(reg), Some(tokens)) = (fresh.registration.clone(), fresh.tokens.clone()) else {
            drop(guard);
            st.record = Some(fresh);
            return self.login_or_fail(st, None, None).await;
        };
        if tokens.refresh_token.is_none() {
            drop(guard);
            st.record = Some(fresh);
            return self.login_or_fail(st, None, None).await;
        }
        // 4. refresh and write
        let result = token::refresh(
            &self.inner.http,
            &fresh.auth_server,
            &reg,
            &tokens,
            &self.inner.server_key,
        )
        .await;
        match result {
            Ok(new) => {
                let tok = new.access_token.clone();
                fresh.tokens = Some(new);
                fresh.updated_at = unix_now();
                self.save(&fresh).await?;
                drop(guard);
                tracing::info!(server = %self.inner.server_key, "refreshed the access token");
                st.record = Some(fresh);
                Ok(tok)
            }
            Err(err) => {
                // Re-read before giving up: a process that does not share our lock may have
                // stored newer tokens; those are used, never deleted.
                if let Some(again) = self.load(&key).await?
                    && let Some(t) = &again.tokens
                    && t.access_token != tokens.access_token
                    && !t.needs_refresh(unix_now(), skew)
                {
                    let tok = t.access_token.clone();
                    st.record = Some(again);
                    return Ok(tok);
                }
                if err.is_invalid_client() && reg.source == RegistrationSource::Dynamic {
                    // The server forgot the client: drop the registration (and the tokens bound
                    // to it); the login registers again.
                    tracing::info!(
                        "the authorization server no longer knows this client; registering again"
                    );
                    fresh.registration = None;
                    fresh.tokens = None;
                    fresh.updated_at = unix_now();
                    self.save(&fresh).await?;
                    drop(guard);
                    st.record = Some(fresh);
                    return self.login_or_fail(st, None, None).await;
                }
                drop(guard);
                if err.is_invalid_grant() || err.is_invalid_client() {
                    tracing::info!("the refresh token was refused; a new login is needed");
                    st.record = Some(fresh);
                    return self.login_or_fail(st, None, None).await;
                }
                Err(err)
            }
        }
    }

    /// The whole authorization: discovery, registration, PKCE, the user's login, code exchange.
    async fn login_locked(
        &self,
        st: &mut State,
        scopes: Option<Vec<String>>,
        challenge: Option<Challenge>,
    ) -> Result<Secret> {
        let opts = &self.inner.opts;
        let disc: Discovered = discovery::discover(
            &self.inner.http,
            &self.inner.server,
            challenge.or_else(|| st.last_challenge.clone()),
            opts.policy,
        )
        .await?;
        let key = RecordKey {
            server: self.inner.server_key.clone(),
            issuer: disc.auth_server.issuer.clone(),
        };
        let existing = self.load(&key).await?;
        let mut scopes = scopes
            .or_else(|| opts.scopes.clone())
            .unwrap_or_else(|| disc.initial_scopes());
        if disc.auth_server.advertises_scope("offline_access")
            && !scopes.iter().any(|s| s == "offline_access")
        {
            scopes.push("offline_access".into());
        }
        let mut stored_reg: Option<ClientRegistration> =
            existing.as_ref().and_then(|r| r.registration.clone());
        let mut retried = false;
        loop {
            let reg_was_stored = stored_reg.is_some() && opts.registration.client_id.is_none();
            let mut cb = CallbackServer::start(opts.callback_port).await?;
            let redirect = cb.redirect_uri();
            let reg = registration::obtain(
                &self.inner.http,
                &disc.auth_server,
                &opts.registration,
                &redirect,
                stored_reg.take(),
                opts.policy,
            )
            .await?;
            let request = AuthorizationRequest::new(
                &disc.auth_server,
                &reg.client_id,
                &redirect,
                &self.inner.server_key,
                &scopes,
                opts.policy,
            )?;
            cb.expect_state(&request.state);
            let outcome = self.user_login(&mut cb, &request).await;
            let exchanged = match outcome {
                Ok(cb_result) => {
                    let code = request.accept(&cb_result)?;
                    token::exchange_code(&self.inner.http, &disc.auth_server, &reg, &request, &code)
                        .await
                }
                Err(e) => Err(e),
            };
            match exchanged {
                Ok(tokens) => {
                    return self.store_login(st, key, &disc, reg, tokens).await;
                }
                // A stored registration the server no longer knows: dropped and redone once.
                Err(e)
                    if !retried
                        && reg_was_stored
                        && reg.source == RegistrationSource::Dynamic
                        && (e.is_invalid_client()
                            || matches!(e, Error::AuthorizationRefused(_))) =>
                {
                    tracing::info!("the stored registration was refused; registering again");
                    retried = true;
                    stored_reg = None;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The user's part: browser or headless; returns the callback.
    async fn user_login(
        &self,
        cb: &mut CallbackServer,
        request: &AuthorizationRequest,
    ) -> Result<crate::callback::CallbackResult> {
        let opts = &self.inner.opts;
        opts.policy.check_url(&request.url)?;
        match &opts.login {
            LoginMode::Headless { username, password } => {
                headless::run(
                    &request.url,
                    &request.redirect_uri,
                    username,
                    password,
                    opts.policy,
                )
                .await?;
                Ok(cb
                    .wait(Duration::from_secs(10).min(opts.callback_timeout))
                    .await?)
            }
            LoginMode::Browser { open } => {
                browser::show(&request.url, *open);
                let stop = CancellationToken::new();
                browser::spinner(stop.clone());
                let r = cb.wait(opts.callback_timeout).await;
                stop.cancel();
                Ok(r?)
            }
            LoginMode::Never => Err(Error::LoginRequired {
                server: self.inner.server_key.clone(),
            }),
        }
    }

    async fn store_login(
        &self,
        st: &mut State,
        key: RecordKey,
        disc: &Discovered,
        reg: ClientRegistration,
        tokens: Tokens,
    ) -> Result<Secret> {
        let tok = tokens.access_token.clone();
        let record = Record {
            key: key.clone(),
            auth_server: disc.auth_server.clone(),
            registration: Some(reg),
            tokens: Some(tokens),
            updated_at: unix_now(),
        };
        let guard = self.lock(&key).await?;
        self.save(&record).await?;
        drop(guard);
        tracing::info!(server = %key.server, issuer = %key.issuer, "logged in");
        st.record = Some(record);
        Ok(tok)
    }
}
