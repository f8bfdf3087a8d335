//! Group commit for SQLite: the token writes that arrive together share one transaction, and so one
//! fsync of the write-ahead log.
//!
//! With `synchronous = FULL` every commit waits for an fsync (hundreds of µs to ms), and SQLite has
//! one writer: issuing tokens one transaction each is bounded by the disk's flush rate, whatever the
//! CPU could do. Here [`TokenStore::insert_tokens`](mcp_oauth_provider::TokenStore::insert_tokens)
//! and [`rotate_refresh_token`](mcp_oauth_provider::TokenStore::rotate_refresh_token) hand their work
//! to one task. The task takes every write waiting in its queue (at most `[storage.sqlite]
//! group_commit_max_batch`), runs them in order in one `BEGIN IMMEDIATE` transaction (each in its
//! own savepoint, so one failing write is rolled back alone and its caller gets the error), commits
//! once, and only then answers each caller. Nothing waits on a timer: while one batch commits, the
//! next one gathers, so a lone request is committed at once and a busy server commits more per fsync.
//!
//! What this keeps:
//! - **Durability.** A caller is acknowledged after the commit that holds its write, so an
//!   acknowledged token survives SIGKILL and (with `synchronous = FULL`) power loss. A batch whose
//!   commit fails fails every caller in it; nothing of it is stored.
//! - **Atomicity** of each operation (its savepoint), and each contract of the store: the writes run
//!   one after another on one connection, under the writer lock every other write of this process
//!   takes, so a family revocation runs wholly before or wholly after a batch. Two rotations of one
//!   refresh token in one batch see each other (the second is `Replayed` or `Reused`), as they would
//!   in two transactions.
//! - **Reads** stay on the pool and see only committed writes: a token is never visible before its
//!   caller could have been answered.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use mcp_oauth_provider::{
    AccessTokenRecord, ProviderError, ProviderResult, RefreshTokenRecord, RotateRefreshToken,
    Rotation,
};
use sqlx::{Connection, SqlitePool};
use tokio::sync::{Mutex, mpsc, oneshot};

use crate::errors::map_err;
use crate::sqlite::stores;

/// The default of `[storage.sqlite] group_commit_max_batch`.
pub const DEFAULT_MAX_BATCH: usize = 128;
/// The largest accepted `group_commit_max_batch`.
pub const MAX_MAX_BATCH: usize = 10_000;

/// One queued write.
enum Write {
    Insert {
        access: AccessTokenRecord,
        refresh: Option<RefreshTokenRecord>,
    },
    Rotate(RotateRefreshToken),
}

/// What a write answered.
enum Written {
    Inserted,
    Rotated(Box<Rotation>),
}

struct Pending {
    write: Write,
    reply: oneshot::Sender<ProviderResult<Written>>,
}

/// The queue of the group-commit task. Cloned with the store; the task ends when the last clone is
/// dropped.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<Pending>,
    stats: Arc<Stats>,
}

/// Counters of the group-commit task.
#[derive(Debug, Default)]
struct Stats {
    /// Writes handed to the queue.
    queued: AtomicU64,
    /// Transactions committed (or attempted).
    commits: AtomicU64,
}

impl GroupCommit {
    /// Starts the task committing on `pool` under `writer`, at most `max_batch` writes per commit.
    pub(crate) fn start(pool: SqlitePool, writer: Arc<Mutex<()>>, max_batch: usize) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let stats = Arc::new(Stats::default());
        tokio::spawn(run(
            pool,
            writer,
            rx,
            max_batch.clamp(1, MAX_MAX_BATCH),
            Arc::clone(&stats),
        ));
        Self { queue, stats }
    }

    /// Writes queued so far and transactions committed for them: their ratio is the mean batch.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.stats.queued.load(Ordering::Relaxed),
            self.stats.commits.load(Ordering::Relaxed),
        )
    }

    async fn submit(&self, write: Write) -> ProviderResult<Written> {
        let (reply, answer) = oneshot::channel();
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        self.queue.send(Pending { write, reply }).map_err(|_| {
            ProviderError::unavailable_msg("the SQLite group-commit task has stopped")
        })?;
        answer.await.map_err(|_| {
            ProviderError::unavailable_msg("the SQLite group-commit task stopped before answering")
        })?
    }

    /// `TokenStore::insert_tokens`, acknowledged after its batch's commit.
    pub(crate) async fn insert_tokens(
        &self,
        access: AccessTokenRecord,
        refresh: Option<RefreshTokenRecord>,
    ) -> ProviderResult<()> {
        match self.submit(Write::Insert { access, refresh }).await? {
            Written::Inserted => Ok(()),
            Written::Rotated(_) => Err(ProviderError::backend_msg(
                "group commit: mismatched answer",
            )),
        }
    }

    /// `TokenStore::rotate_refresh_token`, acknowledged after its batch's commit.
    pub(crate) async fn rotate(&self, request: RotateRefreshToken) -> ProviderResult<Rotation> {
        match self.submit(Write::Rotate(request)).await? {
            Written::Rotated(rotation) => Ok(*rotation),
            Written::Inserted => Err(ProviderError::backend_msg(
                "group commit: mismatched answer",
            )),
        }
    }
}

async fn run(
    pool: SqlitePool,
    writer: Arc<Mutex<()>>,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    max_batch: usize,
    stats: Arc<Stats>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while rx.recv_many(&mut batch, max_batch).await > 0 {
        let _writer = writer.lock().await;
        // Whatever arrived while the writer lock was busy joins this commit.
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let (writes, replies): (Vec<Write>, Vec<_>) =
            batch.drain(..).map(|p| (p.write, p.reply)).unzip();
        stats.commits.fetch_add(1, Ordering::Relaxed);
        match commit(&pool, &writes).await {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    // A caller that gave up (its request was cancelled) no longer listens.
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = writes.len(), "SQLite group commit failed");
                let message = e.to_string();
                let unavailable = e.is_unavailable();
                for reply in replies {
                    let _ = reply.send(Err(if unavailable {
                        ProviderError::unavailable_msg(message.clone())
                    } else {
                        ProviderError::backend_msg(message.clone())
                    }));
                }
            }
        }
    }
}

/// Runs `writes` in one transaction, each in its own savepoint, and commits. `Err` when the
/// transaction itself failed (nothing of it is stored).
async fn commit(
    pool: &SqlitePool,
    writes: &[Write],
) -> ProviderResult<Vec<ProviderResult<Written>>> {
    let mut tx = pool
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(|e| map_err("begin", e))?;
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        let mut savepoint = tx.begin().await.map_err(|e| map_err("savepoint", e))?;
        let result = apply(&mut savepoint, write).await;
        if result.is_ok() {
            savepoint
                .commit()
                .await
                .map_err(|e| map_err("release savepoint", e))?;
        } else {
            savepoint
                .rollback()
                .await
                .map_err(|e| map_err("roll back to savepoint", e))?;
        }
        results.push(result);
    }
    tx.commit().await.map_err(|e| map_err("commit", e))?;
    Ok(results)
}

async fn apply(conn: &mut sqlx::SqliteConnection, write: &Write) -> ProviderResult<Written> {
    match write {
        Write::Insert { access, refresh } => {
            stores::insert_access(&mut *conn, access).await?;
            if let Some(r) = refresh {
                stores::insert_refresh(&mut *conn, r).await?;
            }
            Ok(Written::Inserted)
        }
        Write::Rotate(req) => {
            // SQLite has no per-family lock: this transaction holds the database's write lock.
            let family: Option<String> =
                sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                    .bind(&req.old_hash.0)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| map_err("get refresh token", e))?;
            if family.is_none() {
                return Ok(Written::Rotated(Box::new(Rotation::Unknown)));
            }
            Ok(Written::Rotated(Box::new(
                stores::rotate_in(&mut *conn, req).await?,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use mcp_oauth_provider::{AccessTokenRecord, TokenStore};

    use crate::SqliteStore;
    use crate::settings::SqliteSynchronous;

    async fn store() -> SqliteStore {
        let dir = std::env::temp_dir().join(format!(
            "mcp-oauth-group-commit-{}",
            mcp_oauth_provider::testkit::unique("db")
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("test.db").display());
        let store = SqliteStore::connect(&url, SqliteSynchronous::Full, 4)
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    fn access(jti: &str) -> AccessTokenRecord {
        AccessTokenRecord {
            jti: jti.into(),
            family_id: format!("family-{jti}"),
            client_id: "client".into(),
            subject: "alice".into(),
            scopes: vec!["mcp:tools".into()],
            resource: "http://127.0.0.1/mcp".into(),
            issued_at: 1_000,
            expires_at: 4_000_000_000,
            revoked: false,
        }
    }

    /// Holds the writer lock while `n` writes are queued, so that they are all waiting when the
    /// group-commit task gets the lock.
    async fn queued_while_locked<F, Fut>(store: &SqliteStore, n: u64, spawn: F)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let group = store.group_commit().unwrap().clone();
        let before = group.counts().0;
        let writer = store.writer.as_ref().unwrap().lock().await;
        spawn().await;
        for _ in 0..10_000 {
            if group.counts().0 >= before + n {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(group.counts().0, before + n, "the writes were queued");
        drop(writer);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_waiting_together_share_one_commit_and_all_are_stored() {
        let store = store().await;
        let mut tasks = Vec::new();
        queued_while_locked(&store, 64, || {
            for i in 0..64 {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    s.insert_tokens(access(&format!("jti-{i}")), None).await
                }));
            }
            async {}
        })
        .await;
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let (queued, commits) = store.group_commit().unwrap().counts();
        assert_eq!(queued, 64);
        assert!(commits <= 2, "64 waiting writes took {commits} commits");
        for i in 0..64 {
            assert!(
                store
                    .get_access_token(&format!("jti-{i}"))
                    .await
                    .unwrap()
                    .is_some(),
                "jti-{i} is stored once acknowledged"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_fails_alone_in_its_batch() {
        let store = store().await;
        store.insert_tokens(access("taken"), None).await.unwrap();
        let mut tasks = Vec::new();
        queued_while_locked(&store, 3, || {
            for jti in ["before", "taken", "after"] {
                let s = store.clone();
                tasks.push(tokio::spawn(async move {
                    s.insert_tokens(access(jti), None).await
                }));
            }
            async {}
        })
        .await;
        let results: Vec<_> = {
            let mut r = Vec::new();
            for t in tasks {
                r.push(t.await.unwrap());
            }
            r
        };
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(results[1].is_err(), "a duplicate jti is refused");
        assert!(results[2].is_ok(), "{:?}", results[2]);
        for jti in ["before", "taken", "after"] {
            assert!(store.get_access_token(jti).await.unwrap().is_some());
        }
        let taken = store.get_access_token("taken").await.unwrap().unwrap();
        assert_eq!(taken.family_id, "family-taken", "the first record is kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn off_means_one_transaction_per_write() {
        let store = store().await.with_group_commit(1);
        assert!(store.group_commit().is_none());
        store.insert_tokens(access("alone"), None).await.unwrap();
        assert!(store.get_access_token("alone").await.unwrap().is_some());
    }
}
