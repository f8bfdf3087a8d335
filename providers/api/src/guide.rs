//! # Writing a plugin
//!
//! `mcp-oauth` is one binary whose parts are chosen in config: where clients, codes, tokens and keys
//! are stored (`[storage] kind`), how users sign in (`[users] kind`), and the decisions a deployment
//! makes differently (`[policy] kind`). Each kind is a *factory* registered by name; the built-in
//! ones (`sqlite`, `postgres`, `memory`, `local`, `ldap`, `standard`) are registered exactly the way
//! yours will be. Plugins are compiled in: you write a small binary that registers your factories and
//! hands over to the stock command line, so your users get every command (`serve`, `migrate`,
//! `users`, `clients`, `config check`, …) unchanged.
//!
//! What a plugin may and may not do: the core owns every protocol rule (PKCE, redirect-URI
//! matching, single-use codes, refresh rotation, audience binding, the sign-in throttle). A plugin
//! only stores, authenticates, or decides, and a policy can only *narrow* what the core allows.
//!
//! ## 1. A user authenticator
//!
//! Implement [`UserAuthenticator`](crate::UserAuthenticator): `authenticate` checks a username and
//! password, `check_subject` says at every refresh whether a user signed in earlier may keep their
//! grants, and the optional `check_health` tells the server's readiness probe (`GET /readyz`)
//! whether the directory can be reached. Its contract matters for security:
//!
//! - unknown user and wrong password MUST look the same ([`AuthOutcome::Rejected`](crate::AuthOutcome)),
//!   in result and, as far as you can, in time (check a dummy secret for unknown users);
//! - an empty password MUST be rejected without asking any backend;
//! - a directory that cannot be reached is [`ProviderError::Unavailable`](crate::ProviderError), never
//!   `Rejected` (the user sees "try again", not "wrong password");
//! - CPU-heavy checks (argon2, bcrypt) run on the server's bounded pool,
//!   [`FactoryContext::hashing`](crate::FactoryContext), never on the async workers;
//! - nothing logs the password.
//!
//! Then a [`UserAuthenticatorFactory`](crate::UserAuthenticatorFactory) builds it from its own
//! config table, `[users.<kind>]`. Parse the table with
//! [`FactoryContext::parse_settings`](crate::FactoryContext::parse_settings) into a struct with
//! `#[serde(deny_unknown_fields)]`: a typo then stops `serve` and `config check` with a message naming
//! the section and the key. `build` MUST NOT connect anywhere (a directory that is down at start must
//! not stop the server).
//!
//! ### Signing in at an upstream identity provider
//!
//! An authenticator may instead (or as well) send users to an identity provider they already use:
//! implement [`UpstreamAuthenticator`](crate::UpstreamAuthenticator) and offer it from
//! [`UserAuthenticator::upstreams`](crate::UserAuthenticator::upstreams) (answer `false` from
//! `accepts_passwords` when there is no password form). The login page shows one button per
//! upstream. The core generates and checks `state`, binds the sign-in to the login transaction and
//! the browser, refuses answers at another upstream's callback, and shows upstream errors on its own
//! page; the upstream builds the authorization URL from the core's `state`, `nonce` and PKCE
//! challenge, and on the callback `<issuer>/login/callback/<name>` redeems the code and answers the
//! same [`AuthenticatedUser`](crate::AuthenticatedUser), or
//! [`UpstreamOutcome::Refused`](crate::UpstreamOutcome) with a reason the user may read. Its tokens
//! never leave it. The built-in `oidc` kind (crate `mcp-oauth-provider-oidc`) is a complete example.
//!
//! An upstream can also stand on its own, beside whatever `[users]` is: implement
//! [`UpstreamFactory`](crate::UpstreamFactory) and register it with
//! `Registry::builtin().with_upstream(MyUpstreamFactory)`; operators then configure any number of
//! `[upstreams.<name>] kind = "<your kind>"` tables (the name is the table's key, your factory gets
//! the rest of the table). Its users' subjects start with `<name>:`. To have them judged again at
//! every refresh, answer [`UpstreamOutcome::AuthenticatedWithFacts`](crate::UpstreamOutcome) with
//! what your allow-list reads of the user; the core keeps those facts and hands them back to
//! [`UpstreamAuthenticator::check_subject`](crate::UpstreamAuthenticator::check_subject), which
//! answers `Gone` for a user your current settings no longer admit (the built-in `oidc`, `oauth2`
//! and `github` kinds do).
//!
//! ## 2. A policy
//!
//! Implement [`Policy`](crate::Policy); every hook has a safe default, so override only what you
//! need: `grantable_scopes` (which scopes a user may grant a client), `token_lifetimes`,
//! `allow_registration` (refuse a dynamic registration, e.g. by redirect host) and
//! `allow_client_credentials` (which scopes a machine client receives). The core intersects every
//! answer with what it already allows. A [`PolicyFactory`](crate::PolicyFactory) builds it from
//! `[policy.<kind>]`.
//!
//! ## The complete example
//!
//! A directory of users and groups kept in the config table (for illustration only: a real plugin
//! reads hashes from a file or asks an existing service; see `providers/example-htpasswd` in the
//! repository), and a policy that admits only loopback redirect URIs and grants `mcp:admin` to the
//! `admins` group only.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//!
//! use async_trait::async_trait;
//! use mcp_oauth_provider::{
//!     AuthOutcome, AuthenticatedUser, Client, FactoryContext, HashingPool, Policy, PolicyFactory,
//!     ProviderResult, RegistrationRefusal, Storage, SubjectStatus, UserAuthenticator,
//!     UserAuthenticatorFactory,
//! };
//! use serde::Deserialize;
//!
//! /// `[users.team]`: `alice = { password = "…", groups = ["admins"] }`.
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct TeamSettings {
//!     members: BTreeMap<String, Member>,
//! }
//!
//! #[derive(Deserialize, Clone)]
//! #[serde(deny_unknown_fields)]
//! struct Member {
//!     password: String,
//!     #[serde(default)]
//!     groups: Vec<String>,
//! }
//!
//! struct Team {
//!     members: BTreeMap<String, Member>,
//!     hashing: HashingPool,
//! }
//!
//! /// Compares every byte whatever the first difference, so time does not tell how much matched.
//! fn same(a: &str, b: &str) -> bool {
//!     a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
//! }
//!
//! #[async_trait]
//! impl UserAuthenticator for Team {
//!     async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome> {
//!         if username.is_empty() || password.is_empty() {
//!             return Ok(AuthOutcome::Rejected);
//!         }
//!         let member = self.members.get(username).cloned();
//!         // Unknown users are compared too (against a value nobody knows), on the bounded pool.
//!         let expected = member.as_ref().map_or_else(|| "\u{0}".repeat(32), |m| m.password.clone());
//!         let given = password.to_string();
//!         let matches = self.hashing.run(move || same(&expected, &given)).await?;
//!         Ok(match (matches, member) {
//!             (true, Some(m)) => AuthOutcome::Authenticated(AuthenticatedUser {
//!                 subject: format!("team:{username}"),
//!                 username: username.to_string(),
//!                 display_name: None,
//!                 email: None,
//!                 groups: m.groups,
//!                 allowed_scopes: None,
//!             }),
//!             _ => AuthOutcome::Rejected,
//!         })
//!     }
//!
//!     async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
//!         let name = subject.strip_prefix("team:").unwrap_or_default();
//!         Ok(if self.members.contains_key(name) {
//!             SubjectStatus::Active { allowed_scopes: None }
//!         } else {
//!             SubjectStatus::Gone
//!         })
//!     }
//! }
//!
//! /// Registered as `[users] kind = "team"`.
//! struct TeamFactory;
//!
//! #[async_trait]
//! impl UserAuthenticatorFactory for TeamFactory {
//!     fn kind(&self) -> &'static str {
//!         "team"
//!     }
//!     async fn build(
//!         &self,
//!         ctx: &FactoryContext,
//!         _storage: &Storage, // only authenticators of the store's local accounts need it
//!     ) -> ProviderResult<Arc<dyn UserAuthenticator>> {
//!         let settings: TeamSettings = ctx.parse_settings()?;
//!         if settings.members.is_empty() {
//!             return Err(ctx.invalid("members: at least one member is needed"));
//!         }
//!         Ok(Arc::new(Team { members: settings.members, hashing: ctx.hashing.clone() }))
//!     }
//! }
//!
//! /// `[policy.loopback]`: no settings.
//! struct LoopbackOnly;
//!
//! #[async_trait]
//! impl Policy for LoopbackOnly {
//!     async fn allow_registration(&self, candidate: &Client) -> Result<(), RegistrationRefusal> {
//!         match candidate.redirect_uris.iter().find(|u| !u.starts_with("http://127.0.0.1")) {
//!             Some(uri) => Err(RegistrationRefusal::RedirectUri(format!("{uri} is not loopback"))),
//!             None => Ok(()),
//!         }
//!     }
//!     async fn grantable_scopes(
//!         &self,
//!         user: &AuthenticatedUser,
//!         _client: &Client,
//!         requested: &[String],
//!     ) -> Vec<String> {
//!         let admin = user.groups.iter().any(|g| g == "admins");
//!         requested.iter().filter(|s| admin || *s != "mcp:admin").cloned().collect()
//!     }
//! }
//!
//! struct LoopbackOnlyFactory;
//!
//! #[async_trait]
//! impl PolicyFactory for LoopbackOnlyFactory {
//!     fn kind(&self) -> &'static str {
//!         "loopback"
//!     }
//!     async fn build(&self, ctx: &FactoryContext) -> ProviderResult<Arc<dyn Policy>> {
//!         ctx.parse_settings::<mcp_oauth_provider::NoSettings>()?;
//!         Ok(Arc::new(LoopbackOnly))
//!     }
//! }
//!
//! // What the server does with them, in miniature:
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let table = serde_json::json!({
//!     "members": { "alice": { "password": "correct horse", "groups": ["admins"] },
//!                  "bob": { "password": "battery staple" } }
//! });
//! let team = Team {
//!     members: FactoryContext::new("users.team", table, ".".into())
//!         .parse_settings::<TeamSettings>()
//!         .unwrap()
//!         .members,
//!     hashing: HashingPool::new(1),
//! };
//! let AuthOutcome::Authenticated(alice) = team.authenticate("alice", "correct horse").await.unwrap()
//! else { panic!("alice signs in") };
//! // Unknown user and wrong password: the same answer.
//! assert!(matches!(team.authenticate("mallory", "x").await.unwrap(), AuthOutcome::Rejected));
//! assert!(matches!(team.authenticate("alice", "x").await.unwrap(), AuthOutcome::Rejected));
//! assert!(matches!(team.authenticate("alice", "").await.unwrap(), AuthOutcome::Rejected));
//!
//! // A typo in the table is an error naming the section and the key.
//! let typo = FactoryContext::new("users.team", serde_json::json!({ "memebers": {} }), ".".into());
//! let err = typo.parse_settings::<TeamSettings>().err().unwrap().to_string();
//! assert!(err.contains("[users.team]") && err.contains("memebers"));
//!
//! let policy = LoopbackOnlyFactory
//!     .build(&FactoryContext::new("policy.loopback", serde_json::Value::Null, ".".into()))
//!     .await
//!     .unwrap();
//! let requested = vec!["mcp:tools".to_string(), "mcp:admin".to_string()];
//! # let client = mcp_oauth_provider::Client {
//! #     client_id: "c".into(), client_secret_hash: None, client_secret_expires_at: None,
//! #     client_id_issued_at: 0, client_name: None, redirect_uris: vec!["https://app.example/cb".into()],
//! #     grant_types: vec![], response_types: vec![],
//! #     token_endpoint_auth_method: mcp_oauth_provider::TokenEndpointAuthMethod::None, scope: None,
//! #     extra_metadata: Default::default(), origin: mcp_oauth_provider::ClientOrigin::Registration,
//! #     approved_at: None, resource_server: false,
//! # };
//! assert_eq!(policy.grantable_scopes(&alice, &client, &requested).await, requested);
//! assert!(policy.allow_registration(&client).await.is_err(), "https://app.example is not loopback");
//! # }
//! ```
//!
//! ## 3. A storage backend
//!
//! A backend implements [`ClientStore`](crate::ClientStore), [`TokenStore`](crate::TokenStore),
//! [`KeyStore`](crate::KeyStore), [`InteractionStore`](crate::InteractionStore) and
//! [`SignInThrottleStore`](crate::SignInThrottleStore), and optionally
//! [`UserStore`](crate::UserStore) for local accounts; [`Storage::from_one`](crate::Storage::from_one)
//! (plus `with_users`, and `with_pool_gauge` to report a connection pool in the server's metrics)
//! bundles them. A backend that several servers share also implements
//! [`SharedStateStore`](crate::SharedStateStore) (`claim_once`, atomic across processes, and a
//! document cache) and adds it with `with_shared_state`; without it each server keeps that state
//! in its own process ([`LocalSharedState`](crate::LocalSharedState)), and a client assertion
//! replayed to another server is not caught. Each method's contract is on the method; the ones that carry the
//! security of the server are atomic: `take_code` (a code is redeemed once, whatever the race),
//! `rotate_refresh_token` (one winner; a family never branches), `revoke_family` (tokens a racing
//! request inserts later are born revoked), the throttle's `begin_check` and `claim_once`. Lookups return
//! `Ok(None)` for "not found", never an error; a backend that cannot be reached returns
//! `ProviderError::Unavailable` so the server answers 503 and retries. A store only stores: rules
//! that span two stores (deleting a client revokes its grants, deleting a user ends theirs) are the
//! core's. The in-memory backend (`providers/memory`) is the shortest complete implementation to
//! read; the SQL one (`providers/sql`) shows transactions and migrations.
//!
//! The [`ProviderFactory`](crate::ProviderFactory) declares what the core needs to know:
//! [`locality`](crate::ProviderFactory::locality) (a store shared by several servers needs a
//! configured key-encryption key, `[keys] encryption_key`), [`migration_policy`](crate::ProviderFactory::migration_policy)
//! (whether `serve` may migrate, or only `mcp-oauth migrate`), and
//! [`check_settings`](crate::ProviderFactory::check_settings) for its table, `[storage.<kind>]`.
//!
//! ## 4. Prove it: the conformance kits
//!
//! The kits (feature `testkit`) are what the built-in backends pass. In your plugin's crate:
//!
//! ```toml
//! [dev-dependencies]
//! mcp-oauth-provider = { version = "0.1", features = ["testkit"] }
//! tokio = { version = "1", features = ["macros", "rt-multi-thread"] }
//! ```
//!
//! then, in a test file, one line per backend: every check becomes a `#[tokio::test]`, and a failure
//! names the broken contract (e.g. "take_code: a code was redeemed twice under 16 concurrent calls"):
//!
//! ```ignore
//! mcp_oauth_provider::storage_conformance_tests!(async { my_backend::open_for_tests().await });
//! ```
//!
//! An authenticator has its kit too: give it the authenticator and a fixture (a user who exists,
//! their password, a username that does not), and it checks that the right password signs in, that
//! a wrong password and an unknown user are rejected alike, that an empty password is refused, that
//! odd usernames (`*)(|`, `' OR 1=1`, NUL, very long) never sign in, and what `check_subject` says:
//!
//! ```ignore
//! use mcp_oauth_provider::testkit::AuthenticatorFixture;
//!
//! async fn team() -> (std::sync::Arc<dyn mcp_oauth_provider::UserAuthenticator>, AuthenticatorFixture) {
//!     let authenticator = my_plugin::Team::for_tests().await;
//!     (authenticator, AuthenticatorFixture::new("alice", "correct horse", "nobody"))
//! }
//! mcp_oauth_provider::authenticator_conformance_tests!(team());
//! ```
//!
//! ## 5. Your binary
//!
//! Depend on `mcp-oauth` and register your factories beside the built-ins; the rest is the stock
//! command line:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode {
//!     mcp_oauth::cli::main_with(
//!         mcp_oauth::registry::Registry::builtin()
//!             .with_users(TeamFactory)
//!             .with_policy(LoopbackOnlyFactory),
//!     )
//! }
//! ```
//!
//! and select them in the configuration:
//!
//! ```toml
//! [users]
//! kind = "team"
//!
//! [users.team.members.alice]
//! password = "…"
//! groups = ["admins"]
//!
//! [policy]
//! kind = "loopback"
//! ```
//!
//! `config check` now checks your tables too; a kind registered twice (yours and a built-in) stops
//! every command with a message naming both factories. `providers/example-server` in the repository
//! is such a binary, with an htpasswd authenticator and an allow-list policy, and a test that runs
//! the whole authorization-code flow through it.
