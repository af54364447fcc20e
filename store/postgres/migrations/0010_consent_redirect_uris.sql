-- An approval covers the redirect URIs the consent page named (SEC-154).
-- Approvals from before name none and so cover no request: each person is
-- asked once more.
ALTER TABLE consents ADD COLUMN redirect_uris text NOT NULL DEFAULT '[]';
