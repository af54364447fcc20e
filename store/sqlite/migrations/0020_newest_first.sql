-- The console's clients page reads the newest 501 clients (SEC-217), a
-- table anyone may fill through /register: in this order, so that they are
-- found without sorting the table. Grants, which every flow writes, have
-- no such index: one cost 5 percent of the flows a second, and only an
-- administrator's page view reads them so.
CREATE INDEX clients_newest ON clients (created_at DESC, id);
