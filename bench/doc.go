// Package bench is the load generator behind mcpgate's MCP benchmarks.
//
// It drives MCP streamable-HTTP sessions with a deliberately thin client: a
// keep-alive net/http transport with one connection per session, request
// bodies built in a reused buffer, one request in flight per session, and
// the whole response (JSON or SSE) read and checked before the next one.
// Latencies go into a log-linear histogram (under 0.8 % relative error), so
// memory does not grow with the number of requests. Each run also samples
// the CPU time of this process and of the whole machine (/proc/stat on
// Linux), so that a report can give CPU time per request and flag runs
// that other processes disturbed.
//
// The mcpload command (bench/mcpload) uses it to compare tools/call through
// the gateway's /mcp with the same MCP server served directly;
// docs/benchmarks.md describes the method and the figures.
package bench
