-- When an operator disabled a local account (0: it may log in), SEC-93.
ALTER TABLE local_users ADD COLUMN disabled_at bigint NOT NULL DEFAULT 0;
