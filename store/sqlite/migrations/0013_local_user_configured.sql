-- An account mcpgate serve's configuration (local_users) set at its last
-- start (1), which the admin commands refuse to change; SEC-93.
ALTER TABLE local_users ADD COLUMN configured INTEGER NOT NULL DEFAULT 0;
