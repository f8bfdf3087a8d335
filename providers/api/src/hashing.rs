//! A bounded pool for CPU-heavy password checks (argon2, bcrypt), shared by every authenticator.
//!
//! Hashing takes 15–20 ms of CPU; on the async workers it would stall every other request. The core
//! creates one pool (`[login] password_hash_concurrency`, default cores − 1) and hands it to every
//! user-authenticator factory in [`FactoryContext::hashing`](crate::FactoryContext), so a burst of
//! sign-ins queues here instead of starving the token endpoint, whichever plugin checks the password.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{ProviderError, ProviderResult};

/// How long a check may wait for a slot before it fails as `Unavailable` (the user sees
/// "temporarily unavailable" and can retry).
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs blocking closures on tokio's blocking threads, at most `concurrency` at once.
#[derive(Clone, Debug)]
pub struct HashingPool {
    permits: Arc<Semaphore>,
    size: usize,
    /// Checks waiting for a slot (the queue depth the server's metrics report).
    waiting: Arc<AtomicUsize>,
}

/// Counts a check as waiting until it has its slot (or gave up): dropped on every path.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HashingPool {
    /// `concurrency` 0 = cores − 1 (at least 1).
    pub fn new(concurrency: usize) -> Self {
        let size = if concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get().saturating_sub(1))
                .unwrap_or(1)
                .max(1)
        } else {
            concurrency
        };
        Self {
            permits: Arc::new(Semaphore::new(size)),
            size,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// How many checks may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Checks waiting for a slot right now (the login-hashing queue depth).
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Checks running right now.
    pub fn running(&self) -> usize {
        self.size.saturating_sub(self.permits.available_permits())
    }

    /// Runs `work` on a blocking thread once a slot is free. Waiting longer than [`QUEUE_TIMEOUT`]
    /// is `Unavailable`; a panicking `work` is a `Backend` error.
    pub async fn run<T, F>(&self, work: F) -> ProviderResult<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waiting = Waiting(&self.waiting);
        let permit =
            tokio::time::timeout(QUEUE_TIMEOUT, Arc::clone(&self.permits).acquire_owned()).await;
        drop(waiting);
        let permit = permit
            .map_err(|_| ProviderError::unavailable_msg("too many sign-ins at once"))?
            .map_err(|_| ProviderError::backend_msg("password pool closed"))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| ProviderError::backend("password check task failed", e))
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

    #[tokio::test]
    async fn a_panicking_check_is_a_backend_error() {
        let err = HashingPool::new(1)
            .run(|| -> u8 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(!err.is_unavailable(), "{err}");
    }
}
