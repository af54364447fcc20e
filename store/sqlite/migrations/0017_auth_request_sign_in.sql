-- The client asked the person to sign in again (prompt=login, SEC-162).
ALTER TABLE auth_requests ADD COLUMN sign_in INTEGER NOT NULL DEFAULT 0;
