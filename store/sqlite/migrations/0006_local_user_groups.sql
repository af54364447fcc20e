-- The groups a local account carries (a JSON array of strings), given to
-- the user at login like an identity provider's groups.
ALTER TABLE local_users ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
