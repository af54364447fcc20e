// Package embedded serves MCP servers that run inside mcpgate's own
// process: the demo server (tools whoami and echo) and any *mcp.Server a Go
// program hands to the library, over the go-sdk's streamable HTTP
// transport. The caller's identity arrives through the request context.
package embedded
