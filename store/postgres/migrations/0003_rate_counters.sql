-- Counters of rate limits that hold across replicas (registrations per
-- client address): one row per key and window, its count incremented in
-- place by one upsert; housekeeping deletes it once expired.
CREATE TABLE rate_counters (
	key          bytea  NOT NULL, -- any bytes the caller keys by
	window_start bigint NOT NULL,
	count        bigint NOT NULL,
	expires_at   bigint NOT NULL,
	PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_counters_expires_at ON rate_counters (expires_at);
