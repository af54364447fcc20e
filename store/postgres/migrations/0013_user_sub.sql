-- A person's grants and browser sessions are found by their user ID, the
-- stored user's "sub": the account page lists that person's grants at each
-- view, and revoking an application or changing an account ends them.
-- Without these indexes each of those read every person's rows (SEC-194).
CREATE INDEX grants_user_sub ON grants (((user_json::jsonb)->>'sub'));
CREATE INDEX sessions_user_sub ON sessions (((user_json::jsonb)->>'sub'));
