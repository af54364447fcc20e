// Package stdio serves a local stdio MCP server command behind the
// gateway's protected MCP path, one process per user, over the streamable
// HTTP transport.
//
// One process per user (keyed by identity.User.ID), because a stdio server
// is written for one person at a desk: it trusts its environment and keeps
// state (files, logins, caches) in its working directory. Each user's
// process therefore gets its own directory (also HOME, named by a hash of
// the user ID so no ID can name a path), and an environment built from
// scratch — PATH, LANG, TZ, Options.Env and MCPGATE_USER* — never the
// gateway's own, which holds its secrets. Each runs in its own process
// group so that stopping it also stops what it spawned. Processes start on
// demand, stop when idle, and are capped: at the cap the least recently
// used idle one is evicted, and when none is idle the request gets 503
// rather than waiting, so one user cannot hold the gateway hostage.
//
// The bridge, not the client, owns the process's MCP session: it sends
// initialize itself (with the first client's protocol version and
// capabilities) and answers every client's initialize from the cached
// result. Clients (Claude, Inspector, a second tab) come and go
// independently of the process, which can then be reaped or restart after
// a crash without any client noticing: bridge sessions (Mcp-Session-Id,
// bound to the user, SESS-3) outlive processes, and the next request
// restarts and re-initializes it. Stateless 2026-07-28 clients
// (Mcp-Protocol-Version of 2026-07-28 or later, no session) need no
// initialize: their requests, _meta included, go to the same process, which
// the bridge initializes with the newest version that still has an
// initialize handshake.
//
// Several clients share one process, so the bridge rewrites every request
// id (and progress token, and the requestId of notifications/cancelled) to
// a pool-unique id and maps it back on the answer. JSON-RPC batches are
// refused with an error (one message per POST). A request is answered as
// application/json, or — when the client accepts text/event-stream and the
// process reports progress for it first — as an event stream carrying those
// progress notifications and then the answer. Server→client requests
// (sampling, elicitation, roots/list) and other notifications go to the
// user's most recently opened GET stream; when there is none, a request is
// answered with an error at once and a notification is dropped, so the
// process never waits on a client that cannot answer. A stream that closes
// before its client answers gets the same error for what it carried.
//
// Failures are answered, never waited out: a process that exits fails
// every request in flight at once with a JSON-RPC error (-32603), a client
// that goes away has its request cancelled (notifications/cancelled), and
// no error text of the gateway's reaches a client. The process's stderr is
// logged line by line with the resource, user and pid; message bodies are
// never logged.
package stdio
