-- A person's approval of a client is for the resource the consent page
-- named (SEC-134). Approvals from before name none ('') and so match no
-- resource: each person is asked once more.
ALTER TABLE consents ADD COLUMN resource text NOT NULL DEFAULT '';
ALTER TABLE consents DROP CONSTRAINT consents_pkey;
ALTER TABLE consents ADD PRIMARY KEY (user_id, client_id, resource);
