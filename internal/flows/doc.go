// Package flows is the flow debugger: it records every step of every
// authorization attempt (a registration, a metadata-document fetch,
// /authorize, the login, the consent, the code exchange, a refresh, a
// revocation, a refused token at an MCP endpoint) with the exact reason
// an attempt stopped, in words an operator can act on, and shows them
// back as one timeline per attempt: to `mcpgate flows` and to the admin
// console's page (Handler).
//
// # What is recorded, and what never is
//
// An [Event] names its step, the client, the user once known, the outcome
// ("ok" or the OAuth error code) and the reason. Its Details are kept only
// under the keys of an allowlist ([DetailKeys]: redirect_uri, resource,
// scope, the PKCE method, prompt…); anything else is dropped at Record, so
// that no code, verifier, token, client secret, state, password or cookie
// can reach the store (SEC-113). Every string is cut to [MaxField] bytes.
//
// # Cost on the request path
//
// [Recorder.Record] never blocks and never calls the store: it puts the
// event on a bounded queue (10,000 by default) and returns; when the
// queue is full the event is dropped and counted (Recorder.Dropped). One
// goroutine writes the queue in batches of at most 100 events, each one
// multi-row insert, at least every 250 ms (SEC-115). Close flushes what is
// queued; `mcpgate serve` calls it at shutdown.
//
// A crash (SIGKILL, a power cut) loses what is queued and not yet
// written: at most the last 250 ms of events, or more while the store is
// slow or down, up to the queue's bound. The flow debugger is a
// diagnostic, never a record that decisions depend on; the audit log
// and the store's own state are.
//
// # Bound
//
// The store keeps the events of the last 24 hours, at most 100,000
// (Retention, MaxEvents): housekeeping deletes the rest (SEC-114). Every
// replica writes to the same store, so `mcpgate flows` and the page show
// every replica's attempts.
//
// A step that no authorization request or grant vouches for can be sent
// by anyone, as fast as they like; [Recorder.RecordLimited] keeps those
// to a rate per address, so that a flood of them cannot push the real
// attempts out of the bound (SEC-119). The steps after a sign-in, and
// apart a refused token, which a client that does not read the 401
// presents over and over, are kept to a rate per person
// ([Recorder.RecordSignedIn], SEC-127; [Recorder.RecordRefusedToken],
// SEC-207).
package flows
