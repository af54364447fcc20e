// Package userlimit bounds what one user holds at a protected MCP
// endpoint, in front of any backend (proxy, stdio or SSE bridge, embedded
// server): without it one user could open sessions and event streams
// until the gateway, or the server behind it, runs out of memory.
//
// # Sessions: the least recently used one ends
//
// A user has at most Options.MaxSessions sessions (Mcp-Session-Id values
// a backend handed out to that user's initialize). One more ends the
// user's least recently used session, with a DELETE through the backend,
// as the client would send: the backend frees what it holds (a bridge its
// stream and calls, the go-sdk server its session, an upstream its own),
// and a client that comes back with that session gets 404 and initializes
// again, as the transport says it must.
//
// Refusing the new session instead would lock a real user out: clients
// often drop a session without a DELETE (a closed laptop, a restarted
// editor, a killed process), and the abandoned ones would count against
// the user until the backend forgot them, a day later for some. Ending
// the oldest costs only a session that was not used for the longest time,
// and only the user's own: one user can never end another's.
//
// # Event streams: the one over the cap is refused
//
// A user has at most Options.MaxStreams GET event streams open at once.
// One more is answered 429, with Retry-After and a JSON-RPC error, and the
// open ones go on. A stream, unlike a session, is a live connection: one
// its client abandoned ends when the connection does, so the cap is not
// filled by the dead; and clients reopen a stream that ends, so ending
// the oldest one to make room would have two of them take turns closing
// each other's.
//
// Sessions are tracked by the ids a backend answers with; stateless
// (2026-07-28) clients hold none and count only their streams. The caps
// stand here, in front, because no backend offers them: the go-sdk's
// StreamableHTTPHandler has an idle SessionTimeout but no cap per user,
// the bridges and the proxy bound only their totals.
//
// A GET or DELETE never carries a body here: internal/policy, in front,
// refuses one (SEC-31), so the DELETE made to end a session is the same
// kind of request a client sends.
package userlimit
