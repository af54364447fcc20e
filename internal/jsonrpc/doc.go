// Package jsonrpc reads what the gateway needs of MCP's JSON-RPC 2.0
// messages, without decoding them: the kind, method, raw id, and
// params.name and params.uri of a request body (Parse); the id and outcome
// of the backend's answers (ScanAnswers); and the tools of a tools/list
// answer, to remove those a caller may not call (FilterToolsList).
//
// Parse is stricter than encoding/json on purpose. The gateway authorizes
// on what it reads and the backend acts on what it reads, possibly with
// another parser: JSON keys are matched exactly; a duplicate of a member
// the gateway reads, or a case or Unicode-folding variant of its name
// ("Method", "NAME", "paramſ"), is refused; the body must be valid JSON in
// valid UTF-8, within encoding/json's nesting limit, with nothing after
// it. So no two parsers can see different methods or tool names in a body
// the gateway forwards.
//
// CheckHeaders enforces TRANS-2 (MCP 2026-07-28, SEP-2243): the Mcp-Method
// and Mcp-Name request headers, which load balancers and gateways may route
// or authorize on, must agree with the body (else HTTP 400, JSON-RPC
// -32020 HeaderMismatch).
//
// The scanner is hand-written: it allocates nothing for a single message
// except the strings it returns, and the method names of MCP come from
// constants.
package jsonrpc
