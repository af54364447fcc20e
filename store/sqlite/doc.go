// Package sqlite is the default store.Store: one SQLite file through the
// pure-Go modernc.org/sqlite driver, so mcpgate stays a single static binary.
//
// The database runs in WAL mode with synchronous=FULL, so a write that
// returned is on disk even if the process is killed right after. All writes go
// through one connection in BEGIN IMMEDIATE transactions, which serialises
// writers inside the process and makes the single-use verbs (ConsumeCode,
// RotateRefresh, TakeAuthRequestByUpstreamState, ...) plain read-check-write
// transactions; reads use a separate pool and never wait for a writer. The
// schema is created and upgraded by numbered migrations embedded in the
// binary.
package sqlite
