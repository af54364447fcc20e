-- The flow debugger's events (internal/flows): one row per step of an
-- authorization attempt, appended in batches, deleted by housekeeping after
-- 24 hours or beyond a bound in number (SEC-114). seq is the append order.
CREATE TABLE flow_events (
	seq       INTEGER NOT NULL PRIMARY KEY,
	at        INTEGER NOT NULL,
	attempt   TEXT    NOT NULL,
	client_id TEXT    NOT NULL,
	user_id   TEXT    NOT NULL,
	step      TEXT    NOT NULL,
	outcome   TEXT    NOT NULL,
	reason    TEXT    NOT NULL,
	details   TEXT    NOT NULL -- JSON object of strings
) STRICT;
CREATE INDEX flow_events_at ON flow_events (at);
CREATE INDEX flow_events_attempt ON flow_events (attempt);
