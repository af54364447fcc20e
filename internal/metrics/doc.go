// Package metrics counts what the gateway does, for Prometheus: HTTP
// requests per route, the steps of the OAuth flow, the resource guard's
// token checks, tool calls, backend errors, stdio server processes and
// open event streams, with the Go runtime's and the process's own
// collectors beside them.
//
// Every collector lives on a registry of its own, never the global
// default, so that nothing another package registers is served and two
// gateways in one process do not collide. A nil *Metrics is valid and
// counts nothing: the packages that report call its methods without a
// check, and a gateway without metrics pays one nil test per event.
//
// Labels are bounded by construction (SEC-90): a route is the mux pattern
// that served the request, or "unmatched"; a step, an outcome and a kind
// are constants of the code that reports them; a resource is a configured
// path; a tool is a name the backend listed in a tools/list answer or
// answered a call to with a result that is no error (some servers answer
// a call to any name with an isError result), at most MaxToolNames per resource,
// else "other". No label carries a user, a client, a token, a redirect URI
// or anything else a client chooses.
//
// The handler is served on the metrics listener only, never on the
// gateway's public one (SEC-89): the series describe every user's
// traffic, and an operator exposes them to Prometheus, not to clients.
package metrics
