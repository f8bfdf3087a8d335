-- When a client was last used (a token issued to it), for `mcp-oauth clients list`. Written at
-- most once a minute per client and server. Keep in lockstep with ../postgres/0004_client_last_used.sql.
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
