-- The flow debugger's events (internal/flows): one row per step of an
-- authorization attempt, appended in batches, deleted by housekeeping after
-- 24 hours or beyond a bound in number (SEC-114). seq is the append order.
CREATE TABLE flow_events (
	seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at        bigint NOT NULL,
	attempt   text   NOT NULL,
	client_id text   NOT NULL,
	user_id   text   NOT NULL,
	step      text   NOT NULL,
	outcome   text   NOT NULL,
	reason    text   NOT NULL,
	details   text   NOT NULL -- JSON object of strings
);
CREATE INDEX flow_events_at ON flow_events (at);
CREATE INDEX flow_events_attempt ON flow_events (attempt);
