// Package sqlite is the default store.Store: one SQLite file through the
// pure-Go modernc.org/sqlite driver, so mcpgate stays a single static binary.
//
// The database runs in WAL mode with synchronous=FULL, so a write that
// returned is on disk even if the process is killed right after. All writes go
// through one connection, owned by one writer goroutine that commits them in
// groups: it takes every write waiting (up to 256), runs them one after the
// other in one BEGIN IMMEDIATE transaction, each in its own savepoint, and
// answers them only after the COMMIT, so one fsync covers the whole group and
// success still means durable (see writer.go). Running writes one at a time on
// one connection serialises writers inside the process and makes the
// single-use verbs (ConsumeCode, RotateRefresh, TakeAuthRequestByUpstreamState,
// ...) plain read-check-write steps; BEGIN IMMEDIATE and busy_timeout do the
// same against other processes on the file. Reads use a separate pool and never
// wait for a writer. Every statement is prepared once. Stats reports the
// commits and writes so far. The schema is created and upgraded by numbered
// migrations embedded in the binary.
package sqlite
