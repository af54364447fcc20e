// Package postgres is the store.Store for several mcpgate replicas behind one
// load balancer: one PostgreSQL database, reached with pgx through a pgxpool.
//
// Every replica holds its own pool and nothing else: no lock, cache or
// counter in the process decides anything, so what holds between two
// goroutines holds between two replicas. The single-use verbs are single
// statements whose WHERE clause is the check: ConsumeCode is an UPDATE ...
// WHERE used_at = 0 RETURNING, TakeAuthRequestByUpstreamState a DELETE ...
// RETURNING, and RotateRefresh's winning path one statement that marks the
// old token rotated (WHERE rotated_at = 0) and inserts its successor. Under
// READ COMMITTED a second writer of the same row waits for the first to
// commit and then re-checks the WHERE clause against the committed row (see
// "UPDATE" in the PostgreSQL manual, section 13.2.1), so of racing callers in
// any number of processes exactly one matches. A loser then reads the row in
// a statement of its own, which sees the winner's commit, to tell a reused
// code or token from an unknown one; the decision it takes from there (reuse
// after the grace window revokes the family) rests only on columns that never
// change once set, and the revocation is itself a conditional UPDATE. No verb
// holds a transaction open across round trips.
//
// The schema is created and upgraded by numbered migrations embedded in the
// binary, run in one transaction under a transaction-level advisory lock, so
// that replicas starting at once apply each exactly once; a database whose
// schema is newer than the binary is refused. Times are unix nanoseconds
// (bigint; timestamptz keeps only microseconds), lists and users JSON text,
// hashes and sealed values bytea exactly as the callers give them, and so is
// the client's state, which may hold any bytes (a text column refuses a NUL
// and what is not UTF-8).
//
// A revocation is announced to the other replicas (store.RevocationFeed):
// the statements that revoke a grant (RevokeGrant, RotateRefresh's on
// reuse, DeleteClient and DisableLocalUser) select
// pg_notify('mcpgate_revoked', id) from the rows they change,
// so the notification leaves exactly when, and only if, the revocation
// commits; FollowRevocations LISTENs on a connection of its own, outside
// the pool. NOTIFY is best effort to a listener that is not connected at
// that moment, which is why the gateway also rereads RevokedGrantsSince.
//
// Errors wrap the store's sentinels as the sqlite store does (no row is
// store.ErrNotFound, a unique violation store.ErrConflict); a server error
// keeps PostgreSQL's message, which names no statement text, and a DSN that
// does not parse is reported without the DSN, which may hold a password.
package postgres
