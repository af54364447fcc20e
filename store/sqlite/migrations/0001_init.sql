-- Times are unix nanoseconds, 0 for the zero time. Lists and identity.User
-- are JSON text. Bearer secrets appear only as their SHA-256 (BLOB).

CREATE TABLE clients (
	id                         TEXT    NOT NULL PRIMARY KEY,
	secret_hash                BLOB,
	name                       TEXT    NOT NULL,
	redirect_uris              TEXT    NOT NULL,
	grant_types                TEXT    NOT NULL,
	response_types             TEXT    NOT NULL,
	token_endpoint_auth_method TEXT    NOT NULL,
	application_type           TEXT    NOT NULL,
	scope                      TEXT    NOT NULL,
	client_uri                 TEXT    NOT NULL,
	logo_uri                   TEXT    NOT NULL,
	created_at                 INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_requests (
	id                  TEXT    NOT NULL PRIMARY KEY,
	client_id           TEXT    NOT NULL,
	redirect_uri        TEXT    NOT NULL,
	state               TEXT    NOT NULL,
	code_challenge      TEXT    NOT NULL,
	resource            TEXT    NOT NULL,
	scopes              TEXT    NOT NULL,
	connector           TEXT    NOT NULL,
	upstream_state_hash BLOB    UNIQUE, -- NULL until consent (DEP-6)
	created_at          INTEGER NOT NULL,
	expires_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE consents (
	user_id    TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;

-- No foreign key to clients: a CIMD client may have left the client cache
-- while its codes and grants are still in use.
CREATE TABLE codes (
	hash           BLOB    NOT NULL PRIMARY KEY,
	client_id      TEXT    NOT NULL,
	redirect_uri   TEXT    NOT NULL,
	code_challenge TEXT    NOT NULL,
	resource       TEXT    NOT NULL,
	scopes         TEXT    NOT NULL,
	user           TEXT    NOT NULL,
	grant_id       TEXT    NOT NULL,
	expires_at     INTEGER NOT NULL,
	used_at        INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX codes_expires_at ON codes (expires_at);

CREATE TABLE grants (
	id         TEXT    NOT NULL PRIMARY KEY,
	client_id  TEXT    NOT NULL,
	user       TEXT    NOT NULL,
	resource   TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER NOT NULL
) STRICT;

CREATE TABLE refresh_tokens (
	hash       BLOB    NOT NULL PRIMARY KEY,
	grant_id   TEXT    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	generation INTEGER NOT NULL,
	scopes     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL, -- 0: lives until the grant is revoked
	rotated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at) WHERE expires_at != 0;

CREATE TABLE sessions (
	hash       BLOB    NOT NULL PRIMARY KEY,
	user       TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE local_users (
	name          TEXT    NOT NULL PRIMARY KEY,
	password_hash BLOB,
	created_at    INTEGER NOT NULL
) STRICT;

-- A rowid table: ties in created_at are listed in insertion order.
CREATE TABLE signing_keys (
	id         TEXT    NOT NULL PRIMARY KEY,
	algorithm  TEXT    NOT NULL,
	private    BLOB,
	public     BLOB,
	created_at INTEGER NOT NULL,
	retired_at INTEGER NOT NULL
) STRICT;
CREATE INDEX signing_keys_created_at ON signing_keys (created_at);
