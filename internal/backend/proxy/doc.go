// Package proxy forwards the gateway's protected MCP path to an upstream
// MCP server that speaks the streamable HTTP transport, as a reverse proxy.
//
// It runs behind the resource guard, which has already checked the token,
// the Origin and the Host (TRANS-1). The proxy then:
//
//   - sends every request to exactly the upstream URL (its path; its
//     query in place of the client's when it has one, SEC-156, else the
//     client's) with the upstream's own Host, which the
//     go-sdk's DNS-rebinding protection requires on loopback;
//   - removes the client's Authorization (PASS-2: the gateway's token never
//     reaches the backend; no token is injected), its Cookie (the gateway's
//     cookies), hop-by-hop headers (also those its Connection header
//     names), Expect, any protocol upgrade, and Origin and Sec-Fetch-Site
//     (the guard decided on them; a backend comparing them with its
//     rewritten Host would refuse legitimate browser clients);
//   - removes every identity header the client sent, also under an
//     underscore spelling (X_Forwarded_User), which some servers fold into
//     the same name, and under the default names when the configured ones
//     differ or are off (a backend written for the defaults may read
//     them), then sets them from the verified caller
//     (identity.FromContext): see IdentityHeaders. With
//     Options.IdentityToken it also sends a signed identity token, minted
//     per request; when minting fails the request is answered 500 and not
//     forwarded;
//   - binds each Mcp-Session-Id the upstream hands out to the user who
//     opened it, and answers 404 to a request with a session id that this
//     user did not open through this gateway (SESS-3): the upstream sees no
//     token and cannot do it itself. With Options.Sessions the binding is
//     kept in the store too, so that every replica of the gateway finds a
//     session another one opened (see sessions.go). Ids are kept by
//     their SHA-256, whatever length the upstream gives them (SEC-124).
//     The upstream also receives the caller's user ID in every request
//     and may key sessions on it as well. A request with two Mcp-Session-Id values is refused
//     (400), and other spellings of the header (Mcp_Session_Id) are
//     removed, so that the upstream reads the session that was checked;
//   - removes the upstream's Set-Cookie from its answers and their
//     trailers (SEC-121): they come from the gateway's origin, where its
//     own cookies live; and every other header by which it would speak
//     for that origin (SEC-123: WWW-Authenticate, Access-Control-*,
//     Strict-Transport-Security, Clear-Site-Data, Alt-Svc, the reporting
//     headers); its 401 or 407, about a token it never saw, becomes a
//     502;
//   - passes Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Accept,
//     Content-Type and every other end-to-end header through both ways (and
//     the answer's trailers), and passes server-sent events on one by one
//     as they arrive (within a millisecond); a stream's headers leave
//     before its first event; informational answers (1xx) are not passed
//     on;
//   - reads the request body first (at most MaxBodyBytes, else 413; a body
//     that a middleware in front has read already, with a Bytes method, as
//     internal/policy's, is used as it is) and sends it from memory, so
//     that a 307 or 308 redirect to the same path with or without a
//     trailing slash on the same host can be followed once by the proxy
//     itself; any other redirect reaches the client unchanged;
//   - answers 502 (504 when the upstream sends no headers within Timeout)
//     with a JSON-RPC error and no internal detail when the upstream cannot
//     be reached; the cause goes to the log. An answer that breaks off
//     midway aborts the client's connection, so it cannot look complete.
//     When the client goes away, the exchange with the upstream ends too;
//     a stream that the gateway ends (mcpgate's EndStreams, at shutdown)
//     ends normally at the client.
//
// # Design
//
// The proxy is an httputil.ReverseProxy: Rewrite applies the header rules
// above, ModifyResponse binds sessions, ErrorHandler writes the JSON-RPC
// errors, and FlushInterval -1 asks for a flush after every write, which a
// lazyFlusher in front of the client turns into one at most a millisecond
// later, so that an answer that arrives whole leaves in one write (see
// flush.go for the figures). Framing, hop-by-hop headers, trailers and the
// query clean-up are net/http's, which a security gateway should not
// re-implement: each line of a home-made HTTP client would be a line to
// audit for request smuggling.
//
// Its transport (NewTransport) is tuned for a gateway: http.DefaultTransport
// keeps 2 idle connections per host, so that under load the proxy would
// dial and close upstream connections all the time; this one keeps 256.
// It speaks HTTP/2 to an https upstream that offers it, and bounds the
// dial (5 s) and the wait for response headers (Options.Timeout, as
// ResponseHeaderTimeout; the body, an event stream, may last). A small
// RoundTripper in front of it (slashRedirects) follows the one redirect.
//
// A GET, an event stream that a client may hold open and idle for hours,
// goes through a second ReverseProxy with small buffers of its own: a
// 4 KiB copy buffer and a copy of the transport with 1 KiB and 2 KiB
// connection buffers (SEC-81); the other answers, a tool's few megabytes
// among them, keep the transport's buffers and pooled 32 KiB copy buffers.
// See transport.go for the figures.
//
// The request the upstream gets is a copy of the client's with the body
// from memory, never the client's r.Body: the transport may still read a
// body after the handler has returned (net/http's RoundTripper contract),
// and a body that the server has already closed makes it drop the
// connection, cutting an event stream in flight (golang/go#40747).
//
// The proxy adds no X-Forwarded-For, -Host or -Proto headers and drops the
// client's X-Real-IP, Forwarded and every X-Forwarded-* (in any case and
// underscore spelling, SEC-33): it does not know which proxies in front of
// the gateway are trusted, and an upstream might log or trust them.
package proxy
