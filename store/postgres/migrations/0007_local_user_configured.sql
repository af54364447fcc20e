-- An account mcpgate serve's configuration (local_users) set at its last
-- start, which the admin commands refuse to change; SEC-93.
ALTER TABLE local_users ADD COLUMN configured boolean NOT NULL DEFAULT false;
