-- Facts of the installation, each written once (PutMetaOnce): the check
-- value of the secret key that seals the signing keys, so that a process
-- started with another key refuses to start.
CREATE TABLE meta (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;
