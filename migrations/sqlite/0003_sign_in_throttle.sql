-- Sign-in throttle counters (SQLite). Keep in lockstep with ../postgres/0003_sign_in_throttle.sql.
-- One row per username (address_key = '') holding its failures from any address and the lease of
-- the check in flight; one row per (username, address) holding that pair's failures and until when
-- the address is known (it signed in as that username). username_key is a hash of the normalised
-- username: attempted names (often mistyped passwords) are never stored in clear.

CREATE TABLE sign_in_throttle (
    username_key TEXT   NOT NULL,
    address_key  TEXT   NOT NULL,
    failures     BIGINT NOT NULL,
    last_failure BIGINT NOT NULL,
    busy_until   BIGINT NOT NULL,
    known_until  BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (username_key, address_key)
);

CREATE INDEX sign_in_throttle_expires ON sign_in_throttle (expires_at);
