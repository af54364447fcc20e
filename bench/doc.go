// Package bench is the load generator behind mcpgate's benchmarks.
//
// It drives MCP streamable-HTTP sessions with a deliberately thin client: a
// keep-alive net/http transport with one connection per session, request
// bodies built in a reused buffer, one request in flight per session, and
// the whole response (JSON or SSE) read and checked before the next one.
// RunWorkers drives any other operation the same way (the OAuth flows of
// bench/flowload). Latencies go into a log-linear histogram (under 0.8 %
// relative error), so memory does not grow with the number of requests.
// Each run also samples the CPU time of this process and of the whole
// machine (/proc/stat on Linux), so that a report can give CPU time per
// request and flag runs that other processes disturbed.
//
// The mcpload command (bench/mcpload) uses it to compare tools/call through
// the gateway's /mcp with the same MCP server served directly (the
// gateway built in this process, or with -gateway a built mcpgate binary
// in a process of its own, whose CPU time ProcessCPU reads); the flowload
// command (bench/flowload) measures authorization-code flows and refresh
// rotations per second, on SQLite, in memory or on PostgreSQL with one or
// several replicas (StartPostgres runs a throwaway server for it);
// docs/benchmarks.md describes the methods and the figures. What the two commands share is here too: their common options
// (Options), command line and exit codes (Main), the gateway's
// configuration and the OAuth steps of their setup (GatewayConfig,
// RegisterClient, Authorize), the decoding of CPU profiles
// (ParseCPUProfile, with github.com/google/pprof/profile), and report
// helpers. The MCP server under test is mcpgate.DemoServer.
//
// The harness is a Go module of its own, github.com/mcpgate/mcpgate/bench,
// so that mcpgate's module does not carry it or its dependencies. It uses
// only mcpgate's public API (package mcpgate, store/..., upstream/...,
// identity, e2e/browser), the go-sdk and pgx, and its go.mod replaces
// github.com/mcpgate/mcpgate with the parent directory: it always measures
// the tree it sits in (mcpload -gateway: the binary it is given). Run it from this directory (go run ./mcpload) or
// from the root with go -C bench run ./mcpload.
package bench
