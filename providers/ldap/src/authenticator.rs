//! [`LdapAuthenticator`]: checks a username and password against an LDAP directory (RFC 4511) and
//! turns the entry into an [`AuthenticatedUser`].
//!
//! 1. Refuse before contacting the directory: an empty password (a simple Bind with a name and no
//!    password is an "unauthenticated bind" that servers answer with success, RFC 4513 §5.1.2), and
//!    usernames that are empty, longer than 256 bytes, hold control characters or start or end with
//!    white space.
//! 2. Find the DN. Direct mode: `user_dn_template` with the username escaped as a DN value
//!    (RFC 4514 §2.4). Search mode: the service account searches `base_dn` with `user_filter`, the
//!    username escaped as a filter value (RFC 4515 §3); no entry or more than one is a failed login.
//! 3. Bind as that DN with the password on a fresh connection (RFC 4511 §4.2): the password check is
//!    the directory's own.
//! 4. Read the subject, email and display name attributes, and the groups (the entry's `memberOf`,
//!    or a group search), and map groups to scopes: `allowed_scopes` = `default_scopes` ∪ the scopes
//!    of every `scope_map` group the user is in. The core only ever grants requested scopes that are
//!    also allowed.
//!
//! Unknown user and wrong password give the same `Rejected`; in search mode an unknown user still
//! costs one bind (against a DN that cannot exist) so the two take comparable time. The password is
//! never logged.

use std::sync::Arc;

use async_trait::async_trait;
use ldap3::{Ldap, Scope, SearchEntry};
use mcp_oauth_provider::{
    AuthOutcome, AuthenticatedUser, ProviderError, ProviderResult, SubjectStatus, UserAuthenticator,
};

use crate::connection::{BindOutcome, Connector, ServiceConnection, close};
use crate::dn::{
    acceptable_username, escape_dn_value, escape_filter_value, fill_template, normalize_dn,
};
use crate::settings::{GroupLookup, LdapSettings, ScopeMapping, SettingsError, UserLookup};

/// The attribute of `memberOf` group membership (RFC 2307bis, OpenLDAP memberof overlay, AD).
const MEMBER_OF: &str = "memberOf";
/// "No attributes" in a search request (RFC 4511 §4.5.1.8).
const NO_ATTRIBUTES: &str = "1.1";
/// Search mode asks for at most this many entries: two are enough to know a username is ambiguous.
const USER_SEARCH_LIMIT: i32 = 2;

/// How the user's DN is found, with what it needs at run time.
enum Users {
    Direct {
        dn_template: String,
    },
    Search {
        base_dn: String,
        filter_template: String,
        service: Box<ServiceConnection>,
    },
}

/// Checks passwords against an LDAP directory.
pub struct LdapAuthenticator {
    connector: Arc<Connector>,
    users: Users,
    groups: GroupLookup,
    subject_attribute: String,
    email_attribute: String,
    display_name_attribute: String,
    /// Group DNs in canonical form.
    scope_map: Vec<ScopeMapping>,
    default_scopes: Vec<String>,
}

/// Where a group search runs: on the user's own connection (direct mode: bound as the user) or the
/// service account's.
enum GroupSearcher<'a> {
    Own(&'a mut Ldap),
    Service(&'a ServiceConnection),
}

impl LdapAuthenticator {
    /// Builds the authenticator; the service account's password is read from the process
    /// environment or its file. Does not contact the directory (the server starts while it is down).
    pub fn new(settings: &LdapSettings) -> Result<Self, SettingsError> {
        Self::with_env(settings, |name| std::env::var(name).ok())
    }

    /// Like [`LdapAuthenticator::new`], with environment lookups given explicitly.
    pub fn with_env(
        settings: &LdapSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let lookup = settings.user_lookup(env)?;
        let groups = settings.group_lookup()?;
        let connector = Arc::new(Connector::new(settings)?);
        let users = match lookup {
            UserLookup::Direct { dn_template } => Users::Direct { dn_template },
            UserLookup::Search {
                base_dn,
                filter_template,
                account,
            } => Users::Search {
                base_dn,
                filter_template,
                service: Box::new(ServiceConnection::new(connector.clone(), account)),
            },
        };
        Ok(Self {
            connector,
            users,
            groups,
            subject_attribute: settings.subject_attribute.clone(),
            email_attribute: settings.email_attribute.clone(),
            display_name_attribute: settings.display_name_attribute.clone(),
            scope_map: settings.normalized_scope_map(),
            default_scopes: settings.default_scopes.clone(),
        })
    }

    /// The attributes read from a user's entry.
    fn user_attributes(&self) -> Vec<&str> {
        let mut attrs = vec![
            self.subject_attribute.as_str(),
            self.email_attribute.as_str(),
            self.display_name_attribute.as_str(),
        ];
        if matches!(self.groups, GroupLookup::MemberOf) {
            attrs.push(MEMBER_OF);
        }
        attrs
    }

    async fn direct(
        &self,
        dn_template: &str,
        username: &str,
        password: &str,
    ) -> ProviderResult<AuthOutcome> {
        let dn = fill_template(dn_template, &[("username", &escape_dn_value(username))]);
        let mut ldap = self.connector.open().await?;
        let outcome = self.direct_on(&mut ldap, &dn, username, password).await;
        close(&mut ldap, self.connector.operation_timeout()).await;
        outcome
    }

    async fn direct_on(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        username: &str,
        password: &str,
    ) -> ProviderResult<AuthOutcome> {
        if self.connector.bind(ldap, dn, password).await? == BindOutcome::Refused {
            return Ok(AuthOutcome::Rejected);
        }
        // Bound as the user: read the user's own entry with the user's own rights.
        let attrs = self.user_attributes();
        let found = self
            .connector
            .search(ldap, dn, Scope::Base, "(objectClass=*)", &attrs, 1)
            .await?;
        let entry = found.entries.into_iter().next().ok_or_else(|| {
            ProviderError::backend_msg(
                "bound as the user but cannot read the user's own entry; \
                 the directory must let users read their entry",
            )
        })?;
        self.user_from(entry, username, GroupSearcher::Own(ldap))
            .await
            .map(AuthOutcome::Authenticated)
    }

    async fn search_then_bind(
        &self,
        base_dn: &str,
        filter_template: &str,
        service: &ServiceConnection,
        username: &str,
        password: &str,
    ) -> ProviderResult<AuthOutcome> {
        let filter = fill_template(
            filter_template,
            &[("username", &escape_filter_value(username))],
        );
        let attrs = self.user_attributes();
        let found = service
            .search(base_dn, &filter, &attrs, USER_SEARCH_LIMIT)
            .await?;
        let mut entries = found.entries;
        if entries.len() != 1 || found.truncated {
            if !entries.is_empty() {
                tracing::warn!(
                    matches = entries.len(),
                    truncated = found.truncated,
                    "several directory entries match one username; refusing the sign-in"
                );
            }
            self.spend_a_bind(base_dn).await;
            return Ok(AuthOutcome::Rejected);
        }
        let entry = entries.remove(0);
        let mut ldap = self.connector.open().await?;
        let outcome = self.connector.bind(&mut ldap, &entry.dn, password).await;
        close(&mut ldap, self.connector.operation_timeout()).await;
        if outcome? == BindOutcome::Refused {
            return Ok(AuthOutcome::Rejected);
        }
        self.user_from(entry, username, GroupSearcher::Service(service))
            .await
            .map(AuthOutcome::Authenticated)
    }

    /// A bind that fails, so an unknown username costs about what a wrong password does.
    async fn spend_a_bind(&self, base_dn: &str) {
        let dn = format!("cn=mcp-oauth-no-such-entry,{base_dn}");
        if let Ok(mut ldap) = self.connector.open().await {
            let _ = self
                .connector
                .bind(&mut ldap, &dn, "not-the-password-of-anyone")
                .await;
            close(&mut ldap, self.connector.operation_timeout()).await;
        }
    }

    /// The user as the token will describe them.
    async fn user_from(
        &self,
        entry: SearchEntry,
        username: &str,
        searcher: GroupSearcher<'_>,
    ) -> ProviderResult<AuthenticatedUser> {
        let subject = first_value(&entry, &self.subject_attribute).ok_or_else(|| {
            ProviderError::backend_msg(format!(
                "the directory entry has no {:?} attribute (subject_attribute)",
                self.subject_attribute
            ))
        })?;
        let groups = self.groups_of(&entry, username, searcher).await?;
        let allowed_scopes = self.scopes_for(&groups);
        Ok(AuthenticatedUser {
            subject,
            username: username.to_string(),
            display_name: first_value(&entry, &self.display_name_attribute),
            email: first_value(&entry, &self.email_attribute),
            groups,
            allowed_scopes: Some(allowed_scopes),
        })
    }

    async fn groups_of(
        &self,
        entry: &SearchEntry,
        username: &str,
        searcher: GroupSearcher<'_>,
    ) -> ProviderResult<Vec<String>> {
        match &self.groups {
            GroupLookup::None => Ok(Vec::new()),
            GroupLookup::MemberOf => Ok(values(entry, MEMBER_OF)),
            GroupLookup::Search {
                base_dn,
                filter_template,
            } => {
                let filter = fill_template(
                    filter_template,
                    &[
                        ("dn", &escape_filter_value(&entry.dn)),
                        ("username", &escape_filter_value(username)),
                    ],
                );
                let found = match searcher {
                    GroupSearcher::Own(ldap) => {
                        self.connector
                            .search(ldap, base_dn, Scope::Subtree, &filter, &[NO_ATTRIBUTES], 0)
                            .await?
                    }
                    GroupSearcher::Service(service) => {
                        service
                            .search(base_dn, &filter, &[NO_ATTRIBUTES], 0)
                            .await?
                    }
                };
                Ok(found.entries.into_iter().map(|e| e.dn).collect())
            }
        }
    }

    /// `default_scopes` ∪ the scopes of the mapped groups in `groups`, each once, in config order.
    fn scopes_for(&self, groups: &[String]) -> Vec<String> {
        let member_of: Vec<String> = groups.iter().map(|g| normalize_dn(g)).collect();
        let mut scopes: Vec<String> = Vec::new();
        let granted = self
            .scope_map
            .iter()
            .filter(|m| member_of.contains(&m.group))
            .flat_map(|m| m.scopes.iter());
        for scope in self.default_scopes.iter().chain(granted) {
            if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        scopes
    }
}

#[async_trait]
impl UserAuthenticator for LdapAuthenticator {
    async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome> {
        // RFC 4513 §5.1.2: a bind with a name and an empty password "succeeds" without checking
        // anything. Refuse it here, before any connection.
        if password.is_empty() || !acceptable_username(username) {
            return Ok(AuthOutcome::Rejected);
        }
        let outcome = match &self.users {
            Users::Direct { dn_template } => self.direct(dn_template, username, password).await,
            Users::Search {
                base_dn,
                filter_template,
                service,
            } => {
                self.search_then_bind(base_dn, filter_template, service, username, password)
                    .await
            }
        };
        if let Err(error) = &outcome {
            // The server core logs it too, with the request context; this adds the LDAP detail.
            tracing::debug!(%error, "LDAP sign-in check failed");
        }
        outcome
    }

    /// Search mode: a bind as the service account (`bind_dn`); direct mode, which has no account
    /// of its own: a connection (with StartTLS when configured). Errors name the directory's URL.
    async fn check_health(&self) -> ProviderResult<()> {
        let url = self.connector.url();
        let named = |e: ProviderError| match e {
            ProviderError::Unavailable { message, source } => ProviderError::Unavailable {
                message: format!("LDAP directory {url}: {message}"),
                source,
            },
            ProviderError::Backend { message, source } => ProviderError::Backend {
                message: format!("LDAP directory {url}: {message}"),
                source,
            },
            other => other,
        };
        match &self.users {
            Users::Search { service, .. } => service.check().await.map_err(named),
            Users::Direct { .. } => {
                let mut ldap = self.connector.open().await.map_err(named)?;
                close(&mut ldap, self.connector.operation_timeout()).await;
                Ok(())
            }
        }
    }

    /// Search mode: the service account looks the subject up again (`(<subject_attribute>=…)` under
    /// `base_dn`); no entry means the user is gone, else their groups give today's scopes. Direct
    /// mode cannot search without the user's password: `Unknown`, and grants end at
    /// `[tokens] max_grant_lifetime` (or `mcp-oauth grants revoke --user <subject>`).
    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        let Users::Search {
            base_dn, service, ..
        } = &self.users
        else {
            return Ok(SubjectStatus::Unknown);
        };
        if subject.is_empty() {
            return Ok(SubjectStatus::Gone);
        }
        let filter = format!(
            "({}={})",
            self.subject_attribute,
            escape_filter_value(subject)
        );
        let attrs = self.user_attributes();
        let found = service
            .search(base_dn, &filter, &attrs, USER_SEARCH_LIMIT)
            .await?;
        let mut entries = found.entries;
        if entries.len() != 1 || found.truncated {
            return Ok(SubjectStatus::Gone);
        }
        let entry = entries.remove(0);
        // Group searches may name the username; the entry's `uid` is what sign-in used by default.
        let username = first_value(&entry, "uid").unwrap_or_else(|| subject.to_string());
        let user = self
            .user_from(entry, &username, GroupSearcher::Service(service))
            .await?;
        Ok(SubjectStatus::Active {
            allowed_scopes: user.allowed_scopes,
        })
    }
}

/// Values of `attribute` (attribute descriptions compare without regard to case, RFC 4512 §2.5).
fn values(entry: &SearchEntry, attribute: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .flat_map(|(_, values)| values.iter().cloned())
        .collect()
}

fn first_value(entry: &SearchEntry, attribute: &str) -> Option<String> {
    values(entry, attribute).into_iter().next()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn authenticator(extra: serde_json::Value) -> LdapAuthenticator {
        let mut ldap = json!({
            // Nothing listens on port 9 of loopback: any contact with the directory would fail
            // with Unavailable, which is how these tests prove none happens.
            "url": "ldap://127.0.0.1:9",
            "mode": "direct",
            "user_dn_template": "uid={username},ou=people,dc=example,dc=org",
            "connect_timeout": "1s",
            "operation_timeout": "1s",
            "default_scopes": ["mcp:tools"],
            "scope_map": [
                {"group": "cn=mcp-admins,ou=groups,dc=example,dc=org", "scopes": ["mcp:admin", "mcp:tools"]},
                {"group": "cn=auditors,ou=groups,dc=example,dc=org", "scopes": ["audit:read"]},
            ],
        });
        for (k, v) in extra.as_object().unwrap() {
            ldap[k] = v.clone();
        }
        let settings = LdapSettings::from_users_table(&json!({"ldap": ldap})).unwrap();
        LdapAuthenticator::with_env(&settings, |_| None).unwrap()
    }

    #[tokio::test]
    async fn empty_passwords_and_bad_usernames_are_refused_without_contacting_the_directory() {
        let a = authenticator(json!({}));
        for (user, pw) in [
            ("alice", ""),
            ("", "pw"),
            ("al\0ice", "pw"),
            ("alice\r\n", "pw"),
            (&"a".repeat(257) as &str, "pw"),
        ] {
            assert_eq!(
                a.authenticate(user, pw).await.unwrap(),
                AuthOutcome::Rejected,
                "{user:?}"
            );
        }
        // The same directory, asked for real, is unreachable: the refusals above never tried.
        assert!(
            a.authenticate("alice", "pw")
                .await
                .unwrap_err()
                .is_unavailable()
        );
    }

    #[test]
    fn groups_map_to_scopes() {
        let a = authenticator(json!({}));
        assert_eq!(a.scopes_for(&[]), vec!["mcp:tools"]);
        assert_eq!(
            a.scopes_for(&["CN=MCP-Admins,OU=groups,DC=example,DC=org".into()]),
            vec!["mcp:tools", "mcp:admin"]
        );
        assert_eq!(
            a.scopes_for(&[
                "cn=auditors,ou=groups,dc=example,dc=org".into(),
                "cn=mcp-admins,ou=groups,dc=example,dc=org".into(),
                "cn=other,ou=groups,dc=example,dc=org".into(),
            ]),
            vec!["mcp:tools", "mcp:admin", "audit:read"]
        );
        assert_eq!(
            a.scopes_for(&["cn=mcp-admins,ou=groups,dc=example,dc=org,dc=evil".into()]),
            vec!["mcp:tools"],
            "a longer DN is another group"
        );
    }

    #[test]
    fn attributes_read_match_the_group_source() {
        let a = authenticator(json!({}));
        assert_eq!(a.user_attributes(), vec!["uid", "mail", "cn", "memberOf"]);
        let a = authenticator(json!({
            "groups": "search", "group_base_dn": "ou=groups,dc=example,dc=org",
            "subject_attribute": "entryUUID",
        }));
        assert_eq!(a.user_attributes(), vec!["entryUUID", "mail", "cn"]);
    }
}
