// Package memory is a store.Store kept in process memory: maps behind one
// lock. It is for tests, benchmarks and single-process demos; everything is
// lost when the process exits. Values go in and come out as deep copies, so
// no caller can change stored state behind the lock.
package memory
