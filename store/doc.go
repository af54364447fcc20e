// Package store defines what mcpgate keeps: clients, pending authorization
// requests, consents, authorization codes, grants with their refresh-token
// families, browser sessions, local users and signing keys.
//
// One interface, Store, is implemented by every backend (memory, sqlite,
// postgres). The security-critical steps are explicit atomic verbs
// (ConsumeCode, RotateRefresh, TakeAuthRequestByUpstreamState) so that no
// backend can get single-use semantics wrong by composing reads and writes.
// Bearer secrets (codes, refresh tokens, session ids, upstream states) are
// never stored: only their SHA-256, which callers compute.
//
// Every backend passes the conformance suite in store/storetest.
package store
