-- Successors move to a rowid table of their own. A sealed token response is
-- about a kilobyte, and refresh_tokens is WITHOUT ROWID: its rows live in an
-- index B-tree, where a row over about 1,000 bytes (4 KiB pages) spills into
-- an overflow page of its own, one fresh page per rotation. Here they are
-- appended in rowid order, several to a page, and the rotations committed
-- together share pages. refresh_tokens.successor stays for the rows written
-- before this migration; new rotations leave it NULL and set successor_id.
CREATE TABLE refresh_successors (
	id        INTEGER NOT NULL PRIMARY KEY,
	successor BLOB    NOT NULL
) STRICT;
ALTER TABLE refresh_tokens ADD COLUMN successor_id INTEGER;
