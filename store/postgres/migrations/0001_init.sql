-- Times are unix nanoseconds, 0 for the zero time: timestamptz keeps only
-- microseconds. Lists and identity.User are JSON text. Bearer secrets appear
-- only as their SHA-256, sealed values as the caller sealed them (bytea).
-- The schema is the one the sqlite store reached at its migration 0007.

CREATE TABLE clients (
	id                         text   NOT NULL PRIMARY KEY,
	secret_hash                bytea,
	name                       text   NOT NULL,
	redirect_uris              text   NOT NULL,
	grant_types                text   NOT NULL,
	response_types             text   NOT NULL,
	token_endpoint_auth_method text   NOT NULL,
	application_type           text   NOT NULL,
	scope                      text   NOT NULL,
	client_uri                 text   NOT NULL,
	logo_uri                   text   NOT NULL,
	created_at                 bigint NOT NULL,
	last_used_at               bigint NOT NULL DEFAULT 0 -- SEC-14
);
CREATE INDEX clients_used_at ON clients ((greatest(created_at, last_used_at)));

CREATE TABLE auth_requests (
	id                  text   NOT NULL PRIMARY KEY,
	client_id           text   NOT NULL,
	redirect_uri        text   NOT NULL,
	state               bytea  NOT NULL, -- the client's, verbatim: any bytes, NUL included
	code_challenge      text   NOT NULL,
	resource            text   NOT NULL,
	scopes              text   NOT NULL,
	connector           text   NOT NULL,
	upstream_state_hash bytea  UNIQUE, -- NULL until consent (DEP-6)
	created_at          bigint NOT NULL,
	expires_at          bigint NOT NULL
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE consents (
	user_id    text   NOT NULL,
	client_id  text   NOT NULL,
	scopes     text   NOT NULL,
	created_at bigint NOT NULL,
	PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_client_id ON consents (client_id);

-- No foreign key to clients: a CIMD client may have left the client cache
-- while its codes and grants are still in use.
CREATE TABLE codes (
	hash           bytea  NOT NULL PRIMARY KEY,
	client_id      text   NOT NULL,
	redirect_uri   text   NOT NULL,
	code_challenge text   NOT NULL,
	resource       text   NOT NULL,
	scopes         text   NOT NULL,
	user_json      text   NOT NULL,
	grant_id       text   NOT NULL,
	expires_at     bigint NOT NULL,
	used_at        bigint NOT NULL
);
CREATE INDEX codes_expires_at ON codes (expires_at);
CREATE INDEX codes_client_id ON codes (client_id);
CREATE INDEX codes_grant_id ON codes (grant_id);

CREATE TABLE grants (
	id         text   NOT NULL PRIMARY KEY,
	client_id  text   NOT NULL,
	user_json  text   NOT NULL,
	resource   text   NOT NULL,
	scopes     text   NOT NULL,
	created_at bigint NOT NULL,
	revoked_at bigint NOT NULL
);
CREATE INDEX grants_revoked_at ON grants (revoked_at) WHERE revoked_at <> 0;
CREATE INDEX grants_client_id ON grants (client_id);

-- successor: the sealed token response the token's rotation issued (RT-1's
-- grace window answers a retry with it); NULL until rotated.
CREATE TABLE refresh_tokens (
	hash       bytea   NOT NULL PRIMARY KEY,
	grant_id   text    NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
	generation integer NOT NULL,
	scopes     text    NOT NULL,
	created_at bigint  NOT NULL,
	expires_at bigint  NOT NULL, -- 0: lives until the grant is revoked
	rotated_at bigint  NOT NULL,
	successor  bytea
);
CREATE INDEX refresh_tokens_grant_id ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at) WHERE expires_at <> 0;

CREATE TABLE sessions (
	hash       bytea  NOT NULL PRIMARY KEY,
	user_json  text   NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE local_users (
	name          text   NOT NULL PRIMARY KEY,
	password_hash bytea,
	groups        text   NOT NULL DEFAULT '[]',
	created_at    bigint NOT NULL
);

-- seq keeps ties in created_at in insertion order.
CREATE TABLE signing_keys (
	seq        bigint GENERATED ALWAYS AS IDENTITY,
	id         text   NOT NULL PRIMARY KEY,
	algorithm  text   NOT NULL,
	private    bytea,
	public     bytea,
	created_at bigint NOT NULL,
	retired_at bigint NOT NULL
);
CREATE INDEX signing_keys_created_at ON signing_keys (created_at, seq);

-- The identity provider's side of a grant (RT-3), written when the code is
-- issued, before the grant exists: grant_id references nothing.
CREATE TABLE upstream_sessions (
	grant_id   text   NOT NULL PRIMARY KEY,
	connector  text   NOT NULL,
	user_json  text   NOT NULL,
	token      bytea  NOT NULL,
	checked_at bigint NOT NULL
);

-- The row Ping writes and deletes in one transaction (SEC-13).
CREATE TABLE ping (
	id integer NOT NULL PRIMARY KEY,
	at bigint  NOT NULL
);
