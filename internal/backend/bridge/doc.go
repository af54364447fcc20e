// Package bridge serves an MCP server that cannot speak the streamable
// HTTP transport, or that is written for a single user, behind the
// gateway's protected MCP path: one link to the server per user and
// client, served over streamable HTTP. A link is of one of two kinds:
//
//   - a stdio server process (NewStdio), a local command started for the
//     user;
//   - an SSE connection (NewSSE) to a legacy HTTP+SSE server (protocol
//     2024-11-05), which clients of 2025 and later, and every stateless
//     2026-07-28 client, cannot reach on their own.
//
// Everything but the link itself is shared: the pool of links, sessions,
// id rewriting, initialization, streams and errors below.
//
// # One link per user and client
//
// Links are keyed by the user, the OAuth client and the identity the
// server is told (linkKey): two applications a user connected never share
// a server, which asks its one client for sampling, elicitation or roots
// and takes its answers; and a user whose groups, name or email changed
// gets a server told the new ones (SEC-153). A user holds at most
// perUserLinks links, and half of a smaller pool. A stdio server is written for one
// person at a desk: it trusts its environment and keeps state (files,
// logins, caches) in its working directory. Each user's process therefore
// gets its own directory (also HOME, named by a hash of the user ID so no
// ID can name a path), and an environment built from scratch — PATH, LANG,
// TZ, StdioOptions.Env and MCPGATE_USER* — never the gateway's own, which
// holds its secrets. Each runs in its own process group so that stopping it
// also stops what it spawned (and under a uid of the user's own, the end
// of the user's last server kills every process of that uid: what left
// the group), and confined by internal/sandbox (Landlock:
// its HOME, the system's read-only paths and StdioOptions.ReadPaths), so
// that it reaches neither the gateway's files nor another user's process.
// A user's servers (one per client) share that user's directory. A legacy SSE server learns who its user is
// from the identity headers of the connection's GET — the proxy's
// (internal/backend/proxy), with the same defaults: X-Forwarded-User, …,
// and a signed identity token with SSEOptions.IdentityToken — sent again
// on every POST, with the caller of the request that POST carries.
// Nothing of the client's request reaches the upstream but the JSON-RPC
// message: never its Authorization, cookies or identity headers of its own.
//
// Links open on demand, end when idle (a stdio server is stopped, an SSE
// connection closed), and are capped, overall and per user: at a cap the
// least recently used idle one (the user's, at the user's cap) is ended, and when none is idle the request gets 503 rather
// than waiting, so one user cannot hold the gateway hostage.
//
// # The legacy SSE transport
//
// A link GETs the SSE URL (Accept: text/event-stream) and waits, at most
// StartTimeout, for the first event, "endpoint", whose data is the URI to
// POST messages to. It is resolved against the SSE URL and must name the
// same scheme, host and port, or the link is refused and the refusal
// logged: user data is never POSTed anywhere else; redirects are never
// followed either. Each "message" event is routed as soon as its blank
// line arrives, never buffered. A client's message is POSTed (at most
// SSEOptions.PostTimeout) by the request that carries it: a non-2xx
// answer or a failed POST fails that request with 502 and a JSON-RPC
// error, the detail going to the log, and a 404 also ends the link (the
// upstream forgot the session). The stream ending ends the link.
//
// # Sessions and initialization
//
// The bridge, not the client, owns the server's MCP session: it sends
// initialize itself (with the first client's protocol version and
// capabilities) and answers every client's initialize from the cached
// result. Sessions of a client (a second tab, a reconnect) come and go
// independently of the link, which can then be reaped or end (a crash, a
// dropped SSE stream) without any client noticing: bridge sessions
// (Mcp-Session-Id, bound to the link's key: the user, SESS-3, and the
// client and identity) outlive links, and the next
// request opens a new link and initializes it. A bridge session lives in
// the gateway process that opened it, whose random tag starts its id
// ("<tag>.<random>"): another replica answers it 404 with an error that
// says so, and opens no link for it. Stateless 2026-07-28
// clients (Mcp-Protocol-Version of 2026-07-28 or later, no session) need
// no initialize: their requests, _meta included, go to the same link,
// which the bridge initializes with the newest version that still has an
// initialize handshake.
//
// Several sessions share one link, so the bridge rewrites every request id
// (and progress token, and the requestId of notifications/cancelled) to a
// pool-unique id and maps it back on the answer. JSON-RPC batches are
// refused with an error (one message per POST). A client's message is read
// as the policy in front of the bridge read it (jsonrpc.Parse: both act on
// the same method and id); the server's are read leniently (a message is
// the server's to get right, and one dropped would leave a call waiting). A request is answered as
// application/json, or — when the client accepts text/event-stream and the
// server reports progress for it first — as an event stream carrying those
// progress notifications and then the answer. Server→client requests
// (sampling, elicitation, roots/list) and other notifications go to the
// most recently opened GET stream of the link's sessions, and a client's
// answer is taken only from the session that stream belongs to, once,
// for a request it carried; when there is no stream, a request is
// answered with an error at once and a notification is dropped, so the
// server never waits on a client that cannot answer. A stream that closes
// before its client answers gets the same error for what it carried.
//
// # Errors
//
// Failures are answered, never waited out: a link that ends (a process
// exits, an SSE stream ends) fails every request in flight at once with a
// JSON-RPC error (-32603), a link that cannot be opened gets 502, a client
// that goes away has its request cancelled (notifications/cancelled), and
// no error text of the gateway's or the upstream's reaches a client. A
// stdio server's stderr is logged line by line with the resource, user and
// pid; message bodies are never logged. A server's own text (stderr lines,
// what it sends that is no message) is logged at most logBurst lines at
// once and then logRate a second, the rest counted (SEC-124).
package bridge
