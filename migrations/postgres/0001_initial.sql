-- mcp-oauth initial schema (Postgres). Keep in lockstep with ../sqlite/0001_initial.sql.
-- Secrets (codes, refresh tokens, client secrets, login-transaction ids) are stored only as
-- SHA-256 hashes; signing keys only sealed with the key-encryption key.

CREATE TABLE clients (
    client_id                  TEXT PRIMARY KEY,
    client_secret_hash         TEXT,
    client_secret_expires_at   BIGINT,
    client_id_issued_at        BIGINT NOT NULL,
    client_name                TEXT,
    redirect_uris              TEXT NOT NULL,   -- JSON array
    grant_types                TEXT NOT NULL,   -- JSON array
    response_types             TEXT NOT NULL,   -- JSON array
    token_endpoint_auth_method TEXT NOT NULL,
    scope                      TEXT,            -- JSON array, NULL = any
    extra_metadata             TEXT NOT NULL    -- JSON object
);

CREATE TABLE authorization_codes (
    code_hash             TEXT PRIMARY KEY,
    family_id             TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    subject               TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    redirect_uri_explicit BIGINT NOT NULL,
    code_challenge        TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    resource              TEXT NOT NULL,
    issued_at             BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL,
    used                  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX authorization_codes_family ON authorization_codes (family_id);
CREATE INDEX authorization_codes_client ON authorization_codes (client_id);
CREATE INDEX authorization_codes_expiry ON authorization_codes (expires_at);

CREATE TABLE access_tokens (
    jti        TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX access_tokens_family ON access_tokens (family_id);
CREATE INDEX access_tokens_client ON access_tokens (client_id);
CREATE INDEX access_tokens_expiry ON access_tokens (expires_at);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    state      TEXT NOT NULL,                 -- active | rotated | revoked
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_client ON refresh_tokens (client_id);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

-- Families revoked after code replay or refresh-token reuse, remembered so that tokens a racing
-- request inserts later are born revoked.
CREATE TABLE revoked_families (
    family_id      TEXT PRIMARY KEY,
    remember_until BIGINT NOT NULL
);
CREATE INDEX revoked_families_expiry ON revoked_families (remember_until);

CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_key BYTEA NOT NULL,               -- sealed PKCS#8
    public_jwk  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 0,
    retire_at   BIGINT
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1;

CREATE TABLE login_transactions (
    id_hash               TEXT PRIMARY KEY,
    browser_binding_hash  TEXT NOT NULL,
    csrf_token            TEXT NOT NULL,
    client_id             TEXT NOT NULL,
    redirect_uri          TEXT NOT NULL,
    redirect_uri_explicit BIGINT NOT NULL,
    state                 TEXT,
    code_challenge        TEXT NOT NULL,
    scopes                TEXT NOT NULL,
    resource              TEXT NOT NULL,
    user_json             TEXT,                -- the signed-in user, once known
    created_at            BIGINT NOT NULL,
    expires_at            BIGINT NOT NULL
);
CREATE INDEX login_transactions_expiry ON login_transactions (expires_at);

CREATE TABLE consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id)
);

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    subject       TEXT NOT NULL,
    password_hash TEXT NOT NULL,               -- argon2id PHC string
    created_at    BIGINT NOT NULL
);
