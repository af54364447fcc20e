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
//     cookies), hop-by-hop headers, and Origin and Sec-Fetch-Site (the guard
//     decided on them; a backend comparing them with its rewritten Host would
//     refuse legitimate browser clients);
//   - removes every identity header the client sent, also under an
//     underscore spelling (X_Forwarded_User), which some servers fold into
//     the same name, then sets them from the verified caller
//     (identity.FromContext): see IdentityHeaders;
//   - passes Mcp-Session-Id, Mcp-Protocol-Version, Last-Event-ID, Accept,
//     Content-Type and every other end-to-end header through both ways, and
//     flushes server-sent events as they arrive;
//   - buffers the request body (at most MaxBodyBytes, else 413) so that a
//     307 or 308 redirect to the same path with or without a trailing slash
//     on the same host can be followed once by the proxy itself; any other
//     redirect reaches the client unchanged;
//   - answers 502 (504 when the upstream sends no headers within Timeout)
//     with a JSON-RPC error and no internal detail when the upstream cannot
//     be reached; the cause goes to the log.
//
// The proxy adds no X-Forwarded-For, -Host or -Proto headers and drops the
// client's: it does not know which proxies in front of the gateway are
// trusted. Session binding (SESS-3) is the backend's: it receives the
// caller's user ID in every request and should key sessions on it.
package proxy
