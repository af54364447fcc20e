// Package policy stands between the resource guard and an MCP backend: it
// decides which tools each caller may call, hides the others from
// tools/list, enforces the MCP request headers against the body (TRANS-2),
// and records one audit event per tools/call.
//
// # Rules
//
// A Policy has a Default ("allow", the default when empty, or "deny") and
// Rules. A rule applies to a caller when every condition it lists holds:
// Users, the caller's identity.User.ID is in the list; Groups, the caller
// is in at least one of them; Scopes, the caller's access token carries at
// least one of them. A rule without conditions applies to everyone.
//
// A tool is denied if the Deny of any applying rule matches it (deny
// wins, whatever the order of the rules); otherwise allowed if the Allow
// of any applying rule matches it; otherwise Default decides. A pattern is
// an exact tool name, or holds '*', which matches any run of characters
// ("delete_*", "*"); there is no other wildcard, and matching is
// case-sensitive. Validate refuses an unknown default, a rule with
// neither allow nor deny, and an empty pattern, user, group or scope.
//
// # The middleware
//
// Wrap lets only the transport's methods through (SEC-30): POST, and GET
// and DELETE without a body (SEC-31), each with at most one Mcp-Session-Id
// (SEC-32); anything else is answered here (405, or 400), so that no body
// reaches a backend without the checks below. It stands behind the
// resource guard: a caller without a valid token gets the guard's 401
// whatever the method, and learns nothing of the backend. It checks every
// POST before the backend sees it:
//
//  1. The body (at most Options.MaxBodyBytes, else 413) is parsed with
//     jsonrpc.Parse, which refuses what another parser could read
//     differently (duplicate or case-variant keys, invalid UTF-8, trailing
//     data): 400 with JSON-RPC -32700 or -32600.
//  2. TRANS-2: Mcp-Method and Mcp-Name must match the body, and are
//     required from 2026-07-28 clients: else 400 with -32020.
//  3. A tools/call of a denied tool is answered by the gateway (200, JSON-RPC
//     -32602 "tool not allowed: NAME") and never forwarded; a batch that
//     holds one is refused whole.
//  4. With a policy, a tools/list answer lists only the tools the caller
//     may call: a JSON answer is held and rewritten (only result.tools
//     changes), an event stream passes event by event, each written and
//     flushed as soon as it is complete. An answer that cannot be filtered
//     is refused unless it holds no tools. Every answer is read so, a
//     GET's event stream too, and every response in it whatever its id
//     (SEC-122): a client takes an answer for its tools/list by the id
//     alone, whichever stream it comes on, so a backend could otherwise
//     list a denied tool on another request's stream or under another
//     id. The client's Accept-Encoding is removed and a packed answer
//     (Content-Encoding) refused, since its tools cannot be read.
//  5. Each tools/call gets an audit event: user, client, resource, tool,
//     outcome (ok, tool_error, error, denied, failed) and duration, read
//     from the answer as it passes, never delaying it; never the token,
//     the arguments or the result.
//
// The backend receives the body as a *BufferedBody (Bytes returns it
// without a copy; GetBody and ContentLength are set). GET and DELETE
// without a body pass unchecked, their answers filtered as above under a
// policy; the response writers keep http.Flusher and Unwrap.
package policy
