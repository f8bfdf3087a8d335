//! A bounded pool for CPU-heavy password checks (argon2, bcrypt), shared by every authenticator.
//!
//! Hashing takes 15–20 ms of CPU; on the async workers it would stall every other request. The core
//! creates one pool (`[login] password_hash_concurrency`, default cores − 1) and hands it to every
//! user-authenticator factory in [`FactoryContext::hashing`](crate::FactoryContext), so a burst of
//! sign-ins queues here instead of starving the token endpoint, whichever plugin checks the password.
//!
//! The pool is its own threads, one per slot, taking checks from one queue in arrival order. A thread
//! that finishes a check starts the next one at once: no slot waits for an async task to be woken
//! and scheduled first, which on busy cores cost a third of the pool's throughput when each check
//! went through a semaphore and `spawn_blocking` (BENCHMARKS.md). A check whose caller has gone
//! away, or that waited longer than [`QUEUE_TIMEOUT`], is not run.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{ProviderError, ProviderResult};

/// How long a check may wait for a slot before it fails as `Unavailable` (the user sees
/// "temporarily unavailable" and can retry).
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// A check waiting for a thread; `run` does nothing when its caller has gone away.
struct Job {
    queued_at: Instant,
    run: Box<dyn FnOnce() + Send>,
}

/// What the pool's threads share.
struct Queue {
    jobs: Mutex<QueueState>,
    ready: Condvar,
    queue_timeout: Duration,
    /// Checks queued and not yet taken by a thread (the queue depth the metrics report).
    waiting: AtomicUsize,
    /// Checks running right now.
    running: AtomicUsize,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// Every handle is gone: the threads finish what is queued and exit.
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        match self.jobs.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The next job, waiting for one; `None` once the pool is closed and empty.
    fn next(&self) -> Option<Job> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = match self.ready.wait(state) {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    /// One pool thread: runs jobs until the pool closes. A job that waited too long is dropped
    /// unrun, which its caller sees as `Unavailable`.
    fn work(&self) {
        while let Some(job) = self.next() {
            if job.queued_at.elapsed() > self.queue_timeout {
                continue;
            }
            self.running.fetch_add(1, Ordering::Relaxed);
            (job.run)();
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Closes the queue when the last [`HashingPool`] clone is dropped.
struct Handle(Arc<Queue>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.ready.notify_all();
    }
}

/// Runs blocking closures on the pool's own threads, at most `size` at once.
#[derive(Clone)]
pub struct HashingPool {
    handle: Arc<Handle>,
    size: usize,
}

impl std::fmt::Debug for HashingPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashingPool")
            .field("size", &self.size)
            .field("queued", &self.queued())
            .field("running", &self.running())
            .finish()
    }
}

impl HashingPool {
    /// `concurrency` 0 = cores − 1 (at least 1).
    pub fn new(concurrency: usize) -> Self {
        Self::with_queue_timeout(concurrency, QUEUE_TIMEOUT)
    }

    /// Like [`HashingPool::new`], with checks failing after `queue_timeout` in the queue.
    pub fn with_queue_timeout(concurrency: usize, queue_timeout: Duration) -> Self {
        let size = if concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1)
        } else {
            concurrency
        };
        let queue = Arc::new(Queue {
            jobs: Mutex::new(QueueState::default()),
            ready: Condvar::new(),
            queue_timeout,
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        });
        for i in 0..size {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("password-hash-{i}"))
                .spawn(move || queue.work());
            if let Err(e) = spawned {
                // Fewer threads than slots still run every check, only with less parallelism.
                tracing::warn!(error = %e, "could not start a password-hashing thread");
            }
        }
        Self {
            handle: Arc::new(Handle(queue)),
            size,
        }
    }

    fn queue(&self) -> &Queue {
        &self.handle.0
    }

    /// How many checks may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Checks waiting for a slot right now (the login-hashing queue depth).
    pub fn queued(&self) -> usize {
        self.queue().waiting.load(Ordering::Relaxed)
    }

    /// Checks running right now.
    pub fn running(&self) -> usize {
        self.queue().running.load(Ordering::Relaxed)
    }

    /// Runs `work` on a pool thread once one is free. Waiting longer than the queue timeout
    /// ([`QUEUE_TIMEOUT`]) is `Unavailable`; a panicking `work` is a `Backend` error. When the
    /// caller stops waiting (the client went away), `work` is not started.
    pub async fn run<T, F>(&self, work: F) -> ProviderResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = Job {
            queued_at: Instant::now(),
            run: Box::new(move || {
                if !tx.is_closed() {
                    let _ = tx.send(catch_unwind(AssertUnwindSafe(work)));
                }
            }),
        };
        {
            let queue = self.queue();
            let mut state = queue.lock();
            queue.waiting.fetch_add(1, Ordering::Relaxed);
            state.jobs.push_back(job);
        }
        self.queue().ready.notify_one();
        match rx.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_panic)) => Err(ProviderError::backend_msg(
                "password check task failed (it panicked)",
            )),
            Err(_not_run) => Err(ProviderError::unavailable_msg("too many sign-ins at once")),
        }
    }
}

impl Default for HashingPool {
    fn default() -> Self {
        Self::new(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_bounds_concurrency() {
        let pool = HashingPool::new(1);
        assert_eq!(pool.size(), 1);
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let now = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(now, SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, SeqCst);
                    7
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), 7);
        }
        assert_eq!(
            peak.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a pool of one runs one check at a time"
        );
        assert!(HashingPool::new(0).size() >= 1);
    }

    #[tokio::test]
    async fn counts_the_checks_waiting_for_a_slot() {
        let pool = HashingPool::new(1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().ok()).await })
        };
        while pool.running() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let second = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(|| ()).await })
        };
        while pool.queued() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!((pool.running(), pool.queued()), (1, 1));
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
        assert_eq!((pool.running(), pool.queued()), (0, 0));
    }

    /// Holds the pool's only thread until the returned sender sends (or is dropped).
    async fn occupy(
        pool: &HashingPool,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<ProviderResult<Option<()>>>,
    ) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().ok()).await })
        };
        while pool.running() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        (release, first)
    }

    #[tokio::test]
    async fn a_check_that_waited_past_the_queue_timeout_is_unavailable_and_not_run() {
        let pool = HashingPool::with_queue_timeout(1, Duration::from_millis(50));
        let (release, first) = occupy(&pool).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let late = {
            let (pool, ran) = (pool.clone(), ran.clone());
            tokio::spawn(async move { pool.run(move || ran.store(true, Ordering::SeqCst)).await })
        };
        tokio::time::sleep(Duration::from_millis(120)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        let err = late.await.unwrap().unwrap_err();
        assert!(err.is_unavailable(), "{err}");
        assert!(
            !ran.load(Ordering::SeqCst),
            "a check past its queue timeout ran"
        );
        // A check queued now, well within the timeout, runs.
        assert_eq!(pool.run(|| 5).await.unwrap(), 5);
    }

    #[tokio::test]
    async fn a_check_whose_caller_left_is_not_run() {
        let pool = HashingPool::new(1);
        let (release, first) = occupy(&pool).await;
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gone = {
            let (pool, ran) = (pool.clone(), ran.clone());
            tokio::spawn(async move { pool.run(move || ran.store(true, Ordering::SeqCst)).await })
        };
        while pool.queued() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        gone.abort();
        let _ = gone.await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        // The next check runs after the abandoned one has been taken off the queue.
        assert_eq!(pool.run(|| 6).await.unwrap(), 6);
        assert!(!ran.load(Ordering::SeqCst), "an abandoned check ran");
    }

    #[test]
    fn a_dropped_pool_lets_its_threads_end() {
        let pool = HashingPool::new(2);
        let queue = Arc::downgrade(&pool.handle.0);
        drop(pool);
        // The threads hold the queue until they exit; bounded wait.
        for _ in 0..500 {
            if queue.upgrade().is_none() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("the pool's threads outlived the pool");
    }

    #[test]
    fn debug_shows_the_pool_size() {
        let shown = format!("{:?}", HashingPool::new(3));
        assert!(
            shown.starts_with("HashingPool") && shown.contains("size: 3"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_panicking_check_is_a_backend_error() {
        let err = HashingPool::new(1)
            .run(|| -> u8 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(!err.is_unavailable(), "{err}");
    }
}
