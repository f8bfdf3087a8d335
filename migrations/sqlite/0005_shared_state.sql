-- State every server on this database shares (SQLite). Keep in lockstep with
-- ../postgres/0005_shared_state.sql.
-- single_use_claims: keys claimed once until they expire, e.g. the jti of a client assertion
-- (RFC 7523 §3 item 7) as "cimd-jti:<client_id>:<jti>"; a claim is one atomic upsert.
-- cimd_documents: fetched client metadata documents (validated JSON, at most a few KB) and until
-- when they may be used, so the servers fetch a document once per TTL between them.
-- Both are purged by expires_at.

CREATE TABLE single_use_claims (
    claim_key  TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX single_use_claims_expires ON single_use_claims (expires_at);

CREATE TABLE cimd_documents (
    url        TEXT   NOT NULL PRIMARY KEY,
    body       BLOB  NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX cimd_documents_expires ON cimd_documents (expires_at);
