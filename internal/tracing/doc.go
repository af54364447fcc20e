// Package tracing holds the gateway's OpenTelemetry traces: the tracer
// provider serve builds from the standard OTEL_* variables (FromEnv), and
// the few spans and headers the gateway's packages add to a request.
//
// Tracing is off unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set: then there is no provider,
// no exporter goroutine, and every function here returns at once on a
// context that holds no span, allocating nothing.
//
// What a span may carry is fixed here and nowhere else (SEC-104): the
// route (the pattern that served the request, never its path or query),
// the method, the status code, the gateway's request id, and for a
// tools/call the user id, client id, resource, tool name and outcome.
// Never a header, a token, a code, a state, a query string or a body.
//
// Trace context crosses the gateway as W3C traceparent/tracestate: an
// incoming one is the parent of the request's span (as any traced service
// honours its callers'), and the request to an upstream MCP server carries
// the request's own (Inject). Baggage is not propagated: it is the
// client's text, and the upstream should not take it as the gateway's.
package tracing
