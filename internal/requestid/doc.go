// Package requestid makes the id that ties together what the gateway
// records about one HTTP request: its access log line, the audit event of a
// tools/call it carries, and its trace span. The gateway returns it to the
// client in the X-Request-Id header, so that an operator can find a
// person's failed request from what their client shows.
//
// The id is always made by the gateway (16 bytes from crypto/rand, in hex):
// a client's X-Request-Id is never taken as it, since a client could then
// make its requests look like another's in the logs (SEC-103).
package requestid
