-- A person's grants and browser sessions are found by their user ID, the
-- stored user's "sub": the account page lists that person's grants at each
-- view, and revoking an application or changing an account ends them.
-- Without these indexes each of those read every person's rows (SEC-194).
--
-- A user stored before SEC-148 may hold a NUL (\u0000), which jsonb refuses,
-- and the index could not be built: each becomes U+FFFD, as SEC-148 makes
-- a name's NUL at login.
UPDATE grants SET user_json = replace(user_json, '\u0000', '\ufffd') WHERE strpos(user_json, '\u0000') > 0;
UPDATE sessions SET user_json = replace(user_json, '\u0000', '\ufffd') WHERE strpos(user_json, '\u0000') > 0;
CREATE INDEX grants_user_sub ON grants (((user_json::jsonb)->>'sub'));
CREATE INDEX sessions_user_sub ON sessions (((user_json::jsonb)->>'sub'));
