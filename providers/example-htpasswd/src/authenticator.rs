//! The authenticator: a snapshot of the files, re-read when they change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use mcp_oauth_provider::{
    AuthOutcome, AuthenticatedUser, HashingPool, ProviderError, ProviderResult, SubjectStatus,
    UserAuthenticator,
};

use crate::HtpasswdSettings;
use crate::file::{PasswordHash, parse_groups, parse_htpasswd};

/// How often, at most, the files are looked at for changes.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// argon2id (the argon2 crate's defaults) of a password nobody knows: what an unknown user is
/// checked against when the file has no entry to borrow parameters from.
const FALLBACK_DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J3zW3lOmfvwzEfcF8n8bAqAJ4Hy5o8ZEmI+rrtTVjlw";

/// What identifies one version of a file: its size and modification time.
type Stamp = (u64, Option<SystemTime>);

/// One reading of the files.
struct Snapshot {
    users: BTreeMap<String, PasswordHash>,
    groups: BTreeMap<String, Vec<String>>,
    /// An unknown user is checked against this (an entry of the file's most common scheme, so
    /// the work done, and the time taken, are those of a real user).
    dummy: PasswordHash,
    stamps: (Stamp, Option<Stamp>),
}

struct State {
    snapshot: Arc<Snapshot>,
    checked_at: Instant,
}

/// Users from an htpasswd file (bcrypt and argon2id), groups from an Apache group file.
pub struct HtpasswdAuthenticator {
    file: PathBuf,
    groups_file: Option<PathBuf>,
    pool: HashingPool,
    reload_interval: Duration,
    state: tokio::sync::Mutex<State>,
}

/// Why the files could not be read: an I/O error or a bad line (never carries a hash).
#[derive(Debug)]
pub enum LoadError {
    /// `path`, the I/O error.
    Read(PathBuf, std::io::Error),
    /// `path`, the line and what is wrong with it.
    Parse(PathBuf, String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Read(path, e) => write!(f, "cannot read {}: {e}", path.display()),
            Self::Parse(path, why) => write!(f, "{}, {why}", path.display()),
        }
    }
}

impl std::error::Error for LoadError {}

async fn stamp(path: &Path) -> Result<Stamp, LoadError> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| LoadError::Read(path.to_path_buf(), e))?;
    Ok((meta.len(), meta.modified().ok()))
}

async fn read(path: &Path) -> Result<String, LoadError> {
    tokio::fs::read_to_string(path)
        .await
        .map_err(|e| LoadError::Read(path.to_path_buf(), e))
}

/// The hash an unknown user is checked against: an entry of the most common scheme in the file.
fn pick_dummy(users: &BTreeMap<String, PasswordHash>) -> PasswordHash {
    let bcrypt = users
        .values()
        .filter(|h| matches!(h, PasswordHash::Bcrypt(_)))
        .count();
    let want_bcrypt = bcrypt * 2 > users.len();
    users
        .values()
        .find(|h| matches!(h, PasswordHash::Bcrypt(_)) == want_bcrypt)
        .cloned()
        .unwrap_or_else(|| PasswordHash::Argon2id(FALLBACK_DUMMY.to_string()))
}

async fn load(file: &Path, groups_file: Option<&Path>) -> Result<Snapshot, LoadError> {
    // The stamps are taken before reading: a change during the read is seen at the next check.
    let user_stamp = stamp(file).await?;
    let group_stamp = match groups_file {
        Some(g) => Some(stamp(g).await?),
        None => None,
    };
    let users = parse_htpasswd(&read(file).await?)
        .map_err(|why| LoadError::Parse(file.to_path_buf(), why))?
        .entries;
    let groups = match groups_file {
        Some(g) => {
            parse_groups(&read(g).await?).map_err(|why| LoadError::Parse(g.to_path_buf(), why))?
        }
        None => BTreeMap::new(),
    };
    Ok(Snapshot {
        dummy: pick_dummy(&users),
        users,
        groups,
        stamps: (user_stamp, group_stamp),
    })
}

impl HtpasswdAuthenticator {
    /// Reads the files now; a missing file, an unreadable one or a bad line is an error.
    pub async fn open(settings: &HtpasswdSettings, pool: HashingPool) -> Result<Self, LoadError> {
        let snapshot = load(&settings.file, settings.groups_file.as_deref()).await?;
        Ok(Self {
            file: settings.file.clone(),
            groups_file: settings.groups_file.clone(),
            pool,
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            state: tokio::sync::Mutex::new(State {
                snapshot: Arc::new(snapshot),
                checked_at: Instant::now(),
            }),
        })
    }

    /// Looks at the files at most this often (default one second; tests use less).
    pub fn with_reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = interval;
        self
    }

    /// How many users the current snapshot holds.
    pub async fn user_count(&self) -> usize {
        self.state.lock().await.snapshot.users.len()
    }

    /// The current snapshot, re-read first when the interval has passed and a file changed. A file
    /// that cannot be read, or has a bad line, is `Unavailable` (logged, without secrets) until it
    /// is fixed: signing in against a half-written file would be guesswork.
    async fn snapshot(&self) -> ProviderResult<Arc<Snapshot>> {
        let mut state = self.state.lock().await;
        if state.checked_at.elapsed() < self.reload_interval {
            return Ok(Arc::clone(&state.snapshot));
        }
        let result = self.reload_if_changed(&state.snapshot).await;
        match result {
            Ok(Some(fresh)) => {
                tracing::info!(
                    file = %self.file.display(),
                    users = fresh.users.len(),
                    "htpasswd file reloaded"
                );
                state.snapshot = Arc::new(fresh);
                state.checked_at = Instant::now();
                Ok(Arc::clone(&state.snapshot))
            }
            Ok(None) => {
                state.checked_at = Instant::now();
                Ok(Arc::clone(&state.snapshot))
            }
            Err(e) => {
                // Not marked as checked: the next request looks again.
                tracing::warn!(error = %e, "htpasswd: cannot load the user files");
                Err(ProviderError::unavailable(
                    "the htpasswd file cannot be used",
                    e,
                ))
            }
        }
    }

    async fn reload_if_changed(&self, current: &Snapshot) -> Result<Option<Snapshot>, LoadError> {
        let users = stamp(&self.file).await?;
        let groups = match &self.groups_file {
            Some(g) => Some(stamp(g).await?),
            None => None,
        };
        if (users, groups) == current.stamps {
            return Ok(None);
        }
        load(&self.file, self.groups_file.as_deref())
            .await
            .map(Some)
    }
}

#[async_trait]
impl UserAuthenticator for HtpasswdAuthenticator {
    async fn authenticate(&self, username: &str, password: &str) -> ProviderResult<AuthOutcome> {
        if username.is_empty() || password.is_empty() {
            return Ok(AuthOutcome::Rejected);
        }
        let snapshot = self.snapshot().await?;
        let known = snapshot.users.get(username);
        // An unknown user costs the same verification as a known one.
        let hash = known.unwrap_or(&snapshot.dummy).clone();
        let pw = password.to_string();
        let matches = self.pool.run(move || hash.verify(&pw)).await?;
        if !(matches && known.is_some()) {
            return Ok(AuthOutcome::Rejected);
        }
        Ok(AuthOutcome::Authenticated(AuthenticatedUser {
            subject: username.to_string(),
            username: username.to_string(),
            display_name: None,
            email: None,
            groups: snapshot.groups.get(username).cloned().unwrap_or_default(),
            allowed_scopes: None,
        }))
    }

    /// The subject is the username: `Active` while the file still has it.
    async fn check_subject(&self, subject: &str) -> ProviderResult<SubjectStatus> {
        let snapshot = self.snapshot().await?;
        Ok(if snapshot.users.contains_key(subject) {
            SubjectStatus::Active {
                allowed_scopes: None,
            }
        } else {
            SubjectStatus::Gone
        })
    }
}
