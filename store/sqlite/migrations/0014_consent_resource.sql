-- A person's approval of a client is for the resource the consent page
-- named (SEC-134). Approvals from before name none ('') and so match no
-- resource: each person is asked once more.
CREATE TABLE consents_by_resource (
	user_id    TEXT    NOT NULL,
	client_id  TEXT    NOT NULL,
	resource   TEXT    NOT NULL,
	scopes     TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id, resource)
) STRICT, WITHOUT ROWID;
INSERT INTO consents_by_resource (user_id, client_id, resource, scopes, created_at)
	SELECT user_id, client_id, '', scopes, created_at FROM consents;
DROP TABLE consents;
ALTER TABLE consents_by_resource RENAME TO consents;
CREATE INDEX consents_client_id ON consents (client_id);
