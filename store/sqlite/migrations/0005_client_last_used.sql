-- When a registered client last came to /authorize or /token (0: never), so
-- that housekeeping can delete the ones unused for long that hold no live
-- grant (SEC-14). The indexes serve that search and its deletions: without
-- them each candidate client would scan grants, codes and consents.
ALTER TABLE clients ADD COLUMN last_used_at INTEGER NOT NULL DEFAULT 0;
CREATE INDEX clients_used_at ON clients (max(created_at, last_used_at));
CREATE INDEX grants_client_id ON grants (client_id);
CREATE INDEX codes_client_id ON codes (client_id);
CREATE INDEX consents_client_id ON consents (client_id);
