-- Which user opened each Mcp-Session-Id a proxied MCP server handed out
-- (SESS-3), so that every replica of the gateway can check it. hash is the
-- SHA-256 of the session id, never the id itself.
CREATE TABLE mcp_sessions (
	resource   TEXT NOT NULL,
	hash       BLOB NOT NULL,
	user_id    TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (resource, hash)
) WITHOUT ROWID;
CREATE INDEX mcp_sessions_expires_at ON mcp_sessions (expires_at);
