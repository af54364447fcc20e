-- The sealed token response a refresh token's rotation issued, so that a
-- retry within the grace window gets the same pair; and an index to list
-- recently revoked grants at start-up.
ALTER TABLE refresh_tokens ADD COLUMN successor BLOB;
CREATE INDEX grants_revoked_at ON grants (revoked_at) WHERE revoked_at != 0;
