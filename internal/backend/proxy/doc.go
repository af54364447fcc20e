// Package proxy forwards the gateway's protected MCP path to an upstream
// MCP server that speaks the streamable HTTP transport, as a reverse proxy.
//
// It runs behind the resource guard, which has already checked the token,
// the Origin and the Host (TRANS-1). The proxy then:
//
//   - sends every request to exactly the upstream URL (its path; the
//     client's query is kept) with the upstream's own Host, which the
//     go-sdk's DNS-rebinding protection requires on loopback;
//   - removes the client's Authorization (PASS-2: the gateway's token never
//     reaches the backend; no token is injected), its Cookie (the gateway's
//     cookies), hop-by-hop headers (also those its Connection header
//     names), Expect, and Origin and Sec-Fetch-Site (the guard decided on
//     them; a backend comparing them with its rewritten Host would refuse
//     legitimate browser clients);
//   - removes every identity header the client sent, also under an
//     underscore spelling (X_Forwarded_User), which some servers fold into
//     the same name, then sets them from the verified caller
//     (identity.FromContext): see IdentityHeaders. With
//     Options.IdentityToken it also sends a signed identity token, minted
//     per request; when minting fails the request is answered 500 and not
//     forwarded;
//   - binds each Mcp-Session-Id the upstream hands out to the user who
//     opened it, and answers 404 to a request with a session id that this
//     user did not open through this gateway (SESS-3): the upstream sees no
//     token and cannot do it itself; it also receives the caller's user ID
//     in every request and may key sessions on it as well;
//   - passes Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Accept,
//     Content-Type and every other end-to-end header through both ways (and
//     the answer's trailers), and flushes server-sent events as they arrive: it flushes
//     whenever the next read could wait for the upstream, so an event or a
//     stream's headers never wait, while an answer that has fully arrived
//     goes to the client in one write;
//   - buffers the request body (at most MaxBodyBytes, else 413; a body that
//     a middleware in front has read already, with a Bytes method, is used
//     as it is) so that a 307 or 308 redirect to the same path with or
//     without a trailing slash on the same host can be followed once by the
//     proxy itself; any other redirect reaches the client unchanged;
//   - answers 502 (504 when the upstream sends no headers within Timeout)
//     with a JSON-RPC error and no internal detail when the upstream cannot
//     be reached; the cause goes to the log. An answer that breaks off
//     midway aborts the client's connection, so it cannot look complete.
//     When the client goes away, the exchange with the upstream ends too.
//
// To an http upstream the proxy speaks HTTP/1.1 with a client of its own
// (h1.go) on keep-alive connections, in the handler's goroutine; an https
// upstream, or any Options.Transport, goes through that http.RoundTripper
// (NewTransport by default, which may use HTTP/2).
//
// The proxy adds no X-Forwarded-For, -Host or -Proto headers and drops the
// client's, and Forwarded: it does not know which proxies in front of the
// gateway are trusted.
package proxy
