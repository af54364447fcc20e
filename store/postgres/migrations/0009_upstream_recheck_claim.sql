-- Until when one process rechecks the session at its provider (RT-3):
-- the others wait for its answer rather than send the provider the same
-- refresh token again. 0: nobody; a new session or its renewal ends it.
ALTER TABLE upstream_sessions ADD COLUMN claimed_until bigint NOT NULL DEFAULT 0;
