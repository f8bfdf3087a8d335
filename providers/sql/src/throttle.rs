//! [`SignInThrottleStore`](mcp_oauth_provider::SignInThrottleStore) in SQL (table
//! `sign_in_throttle`, migration 0003), written once for both dialects and instantiated per store by
//! [`sql_throttle!`].
//!
//! Atomicity: every operation on one username runs in one transaction that first takes a lock on
//! that username, then reads, decides ([`ThrottlePolicy::decide`]) and writes. On Postgres the lock
//! is a transaction-scoped advisory lock in its own two-key space (`pg_advisory_xact_lock(72430022,
//! hashtext(username_key))`), so several servers on one database serialise on it; on SQLite this
//! process's writer lock plus SQLite's single writer do the same. Rows are never read-then-written
//! outside that lock, and a purge that deletes a row under a waiting transaction is harmless: a
//! missing row reads as the zero counter, which is what an expired row means.
//!
//! [`ThrottlePolicy::decide`]: mcp_oauth_provider::ThrottlePolicy::decide

/// Generates `SignInThrottleStore` for `$store { pool: sqlx::Pool<$db>, writer }`. `$lock` is SQL
/// taking a transaction-scoped lock on the username key `$1` (or `None`).
macro_rules! sql_throttle {
    ($store:ident, $db:ty, $lock:expr) => {
        use async_trait::async_trait;
        use mcp_oauth_provider::{
            ProviderResult, SignInAttempt, SignInThrottleStore, ThrottleCounter, ThrottleDecision,
            ThrottlePolicy, UnixTime, UsernameCounters,
        };

        use crate::errors::map_err;

        const USERNAME_LOCK: Option<&str> = $lock;
        /// The address key of a username's own row.
        const USER_ROW: &str = "";

        const SELECT: &str = "SELECT failures, last_failure, busy_until, known_until \
            FROM sign_in_throttle WHERE username_key = $1 AND address_key = $2";
        const UPSERT: &str = "INSERT INTO sign_in_throttle \
            (username_key, address_key, failures, last_failure, busy_until, known_until, expires_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7) \
            ON CONFLICT (username_key, address_key) DO UPDATE SET failures = excluded.failures, \
            last_failure = excluded.last_failure, busy_until = excluded.busy_until, \
            known_until = excluded.known_until, expires_at = excluded.expires_at";
        const PURGE: &str = "DELETE FROM sign_in_throttle WHERE (username_key, address_key) IN \
            (SELECT username_key, address_key FROM sign_in_throttle WHERE expires_at <= $1 LIMIT 500)";
        const PURGE_BATCH: u64 = 500;
        const SELECT_USERNAME: &str = "SELECT address_key, failures, last_failure, busy_until \
            FROM sign_in_throttle WHERE username_key = $1 ORDER BY address_key";
        /// Failures and leases go; known-address marks stay (a row without one expires at once).
        const CLEAR_USERNAME: &str = "UPDATE sign_in_throttle SET failures = 0, last_failure = 0, \
            busy_until = 0, expires_at = known_until WHERE username_key = $1 \
            AND (failures > 0 OR busy_until > 0)";

        type Conn = <$db as sqlx::Database>::Connection;

        /// A stored row: the counter and the known-address mark (0 = none).
        #[derive(Default, Clone, Copy)]
        struct Row {
            counter: ThrottleCounter,
            known_until: UnixTime,
        }

        async fn read(conn: &mut Conn, username_key: &str, address_key: &str) -> ProviderResult<Row> {
            let row: Option<(i64, i64, i64, i64)> = sqlx::query_as(SELECT)
                .bind(username_key)
                .bind(address_key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(|e| map_err("read sign-in throttle", e))?;
            Ok(match row {
                None => Row::default(),
                Some((failures, last_failure, busy_until, known_until)) => Row {
                    counter: ThrottleCounter {
                        failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
                        last_failure,
                        busy_until,
                    },
                    known_until,
                },
            })
        }

        async fn write(
            conn: &mut Conn,
            username_key: &str,
            address_key: &str,
            row: Row,
            policy: &ThrottlePolicy,
        ) -> ProviderResult<()> {
            sqlx::query(UPSERT)
                .bind(username_key)
                .bind(address_key)
                .bind(i64::from(row.counter.failures))
                .bind(row.counter.last_failure)
                .bind(row.counter.busy_until)
                .bind(row.known_until)
                .bind(policy.expires_at(&row.counter).max(row.known_until))
                .execute(&mut *conn)
                .await
                .map_err(|e| map_err("write sign-in throttle", e))?;
            Ok(())
        }

        async fn lock(conn: &mut Conn, username_key: &str) -> ProviderResult<()> {
            if let Some(sql) = USERNAME_LOCK {
                sqlx::query(sql)
                    .bind(username_key)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| map_err("lock sign-in throttle", e))?;
            }
            Ok(())
        }

        impl $store {
            async fn throttle_writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
                match &self.writer {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                }
            }
        }

        #[async_trait]
        impl SignInThrottleStore for $store {
            async fn begin_attempt(
                &self,
                a: &SignInAttempt,
                policy: &ThrottlePolicy,
            ) -> ProviderResult<ThrottleDecision> {
                let _writer = self.throttle_writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, &a.username_key).await?;
                let user = read(&mut tx, &a.username_key, USER_ROW).await?;
                let pair = read(&mut tx, &a.username_key, &a.address_key).await?;
                let known = pair.known_until > a.now;
                let (decision, user_counter, pair_counter) =
                    policy.decide(user.counter, pair.counter, known, a.now);
                if decision == ThrottleDecision::Admitted {
                    let user = Row { counter: user_counter, known_until: 0 };
                    let pair = Row { counter: pair_counter, known_until: pair.known_until };
                    write(&mut tx, &a.username_key, USER_ROW, user, policy).await?;
                    write(&mut tx, &a.username_key, &a.address_key, pair, policy).await?;
                }
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(decision)
            }

            async fn end_attempt(
                &self,
                a: &SignInAttempt,
                succeeded: bool,
                policy: &ThrottlePolicy,
            ) -> ProviderResult<()> {
                let _writer = self.throttle_writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, &a.username_key).await?;
                let mut user = read(&mut tx, &a.username_key, USER_ROW).await?;
                if succeeded {
                    write(&mut tx, &a.username_key, USER_ROW, Row::default(), policy).await?;
                    let known_until = if policy.known_address_ttl > 0 {
                        a.now.saturating_add(policy.known_address_ttl)
                    } else {
                        0
                    };
                    let pair = Row { counter: ThrottleCounter::default(), known_until };
                    write(&mut tx, &a.username_key, &a.address_key, pair, policy).await?;
                } else {
                    user.counter = policy.failed_at(user.counter, a.now);
                    write(&mut tx, &a.username_key, USER_ROW, user, policy).await?;
                    let mut pair = read(&mut tx, &a.username_key, &a.address_key).await?;
                    if pair.counter.failures > 0 {
                        pair.counter = policy.failed_at(pair.counter, a.now);
                        write(&mut tx, &a.username_key, &a.address_key, pair, policy).await?;
                    }
                }
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(())
            }

            async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64> {
                let mut total = 0;
                loop {
                    let deleted = {
                        let _writer = self.throttle_writer().await;
                        sqlx::query(PURGE)
                            .bind(now)
                            .execute(&self.pool)
                            .await
                            .map_err(|e| map_err("purge sign-in throttle", e))?
                            .rows_affected()
                    };
                    total += deleted;
                    if deleted < PURGE_BATCH {
                        return Ok(total);
                    }
                    tokio::task::yield_now().await;
                }
            }

            async fn username_counters(
                &self,
                username_key: &str,
            ) -> ProviderResult<UsernameCounters> {
                let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(SELECT_USERNAME)
                    .bind(username_key)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_err("read sign-in throttle", e))?;
                let mut out = UsernameCounters::default();
                for (address_key, failures, last_failure, busy_until) in rows {
                    let counter = ThrottleCounter {
                        failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
                        last_failure,
                        busy_until,
                    };
                    if address_key == USER_ROW {
                        out.user = counter;
                    } else if counter.failures > 0 {
                        out.addresses.push((address_key, counter));
                    }
                }
                Ok(out)
            }

            async fn clear_username(&self, username_key: &str) -> ProviderResult<u64> {
                let _writer = self.throttle_writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, username_key).await?;
                let cleared = sqlx::query(CLEAR_USERNAME)
                    .bind(username_key)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err("clear sign-in throttle", e))?
                    .rows_affected();
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(cleared)
            }
        }
    };
}

pub(crate) use sql_throttle;
