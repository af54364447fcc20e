// Package resource is the resource-server side of mcpgate: the bearer
// middleware that guards an MCP endpoint (the seed's protect), the
// Protected Resource Metadata document (RFC 9728), and the in-memory
// denylist of revoked grants. The middleware never touches the database:
// tokens are JWTs checked against the signing keys in memory, and
// verified tokens are cached.
package resource
