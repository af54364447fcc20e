// Package storetest is the conformance suite every store.Store backend runs,
// so that memory, sqlite and postgres agree on what each method does: Run
// covers every method one call at a time, RunConcurrency races the
// single-use verbs and checks that exactly one caller wins. Tests name the
// rule they protect (PKCE-3, RT-1, DEP-6).
package storetest
