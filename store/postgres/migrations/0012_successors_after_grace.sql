-- Housekeeping deletes a rotated refresh token's successor once the grace
-- window is over (DeleteSuccessors, SEC-181): this index finds the tokens
-- that still hold one, oldest rotation first.
CREATE INDEX refresh_tokens_successor_rotated_at ON refresh_tokens (rotated_at) WHERE successor IS NOT NULL;
