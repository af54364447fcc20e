-- Housekeeping deletes a rotated refresh token's successor once the grace
-- window is over (DeleteSuccessors, SEC-181): this index finds the tokens
-- that still hold one, oldest rotation first. The legacy column counts
-- too, for tokens rotated before migration 0003.
CREATE INDEX refresh_tokens_successor_rotated_at ON refresh_tokens (rotated_at)
	WHERE successor_id IS NOT NULL OR successor IS NOT NULL;
