// Package pgtest runs a throwaway PostgreSQL server for tests: Debian's own
// server binaries (initdb, postgres), in a temporary directory, listening on
// a free loopback port only (no Unix socket), with fsync off because nothing
// it holds must survive the test binary. The tests talk to it as to any
// PostgreSQL: over TCP, with the same driver the product uses.
//
// One server serves a whole test binary, started on the first [Start] and
// stopped when [Run] (the package's TestMain) returns; every Start gets a
// database of its own, created empty and dropped at the test's cleanup. A
// package that calls Start must use Run in its TestMain, or Start fails the
// test: a server nobody stops would outlive the test run.
//
// When the test runs as root the server runs as the postgres user (PostgreSQL
// refuses root): the data directory is given to that user and the processes
// are started with its credentials. The postmaster is the direct child of the
// test binary, in a process group of its own, and gets SIGKILL if the test
// binary dies first (a timeout, a crash); its backends follow it.
//
// The binaries are found on the PATH, then in /usr/lib/postgresql/*/bin (the
// newest version). Missing binaries fail the test with the package to
// install; the PostgreSQL tests are never skipped.
//
// The package is imported only by _test.go files.
package pgtest
