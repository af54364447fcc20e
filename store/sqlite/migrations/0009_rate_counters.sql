-- Counters of rate limits that hold across every process sharing the file
-- (registrations per client address): one row per key and window, its
-- count incremented in place; housekeeping deletes it once expired.
CREATE TABLE rate_counters (
	key          TEXT    NOT NULL,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	PRIMARY KEY (key, window_start)
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_counters_expires_at ON rate_counters (expires_at);
