//! The stores, written once as SQL valid in both SQLite and Postgres (`$N` placeholders, `RETURNING`,
//! `ON CONFLICT`), and instantiated per dialect by [`sql_store!`] for a concrete pool type, so no
//! query is written twice and no `if dialect == …` branch sits inside a query.
//!
//! Atomicity is done in SQL, never read-then-write:
//! - `take_code`: `UPDATE … SET used = 1 WHERE code_hash = $1 AND used = 0 RETURNING …` — of racing
//!   callers exactly one gets the row.
//! - `rotate_refresh_token`: one transaction that starts with the conditional `UPDATE … WHERE state =
//!   'active' … RETURNING` (taking the row's write lock first), then inserts the successors.
//! - family revocation vs. a racing insert: both take a per-family lock (Postgres advisory lock;
//!   SQLite serialises writers), and inserts consult `revoked_families`.
//!
//! Expired rows are purged in batches of 500 by primary key, so a large backlog never holds the
//! database (or SQLite's single writer slot) for long. On SQLite this process's writers queue on an
//! async lock rather than in SQLite's sleeping busy handler.

/// Generates `ClientStore`, `TokenStore`, `KeyStore`, `InteractionStore` and `UserStore` for
/// `$store { pool: sqlx::Pool<$db> }`. `$family_lock` is SQL taking a transaction-scoped lock on the
/// family `$1` (or `None`); `$keys_lock` likewise for the signing-key table.
macro_rules! sql_store {
    ($store:ident, $db:ty, $family_lock:expr, $keys_lock:expr) => {
        use async_trait::async_trait;
        use mcp_oauth_provider::{
            AccessTokenRecord, AuthenticatedUser, AuthorizationCode, Client, ClientOrigin, ClientStore, CodeRedemption,
            ConsentRecord, GrantFilter, GrantSummary, InteractionStore, KeyStore, LoginTransaction, ProviderError, ProviderResult,
            PurgeCounts, RefreshTokenRecord, RefreshTokenState, RevokeTarget, RotateRefreshToken, Rotation,
            SecretHash, SigningKeyRecord, TokenEndpointAuthMethod, TokenStore, UnixTime, UserRecord, UserStore,
        };
        use sqlx::Row;

        use crate::errors::map_err;
        use crate::json::{from_json, to_json};

        type DbRow = <$db as sqlx::Database>::Row;

        const FAMILY_LOCK: Option<&str> = $family_lock;
        const KEYS_LOCK: Option<&str> = $keys_lock;

        fn get<'r, T>(row: &'r DbRow, col: &'static str) -> ProviderResult<T>
        where
            T: sqlx::Decode<'r, $db> + sqlx::Type<$db>,
        {
            row.try_get::<T, _>(col).map_err(|e| map_err(col, e))
        }

        fn client_from_row(row: &DbRow) -> ProviderResult<Client> {
            let method: String = get(row, "token_endpoint_auth_method")?;
            let scope: Option<String> = get(row, "scope")?;
            Ok(Client {
                client_id: get(row, "client_id")?,
                client_secret_hash: get::<Option<String>>(row, "client_secret_hash")?.map(SecretHash),
                client_secret_expires_at: get(row, "client_secret_expires_at")?,
                client_id_issued_at: get(row, "client_id_issued_at")?,
                client_name: get(row, "client_name")?,
                redirect_uris: from_json("redirect_uris", &get::<String>(row, "redirect_uris")?)?,
                grant_types: from_json("grant_types", &get::<String>(row, "grant_types")?)?,
                response_types: from_json("response_types", &get::<String>(row, "response_types")?)?,
                token_endpoint_auth_method: TokenEndpointAuthMethod::parse(&method)
                    .ok_or_else(|| ProviderError::backend_msg(format!("stored auth method {method:?} is unknown")))?,
                scope: scope.map(|s| from_json("scope", &s)).transpose()?,
                extra_metadata: from_json("extra_metadata", &get::<String>(row, "extra_metadata")?)?,
                origin: {
                    let origin: String = get(row, "origin")?;
                    ClientOrigin::parse(&origin)
                        .ok_or_else(|| ProviderError::backend_msg(format!("stored client origin {origin:?} is unknown")))?
                },
                approved_at: get(row, "approved_at")?,
                resource_server: get::<i64>(row, "resource_server")? != 0,
            })
        }

        fn code_from_row(row: &DbRow) -> ProviderResult<AuthorizationCode> {
            Ok(AuthorizationCode {
                code_hash: SecretHash(get(row, "code_hash")?),
                family_id: get(row, "family_id")?,
                client_id: get(row, "client_id")?,
                subject: get(row, "subject")?,
                redirect_uri: get(row, "redirect_uri")?,
                redirect_uri_explicit: get::<i64>(row, "redirect_uri_explicit")? != 0,
                code_challenge: get(row, "code_challenge")?,
                scopes: from_json("scopes", &get::<String>(row, "scopes")?)?,
                resource: get(row, "resource")?,
                issued_at: get(row, "issued_at")?,
                expires_at: get(row, "expires_at")?,
            })
        }

        fn access_from_row(row: &DbRow) -> ProviderResult<AccessTokenRecord> {
            Ok(AccessTokenRecord {
                jti: get(row, "jti")?,
                family_id: get(row, "family_id")?,
                client_id: get(row, "client_id")?,
                subject: get(row, "subject")?,
                scopes: from_json("scopes", &get::<String>(row, "scopes")?)?,
                resource: get(row, "resource")?,
                issued_at: get(row, "issued_at")?,
                expires_at: get(row, "expires_at")?,
                revoked: get::<i64>(row, "revoked")? != 0,
            })
        }

        fn refresh_from_row(row: &DbRow) -> ProviderResult<RefreshTokenRecord> {
            let state: String = get(row, "state")?;
            let rotated_at: Option<i64> = get(row, "rotated_at")?;
            Ok(RefreshTokenRecord {
                token_hash: SecretHash(get(row, "token_hash")?),
                family_id: get(row, "family_id")?,
                client_id: get(row, "client_id")?,
                subject: get(row, "subject")?,
                scopes: from_json("scopes", &get::<String>(row, "scopes")?)?,
                resource: get(row, "resource")?,
                issued_at: get(row, "issued_at")?,
                expires_at: get(row, "expires_at")?,
                grant_expires_at: get(row, "grant_expires_at")?,
                state: match (state.as_str(), rotated_at) {
                    ("active", _) => RefreshTokenState::Active,
                    ("rotated", Some(at)) => RefreshTokenState::Rotated { at },
                    ("revoked", _) => RefreshTokenState::Revoked,
                    _ => return Err(ProviderError::backend_msg(format!("stored refresh state {state:?} is invalid"))),
                },
            })
        }

        fn key_from_row(row: &DbRow) -> ProviderResult<SigningKeyRecord> {
            Ok(SigningKeyRecord {
                kid: get(row, "kid")?,
                algorithm: get(row, "algorithm")?,
                private_key: get(row, "private_key")?,
                public_jwk: get(row, "public_jwk")?,
                created_at: get(row, "created_at")?,
                active: get::<i64>(row, "active")? != 0,
                retire_at: get(row, "retire_at")?,
            })
        }

        fn tx_from_row(row: &DbRow) -> ProviderResult<LoginTransaction> {
            let user: Option<String> = get(row, "user_json")?;
            Ok(LoginTransaction {
                id_hash: SecretHash(get(row, "id_hash")?),
                browser_binding_hash: SecretHash(get(row, "browser_binding_hash")?),
                csrf_token: get(row, "csrf_token")?,
                client_id: get(row, "client_id")?,
                redirect_uri: get(row, "redirect_uri")?,
                redirect_uri_explicit: get::<i64>(row, "redirect_uri_explicit")? != 0,
                state: get(row, "state")?,
                code_challenge: get(row, "code_challenge")?,
                scopes: from_json("scopes", &get::<String>(row, "scopes")?)?,
                resource: get(row, "resource")?,
                user: user.map(|u| from_json::<AuthenticatedUser>("user_json", &u)).transpose()?,
                created_at: get(row, "created_at")?,
                expires_at: get(row, "expires_at")?,
            })
        }

        fn user_from_row(row: &DbRow) -> ProviderResult<UserRecord> {
            Ok(UserRecord {
                username: get(row, "username")?,
                subject: get(row, "subject")?,
                password_hash: get(row, "password_hash")?,
                created_at: get(row, "created_at")?,
            })
        }

        /// Inserts an access record (born revoked if its family is) on `conn`.
        pub(crate) async fn insert_access(
            conn: &mut <$db as sqlx::Database>::Connection,
            a: &AccessTokenRecord,
        ) -> ProviderResult<()> {
            sqlx::query(
                "INSERT INTO access_tokens (jti, family_id, client_id, subject, scopes, resource, issued_at, expires_at, revoked) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, \
                 CASE WHEN $9 = 1 OR EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2) THEN 1 ELSE 0 END",
            )
            .bind(&a.jti)
            .bind(&a.family_id)
            .bind(&a.client_id)
            .bind(&a.subject)
            .bind(to_json(&a.scopes)?)
            .bind(&a.resource)
            .bind(a.issued_at)
            .bind(a.expires_at)
            .bind(i64::from(a.revoked))
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err("insert access token", e))?;
            Ok(())
        }

        /// Inserts a refresh record (born revoked if its family is) on `conn`.
        pub(crate) async fn insert_refresh(
            conn: &mut <$db as sqlx::Database>::Connection,
            r: &RefreshTokenRecord,
        ) -> ProviderResult<()> {
            let (state, rotated_at) = match r.state {
                RefreshTokenState::Active => ("active", None),
                RefreshTokenState::Rotated { at } => ("rotated", Some(at)),
                RefreshTokenState::Revoked => ("revoked", None),
            };
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, family_id, client_id, subject, scopes, resource, issued_at, expires_at, state, rotated_at, grant_expires_at) \
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, \
                 CASE WHEN EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2) THEN 'revoked' ELSE $9 END, $10, $11",
            )
            .bind(&r.token_hash.0)
            .bind(&r.family_id)
            .bind(&r.client_id)
            .bind(&r.subject)
            .bind(to_json(&r.scopes)?)
            .bind(&r.resource)
            .bind(r.issued_at)
            .bind(r.expires_at)
            .bind(state)
            .bind(rotated_at)
            .bind(r.grant_expires_at)
            .execute(&mut *conn)
            .await
            .map_err(|e| map_err("insert refresh token", e))?;
            Ok(())
        }

        /// The decision and the writes of `rotate_refresh_token` (see its contract) on `conn`, inside
        /// a transaction the caller opened (holding the family lock) and commits. Writes only when it
        /// answers `Rotated`.
        pub(crate) async fn rotate_in(
            conn: &mut <$db as sqlx::Database>::Connection,
            req: &RotateRefreshToken,
        ) -> ProviderResult<Rotation> {
            // Then the conditional update: it takes the row's write lock, so of racing
            // rotations exactly one sees state = 'active'.
            let rotated = sqlx::query(
                "UPDATE refresh_tokens SET state = 'rotated', rotated_at = $2 \
                 WHERE token_hash = $1 AND state = 'active' AND expires_at > $2 \
                 AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = refresh_tokens.family_id) \
                 RETURNING *",
            )
            .bind(&req.old_hash.0)
            .bind(req.now)
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| map_err("rotate refresh token", e))?;
            let old = match rotated {
                Some(row) => refresh_from_row(&row)?,
                None => {
                    let row = sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                        .bind(&req.old_hash.0)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(|e| map_err("get refresh token", e))?;
                    let Some(row) = row else { return Ok(Rotation::Unknown) };
                    let old = refresh_from_row(&row)?;
                    let family_revoked: Option<i64> =
                        sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM revoked_families WHERE family_id = $1")
                            .bind(&old.family_id)
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err(|e| map_err("check family", e))?;
                    if old.expires_at <= req.now || family_revoked.is_some() {
                        return Ok(Rotation::Unknown);
                    }
                    return match old.state {
                        RefreshTokenState::Rotated { at } if at >= req.reuse_grace_since => {
                            let sealed: Option<Vec<u8>> = get(&row, "successor")?;
                            Ok(match sealed {
                                Some(sealed_successor) => Rotation::Replayed { old, sealed_successor },
                                None => Rotation::Reused(old),
                            })
                        }
                        RefreshTokenState::Rotated { .. } => Ok(Rotation::Reused(old)),
                        _ => Ok(Rotation::Unknown),
                    };
                }
            };
            sqlx::query("UPDATE refresh_tokens SET successor = $2 WHERE token_hash = $1")
                .bind(&req.old_hash.0)
                .bind(&req.sealed_successor)
                .execute(&mut *conn)
                .await
                .map_err(|e| map_err("keep successor", e))?;
            insert_access(&mut *conn, &req.new_access).await?;
            insert_refresh(&mut *conn, &req.new_refresh).await?;
            Ok(Rotation::Rotated(old))
        }

        async fn lock(conn: &mut <$db as sqlx::Database>::Connection, sql: Option<&'static str>, key: &str) -> ProviderResult<()> {
            if let Some(sql) = sql {
                sqlx::query(sql).bind(key).execute(&mut *conn).await.map_err(|e| map_err("take lock", e))?;
            }
            Ok(())
        }

        /// Purge statements: at most `PURGE_BATCH` rows each, chosen by primary key (valid SQL in both
        /// dialects), so a large backlog is deleted in short steps between which requests write.
        const PURGE_BATCH: u64 = 500;
        const PURGE_CODES: &str = "DELETE FROM authorization_codes WHERE code_hash IN \
            (SELECT code_hash FROM authorization_codes WHERE expires_at <= $1 LIMIT 500)";
        const PURGE_ACCESS: &str = "DELETE FROM access_tokens WHERE jti IN \
            (SELECT jti FROM access_tokens WHERE expires_at <= $1 LIMIT 500)";
        const PURGE_REFRESH: &str = "DELETE FROM refresh_tokens WHERE token_hash IN \
            (SELECT token_hash FROM refresh_tokens WHERE expires_at <= $1 LIMIT 500)";
        const PURGE_FAMILIES: &str = "DELETE FROM revoked_families WHERE family_id IN \
            (SELECT family_id FROM revoked_families WHERE remember_until <= $1 LIMIT 500)";
        const PURGE_UNUSED_CLIENTS: &str = "DELETE FROM clients WHERE client_id IN \
            (SELECT client_id FROM clients WHERE approved_at IS NULL AND origin = 'registration' \
             AND client_id_issued_at < $1 LIMIT 500)";
        const PURGE_CONSENTS: &str = "DELETE FROM consents WHERE (subject, client_id, resource) IN \
            (SELECT subject, client_id, resource FROM consents WHERE expires_at <= $1 LIMIT 500)";
        /// Live grants: families with an unrevoked, unexpired access or refresh token, filtered by
        /// subject ($2) and client ($3), '' meaning any.
        const LIST_GRANTS: &str = "SELECT family_id, client_id, subject, resource, \
            MIN(issued_at) AS issued_at, MAX(expires_at) AS expires_at, MAX(refreshable) AS refreshable FROM ( \
              SELECT family_id, client_id, subject, resource, issued_at, expires_at, CAST(0 AS BIGINT) AS refreshable \
                FROM access_tokens WHERE revoked = 0 AND expires_at > $1 \
              UNION ALL \
              SELECT family_id, client_id, subject, resource, issued_at, expires_at, CAST(1 AS BIGINT) AS refreshable \
                FROM refresh_tokens WHERE state = 'active' AND expires_at > $1 \
            ) live \
            WHERE ($2 = '' OR subject = $2) AND ($3 = '' OR client_id = $3) \
              AND NOT EXISTS (SELECT 1 FROM revoked_families f WHERE f.family_id = live.family_id) \
            GROUP BY family_id, client_id, subject, resource ORDER BY MIN(issued_at), family_id";
        /// Every family with a code or token matching subject ($1) and client ($2), '' meaning any.
        const GRANT_FAMILIES: &str = "SELECT family_id FROM authorization_codes WHERE ($1 = '' OR subject = $1) AND ($2 = '' OR client_id = $2) \
            UNION SELECT family_id FROM access_tokens WHERE ($1 = '' OR subject = $1) AND ($2 = '' OR client_id = $2) \
            UNION SELECT family_id FROM refresh_tokens WHERE ($1 = '' OR subject = $1) AND ($2 = '' OR client_id = $2)";
        const PURGE_TRANSACTIONS: &str = "DELETE FROM login_transactions WHERE id_hash IN \
            (SELECT id_hash FROM login_transactions WHERE expires_at <= $1 LIMIT 500)";

        impl $store {
            /// Runs one batched purge statement until a batch comes back short; the writer lock is
            /// taken per batch, never for the whole purge.
            async fn purge_table(&self, sql: &'static str, now: UnixTime) -> ProviderResult<u64> {
                let mut total = 0;
                loop {
                    let deleted = {
                        let _writer = self.writer().await;
                        sqlx::query(sql)
                            .bind(now)
                            .execute(&self.pool)
                            .await
                            .map_err(|e| map_err("purge", e))?
                            .rows_affected()
                    };
                    total += deleted;
                    if deleted < PURGE_BATCH {
                        return Ok(total);
                    }
                    tokio::task::yield_now().await;
                }
            }

            /// Serialises this process's writes when the store has a writer lock (SQLite: one
            /// writer at a time anyway; queueing here avoids SQLite's sleeping busy handler).
            async fn writer(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
                match &self.writer {
                    Some(lock) => Some(lock.lock().await),
                    None => None,
                }
            }
        }

        #[async_trait]
        impl ClientStore for $store {
            async fn get_client(&self, client_id: &str) -> ProviderResult<Option<Client>> {
                sqlx::query("SELECT * FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get client", e))?
                    .map(|r| client_from_row(&r))
                    .transpose()
            }

            async fn insert_client(&self, c: Client) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query(
                    "INSERT INTO clients (client_id, client_secret_hash, client_secret_expires_at, client_id_issued_at, client_name, \
                     redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, extra_metadata, \
                     origin, approved_at, resource_server) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(&c.client_id)
                .bind(c.client_secret_hash.as_ref().map(|h| h.0.clone()))
                .bind(c.client_secret_expires_at)
                .bind(c.client_id_issued_at)
                .bind(&c.client_name)
                .bind(to_json(&c.redirect_uris)?)
                .bind(to_json(&c.grant_types)?)
                .bind(to_json(&c.response_types)?)
                .bind(c.token_endpoint_auth_method.as_str())
                .bind(c.scope.as_ref().map(to_json).transpose()?)
                .bind(to_json(&c.extra_metadata)?)
                .bind(c.origin.as_str())
                .bind(c.approved_at)
                .bind(i64::from(c.resource_server))
                .execute(&self.pool)
                .await
                .map_err(|e| map_err("insert client", e))?;
                Ok(())
            }

            async fn list_clients(&self) -> ProviderResult<Vec<Client>> {
                sqlx::query("SELECT * FROM clients ORDER BY client_id_issued_at, client_id")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_err("list clients", e))?
                    .iter()
                    .map(client_from_row)
                    .collect()
            }

            async fn delete_client(&self, client_id: &str) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                let deleted = sqlx::query("DELETE FROM clients WHERE client_id = $1")
                    .bind(client_id)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("delete client", e))?
                    .rows_affected();
                Ok(deleted > 0)
            }

            async fn mark_client_approved(&self, client_id: &str, at: UnixTime) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query("UPDATE clients SET approved_at = $2 WHERE client_id = $1 AND approved_at IS NULL")
                    .bind(client_id)
                    .bind(at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("mark client approved", e))?;
                Ok(())
            }

            async fn purge_unused_clients(&self, registered_before: UnixTime) -> ProviderResult<u64> {
                self.purge_table(PURGE_UNUSED_CLIENTS, registered_before).await
            }

            async fn touch_client(&self, client_id: &str, at: UnixTime) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query(
                    "UPDATE clients SET last_used_at = $2 WHERE client_id = $1 \
                     AND (last_used_at IS NULL OR last_used_at < $2)",
                )
                .bind(client_id)
                .bind(at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err("record client use", e))?;
                Ok(())
            }

            async fn clients_last_used(
                &self,
            ) -> ProviderResult<std::collections::HashMap<String, UnixTime>> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT client_id, last_used_at FROM clients WHERE last_used_at IS NOT NULL",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_err("read client use", e))?;
                Ok(rows.into_iter().collect())
            }
        }

        #[async_trait]
        impl TokenStore for $store {
            async fn insert_code(&self, c: AuthorizationCode) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query(
                    "INSERT INTO authorization_codes (code_hash, family_id, client_id, subject, redirect_uri, redirect_uri_explicit, \
                     code_challenge, scopes, resource, issued_at, expires_at, used) \
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
                     CASE WHEN EXISTS (SELECT 1 FROM revoked_families WHERE family_id = $2) THEN 1 ELSE 0 END",
                )
                .bind(&c.code_hash.0)
                .bind(&c.family_id)
                .bind(&c.client_id)
                .bind(&c.subject)
                .bind(&c.redirect_uri)
                .bind(i64::from(c.redirect_uri_explicit))
                .bind(&c.code_challenge)
                .bind(to_json(&c.scopes)?)
                .bind(&c.resource)
                .bind(c.issued_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err("insert code", e))?;
                Ok(())
            }

            async fn take_code(&self, code_hash: &SecretHash) -> ProviderResult<CodeRedemption> {
                let _writer = self.writer().await;
                let taken = sqlx::query("UPDATE authorization_codes SET used = 1 WHERE code_hash = $1 AND used = 0 RETURNING *")
                    .bind(&code_hash.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("take code", e))?;
                if let Some(row) = taken {
                    return Ok(CodeRedemption::Redeemed(code_from_row(&row)?));
                }
                let family: Option<String> = sqlx::query_scalar("SELECT family_id FROM authorization_codes WHERE code_hash = $1")
                    .bind(&code_hash.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("look up code", e))?;
                Ok(match family {
                    Some(family_id) => CodeRedemption::Replayed { family_id },
                    None => CodeRedemption::Unknown,
                })
            }

            async fn insert_tokens(&self, access: AccessTokenRecord, refresh: Option<RefreshTokenRecord>) -> ProviderResult<()> {
                #[cfg(feature = "sqlite")]
                if let Some(group) = self.group_commit() {
                    return group.insert_tokens(access, refresh).await;
                }
                let _writer = self.writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, FAMILY_LOCK, &access.family_id).await?;
                insert_access(&mut tx, &access).await?;
                if let Some(r) = &refresh {
                    insert_refresh(&mut tx, r).await?;
                }
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(())
            }

            async fn get_access_token(&self, jti: &str) -> ProviderResult<Option<AccessTokenRecord>> {
                sqlx::query("SELECT * FROM access_tokens WHERE jti = $1")
                    .bind(jti)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get access token", e))?
                    .map(|r| access_from_row(&r))
                    .transpose()
            }

            async fn get_refresh_token(&self, token_hash: &SecretHash) -> ProviderResult<Option<RefreshTokenRecord>> {
                sqlx::query("SELECT * FROM refresh_tokens WHERE token_hash = $1")
                    .bind(&token_hash.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get refresh token", e))?
                    .map(|r| refresh_from_row(&r))
                    .transpose()
            }

            async fn rotate_refresh_token(&self, req: RotateRefreshToken) -> ProviderResult<Rotation> {
                #[cfg(feature = "sqlite")]
                if let Some(group) = self.group_commit() {
                    return group.rotate(req).await;
                }
                let _writer = self.writer().await;
                // Locks in the order revoke_family takes them: the family lock first, then the
                // token's row. (The other way round, a rotation racing a revocation deadlocks on
                // Postgres.) A token's family never changes, so it is read before the transaction:
                // on SQLite a transaction that reads first cannot upgrade to a write once another
                // connection wrote ("database is locked"), so the transaction starts with a write.
                let family: Option<String> =
                    sqlx::query_scalar("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                        .bind(&req.old_hash.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(|e| map_err("get refresh token", e))?;
                let Some(family) = family else { return Ok(Rotation::Unknown) };
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, FAMILY_LOCK, &family).await?;
                let rotation = rotate_in(&mut tx, &req).await?;
                if matches!(rotation, Rotation::Rotated(_)) {
                    tx.commit().await.map_err(|e| map_err("commit", e))?;
                }
                Ok(rotation)
            }

            async fn revoke(&self, target: RevokeTarget) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                let result = match target {
                    RevokeTarget::AccessToken { jti } => sqlx::query("UPDATE access_tokens SET revoked = 1 WHERE jti = $1")
                        .bind(jti)
                        .execute(&self.pool)
                        .await,
                    RevokeTarget::RefreshToken { token_hash } => {
                        sqlx::query("UPDATE refresh_tokens SET state = 'revoked' WHERE token_hash = $1")
                            .bind(token_hash.0)
                            .execute(&self.pool)
                            .await
                    }
                };
                Ok(result.map_err(|e| map_err("revoke", e))?.rows_affected() > 0)
            }

            async fn revoke_family(&self, family_id: &str, remember_until: UnixTime) -> ProviderResult<()> {
                let _writer = self.writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, FAMILY_LOCK, family_id).await?;
                sqlx::query(
                    "INSERT INTO revoked_families (family_id, remember_until) VALUES ($1, $2) \
                     ON CONFLICT (family_id) DO UPDATE SET remember_until = \
                     CASE WHEN revoked_families.remember_until > excluded.remember_until \
                     THEN revoked_families.remember_until ELSE excluded.remember_until END",
                )
                .bind(family_id)
                .bind(remember_until)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err("remember revoked family", e))?;
                for sql in [
                    "UPDATE authorization_codes SET used = 1 WHERE family_id = $1",
                    "UPDATE access_tokens SET revoked = 1 WHERE family_id = $1",
                    "UPDATE refresh_tokens SET state = 'revoked' WHERE family_id = $1",
                ] {
                    sqlx::query(sql).bind(family_id).execute(&mut *tx).await.map_err(|e| map_err("revoke family", e))?;
                }
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(())
            }

            async fn purge_expired(&self, now: UnixTime) -> ProviderResult<PurgeCounts> {
                let counts = PurgeCounts {
                    codes: self.purge_table(PURGE_CODES, now).await?,
                    access_tokens: self.purge_table(PURGE_ACCESS, now).await?,
                    refresh_tokens: self.purge_table(PURGE_REFRESH, now).await?,
                };
                self.purge_table(PURGE_FAMILIES, now).await?;
                Ok(counts)
            }

            async fn clear_successors(&self, rotated_before: UnixTime) -> ProviderResult<u64> {
                let _writer = self.writer().await;
                Ok(sqlx::query(
                    "UPDATE refresh_tokens SET successor = NULL WHERE successor IS NOT NULL AND state <> 'active' \
                     AND (rotated_at IS NULL OR rotated_at < $1)",
                )
                .bind(rotated_before)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err("clear successors", e))?
                .rows_affected())
            }

            async fn list_grants(&self, filter: &GrantFilter, now: UnixTime) -> ProviderResult<Vec<GrantSummary>> {
                sqlx::query(LIST_GRANTS)
                    .bind(now)
                    .bind(filter.subject.as_deref().unwrap_or(""))
                    .bind(filter.client_id.as_deref().unwrap_or(""))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_err("list grants", e))?
                    .iter()
                    .map(|r| {
                        Ok(GrantSummary {
                            family_id: get(r, "family_id")?,
                            client_id: get(r, "client_id")?,
                            subject: get(r, "subject")?,
                            resource: get(r, "resource")?,
                            issued_at: get(r, "issued_at")?,
                            expires_at: get(r, "expires_at")?,
                            refreshable: get::<i64>(r, "refreshable")? != 0,
                        })
                    })
                    .collect()
            }

            async fn revoke_grants(&self, filter: &GrantFilter, remember_until: UnixTime) -> ProviderResult<u64> {
                if filter.subject.is_none() && filter.client_id.is_none() {
                    return Err(ProviderError::Unsupported("revoking grants needs a subject or a client".into()));
                }
                let families: Vec<String> = sqlx::query_scalar(GRANT_FAMILIES)
                    .bind(filter.subject.as_deref().unwrap_or(""))
                    .bind(filter.client_id.as_deref().unwrap_or(""))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_err("find grants", e))?;
                for family in &families {
                    self.revoke_family(family, remember_until).await?;
                }
                Ok(families.len() as u64)
            }
        }

        #[async_trait]
        impl KeyStore for $store {
            async fn list_keys(&self) -> ProviderResult<Vec<SigningKeyRecord>> {
                sqlx::query("SELECT * FROM signing_keys ORDER BY created_at DESC, kid DESC")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_err("list keys", e))?
                    .iter()
                    .map(key_from_row)
                    .collect()
            }

            async fn insert_key(&self, k: SigningKeyRecord) -> ProviderResult<()> {
                let _writer = self.writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, KEYS_LOCK, "signing_keys").await?;
                if k.active {
                    sqlx::query("UPDATE signing_keys SET active = 0 WHERE active = 1")
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| map_err("deactivate keys", e))?;
                }
                sqlx::query(
                    "INSERT INTO signing_keys (kid, algorithm, private_key, public_jwk, created_at, active, retire_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&k.kid)
                .bind(&k.algorithm)
                .bind(&k.private_key)
                .bind(&k.public_jwk)
                .bind(k.created_at)
                .bind(i64::from(k.active))
                .bind(k.retire_at)
                .execute(&mut *tx)
                .await
                .map_err(|e| map_err("insert key", e))?;
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(())
            }

            async fn activate_key(&self, kid: &str, retire_previous_at: UnixTime) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                let mut tx = self.pool.begin().await.map_err(|e| map_err("begin", e))?;
                lock(&mut tx, KEYS_LOCK, "signing_keys").await?;
                let exists: Option<i64> = sqlx::query_scalar("SELECT CAST(1 AS BIGINT) FROM signing_keys WHERE kid = $1")
                    .bind(kid)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| map_err("find key", e))?;
                if exists.is_none() {
                    return Ok(false);
                }
                sqlx::query("UPDATE signing_keys SET active = 0, retire_at = $2 WHERE active = 1 AND kid <> $1")
                    .bind(kid)
                    .bind(retire_previous_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err("retire key", e))?;
                sqlx::query("UPDATE signing_keys SET active = 1, retire_at = NULL WHERE kid = $1")
                    .bind(kid)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| map_err("activate key", e))?;
                tx.commit().await.map_err(|e| map_err("commit", e))?;
                Ok(true)
            }

            async fn delete_key(&self, kid: &str) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                Ok(sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                    .bind(kid)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("delete key", e))?
                    .rows_affected()
                    > 0)
            }
        }

        #[async_trait]
        impl InteractionStore for $store {
            async fn insert_transaction(&self, t: LoginTransaction) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query(
                    "INSERT INTO login_transactions (id_hash, browser_binding_hash, csrf_token, client_id, redirect_uri, \
                     redirect_uri_explicit, state, code_challenge, scopes, resource, user_json, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(&t.id_hash.0)
                .bind(&t.browser_binding_hash.0)
                .bind(&t.csrf_token)
                .bind(&t.client_id)
                .bind(&t.redirect_uri)
                .bind(i64::from(t.redirect_uri_explicit))
                .bind(&t.state)
                .bind(&t.code_challenge)
                .bind(to_json(&t.scopes)?)
                .bind(&t.resource)
                .bind(t.user.as_ref().map(to_json).transpose()?)
                .bind(t.created_at)
                .bind(t.expires_at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err("insert login transaction", e))?;
                Ok(())
            }

            async fn get_transaction(&self, id_hash: &SecretHash) -> ProviderResult<Option<LoginTransaction>> {
                sqlx::query("SELECT * FROM login_transactions WHERE id_hash = $1")
                    .bind(&id_hash.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get login transaction", e))?
                    .map(|r| tx_from_row(&r))
                    .transpose()
            }

            async fn set_transaction_user(&self, id_hash: &SecretHash, user: AuthenticatedUser) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                Ok(sqlx::query("UPDATE login_transactions SET user_json = $2 WHERE id_hash = $1")
                    .bind(&id_hash.0)
                    .bind(to_json(&user)?)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("set transaction user", e))?
                    .rows_affected()
                    > 0)
            }

            async fn take_transaction(&self, id_hash: &SecretHash) -> ProviderResult<Option<LoginTransaction>> {
                let _writer = self.writer().await;
                sqlx::query("DELETE FROM login_transactions WHERE id_hash = $1 RETURNING *")
                    .bind(&id_hash.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("take login transaction", e))?
                    .map(|r| tx_from_row(&r))
                    .transpose()
            }

            async fn remember_consent(&self, c: ConsentRecord) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query(
                    "INSERT INTO consents (subject, client_id, resource, scopes, granted_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (subject, client_id, resource) DO UPDATE SET scopes = excluded.scopes, \
                     granted_at = excluded.granted_at, expires_at = excluded.expires_at",
                )
                .bind(&c.subject)
                .bind(&c.client_id)
                .bind(&c.resource)
                .bind(to_json(&c.scopes)?)
                .bind(c.granted_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await
                .map_err(|e| map_err("remember consent", e))?;
                Ok(())
            }

            async fn get_consent(&self, subject: &str, client_id: &str, resource: &str, now: UnixTime) -> ProviderResult<Option<ConsentRecord>> {
                let row = sqlx::query("SELECT * FROM consents WHERE subject = $1 AND client_id = $2 AND resource = $3 AND expires_at > $4")
                    .bind(subject)
                    .bind(client_id)
                    .bind(resource)
                    .bind(now)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get consent", e))?;
                row.map(|r| {
                    Ok(ConsentRecord {
                        subject: get(&r, "subject")?,
                        client_id: get(&r, "client_id")?,
                        resource: get(&r, "resource")?,
                        scopes: from_json("scopes", &get::<String>(&r, "scopes")?)?,
                        granted_at: get(&r, "granted_at")?,
                        expires_at: get(&r, "expires_at")?,
                    })
                })
                .transpose()
            }

            async fn forget_consents(&self, subject: &str) -> ProviderResult<u64> {
                let _writer = self.writer().await;
                Ok(sqlx::query("DELETE FROM consents WHERE subject = $1")
                    .bind(subject)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("forget consents", e))?
                    .rows_affected())
            }

            async fn purge_expired(&self, now: UnixTime) -> ProviderResult<u64> {
                Ok(self.purge_table(PURGE_TRANSACTIONS, now).await? + self.purge_table(PURGE_CONSENTS, now).await?)
            }
        }

        #[async_trait]
        impl UserStore for $store {
            async fn get_user(&self, username: &str) -> ProviderResult<Option<UserRecord>> {
                sqlx::query("SELECT * FROM users WHERE username = $1")
                    .bind(username)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get user", e))?
                    .map(|r| user_from_row(&r))
                    .transpose()
            }

            async fn get_user_by_subject(&self, subject: &str) -> ProviderResult<Option<UserRecord>> {
                sqlx::query("SELECT * FROM users WHERE subject = $1 ORDER BY username LIMIT 1")
                    .bind(subject)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| map_err("get user by subject", e))?
                    .map(|r| user_from_row(&r))
                    .transpose()
            }

            async fn insert_user(&self, u: UserRecord) -> ProviderResult<()> {
                let _writer = self.writer().await;
                sqlx::query("INSERT INTO users (username, subject, password_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&u.username)
                    .bind(&u.subject)
                    .bind(&u.password_hash)
                    .bind(u.created_at)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("insert user", e))?;
                Ok(())
            }

            async fn list_users(&self) -> ProviderResult<Vec<UserRecord>> {
                sqlx::query("SELECT * FROM users ORDER BY username")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| map_err("list users", e))?
                    .iter()
                    .map(user_from_row)
                    .collect()
            }

            async fn set_password_hash(&self, username: &str, password_hash: &str) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                Ok(sqlx::query("UPDATE users SET password_hash = $2 WHERE username = $1")
                    .bind(username)
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("set password", e))?
                    .rows_affected()
                    > 0)
            }

            async fn delete_user(&self, username: &str) -> ProviderResult<bool> {
                let _writer = self.writer().await;
                Ok(sqlx::query("DELETE FROM users WHERE username = $1")
                    .bind(username)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| map_err("delete user", e))?
                    .rows_affected()
                    > 0)
            }
        }
    };
}

pub(crate) use sql_store;
