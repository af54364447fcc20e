-- The identity provider's side of a grant (RT-3): its refresh token, sealed
-- by the caller (AES-GCM, never stored in clear), the user as the provider
-- last described them, and when. Written when the code is issued, before
-- the grant exists, so grant_id references nothing; housekeeping deletes
-- the rows of revoked grants and of codes never redeemed.
CREATE TABLE upstream_sessions (
	grant_id   TEXT PRIMARY KEY,
	connector  TEXT NOT NULL,
	user       TEXT NOT NULL,
	token      BLOB NOT NULL,
	checked_at INTEGER NOT NULL
) WITHOUT ROWID;
