// Package audit records one structured event per MCP tools/call that
// passes through the gateway: who called (user and OAuth client), which
// resource and tool, how it ended and how long it took.
//
// An event never holds a token, a secret, the call's arguments or its
// result: only names the operator configured or the backend advertised,
// identifiers, an outcome and a duration. Events go to a slog.Logger: the
// gateway's own log by default, or a JSON-lines file of their own.
package audit
