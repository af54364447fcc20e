-- The row Ping writes and deletes in one transaction: a readiness check that
-- the file takes a committed write (a full disk, a read-only file system or a
-- lock held by another process fail it). Empty between pings.
CREATE TABLE ping (
	id INTEGER NOT NULL PRIMARY KEY,
	at INTEGER NOT NULL
) STRICT;
