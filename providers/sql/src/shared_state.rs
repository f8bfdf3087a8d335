//! [`SharedStateStore`](mcp_oauth_provider::SharedStateStore) in SQL (tables `single_use_claims`
//! and `cimd_documents`, migration 0005), written once for both dialects and instantiated per store
//! by [`sql_shared_state!`].
//!
//! Atomicity: a claim is one statement, an upsert that only overwrites an expired record
//! (`INSERT … ON CONFLICT (claim_key) DO UPDATE … WHERE expires_at <= now`); it changed a row
//! exactly when the claim succeeded. On Postgres a racing insert of the same key waits on the
//! primary key and then sees the winner's live row, so no two servers on one database both win; on
//! SQLite the single writer serialises the statements. A document write is an upsert (the last
//! writer wins), a read filters on `expires_at`.

/// Generates `SharedStateStore` for `$store { pool: sqlx::Pool<$db>, writer }`.
macro_rules! sql_shared_state {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use mcp_oauth_provider::{CachedDocument, ProviderResult, SharedStateStore, UnixTime};

        use crate::errors::map_err;

        const CLAIM: &str = "INSERT INTO single_use_claims (claim_key, expires_at) VALUES ($1, $2) \
            ON CONFLICT (claim_key) DO UPDATE SET expires_at = excluded.expires_at \
            WHERE single_use_claims.expires_at <= $3";
        const GET_DOCUMENT: &str =
            "SELECT body, expires_at FROM cimd_documents WHERE url = $1 AND expires_at > $2";
        const PUT_DOCUMENT: &str = "INSERT INTO cimd_documents (url, body, expires_at) \
            VALUES ($1, $2, $3) ON CONFLICT (url) DO UPDATE SET body = excluded.body, \
            expires_at = excluded.expires_at";
        const PURGE: [&str; 2] = [
            "DELETE FROM single_use_claims WHERE claim_key IN \
            (SELECT claim_key FROM single_use_claims WHERE expires_at <= $1 LIMIT 500)",
            "DELETE FROM cimd_documents WHERE url IN \
            (SELECT url FROM cimd_documents WHERE expires_at <= $1 LIMIT 500)",
        ];
        const PURGE_BATCH: u64 = 500;

        impl $store {
            async fn shared_writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
                match &self.writer {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                }
            }
        }

        #[async_trait]
        impl SharedStateStore for $store {
            async fn claim_once(
                &self,
                key: &str,
                expires_at: UnixTime,
                now: UnixTime,
            ) -> ProviderResult<bool> {
                let _writer = self.shared_writer().await;
                let changed = sqlx::query(CLAIM)
                    .bind(key)
                    .bind(expires_at)
                    .bind(now)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("claim once", e))?
                    .rows_affected();
                Ok(changed == 1)
            }

            async fn get_document(
                &self,
                url: &str,
                now: UnixTime,
            ) -> ProviderResult<Option<CachedDocument>> {
                let row: Option<(Vec<u8>, i64)> = sqlx::query_as(GET_DOCUMENT)
                    .bind(url)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("read cached document", e))?;
                Ok(row.map(|(body, expires_at)| CachedDocument { body, expires_at }))
            }

            async fn put_document(&self, url: &str, doc: &CachedDocument) -> ProviderResult<()> {
                let _writer = self.shared_writer().await;
                sqlx::query(PUT_DOCUMENT)
                    .bind(url)
                    .bind(doc.body.as_slice())
                    .bind(doc.expires_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("write cached document", e))?;
                Ok(())
            }

            async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64> {
                let mut total = 0;
                for sql in PURGE {
                    loop {
                        let deleted = {
                            let _writer = self.shared_writer().await;
                            sqlx::query(sql)
                                .bind(now)
                                .execute(&self.pool)
                                .await
                                .map_err(|e| map_err("purge shared state", e))?
                                .rows_affected()
                        };
                        total += deleted;
                        if deleted < PURGE_BATCH {
                            break;
                        }
                        tokio::task::yield_now().await;
                    }
                }
                Ok(total)
            }
        }
    };
}

pub(crate) use sql_shared_state;
