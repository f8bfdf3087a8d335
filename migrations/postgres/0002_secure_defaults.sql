-- Secure defaults (issue 8). Keep in lockstep with ../sqlite/0002_secure_defaults.sql.

-- Who created a client, when a user first approved it, and whether it may introspect any token.
ALTER TABLE clients ADD COLUMN origin TEXT NOT NULL DEFAULT 'registration';
ALTER TABLE clients ADD COLUMN approved_at BIGINT;
ALTER TABLE clients ADD COLUMN resource_server BIGINT NOT NULL DEFAULT 0;
-- Clients registered before this migration keep working as before: they count as approved, so
-- they are never purged as unused and their authorization errors still redirect.
UPDATE clients SET approved_at = client_id_issued_at;
CREATE INDEX clients_unused ON clients (client_id_issued_at) WHERE approved_at IS NULL;

-- Every grant has an absolute end; a rotated token keeps its sealed successor for the grace window.
ALTER TABLE refresh_tokens ADD COLUMN grant_expires_at BIGINT NOT NULL DEFAULT 0;
UPDATE refresh_tokens SET grant_expires_at = expires_at;
ALTER TABLE refresh_tokens ADD COLUMN successor BYTEA;

-- Grants are found by user (deletion, password change, `grants` commands).
CREATE INDEX authorization_codes_subject ON authorization_codes (subject);
CREATE INDEX access_tokens_subject ON access_tokens (subject);
CREATE INDEX refresh_tokens_subject ON refresh_tokens (subject);
CREATE INDEX users_subject ON users (subject);

-- Remembered consent is per resource and expires. Consents remembered before (not per resource)
-- are dropped: users are asked once more.
DROP TABLE consents;
CREATE TABLE consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    resource   TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id, resource)
);
CREATE INDEX consents_subject ON consents (subject);
CREATE INDEX consents_expiry ON consents (expires_at);
