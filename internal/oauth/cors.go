package oauth

import (
	"net/http"
	"slices"
	"strings"
)

// CORS lets browser-based clients (MCP Inspector) call an endpoint from any
// origin. No endpoint it wraps relies on cookies, so the wildcard origin is
// safe and credentials are never allowed with it. Preflight requests are
// answered here with 204.
func CORS(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !HandleCORS(w, r) {
			h.ServeHTTP(w, r)
		}
	})
}

// HandleCORS sets the CORS response headers for r and answers OPTIONS
// requests itself; it reports whether it did, in which case the caller is
// done.
func HandleCORS(w http.ResponseWriter, r *http.Request) (answered bool) {
	if r.Header.Get("Origin") != "" {
		hd := w.Header()
		hd["Access-Control-Allow-Origin"] = allowAnyOrigin
		hd["Access-Control-Expose-Headers"] = exposedHeaders
		hd.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			hd.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version, Mcp-Method, Mcp-Name, Last-Event-ID")
			hd.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return true
		}
	}
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", "GET, POST, DELETE, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// Shared, never modified: set on every CORS response without allocating.
var (
	allowAnyOrigin = []string{"*"}
	exposedHeaders = []string{"WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version"}
)

// HandleResourceCORS is HandleCORS for a protected MCP endpoint, where the
// origin rule of TRANS-1 decides (allowed is its verdict on r): an allowed
// origin is echoed, with Vary: Origin, and granted the request headers the
// transport defines; a refused one gets no CORS header at all, and its
// preflight a 403, as its request would (SEC-34). It answers OPTIONS
// itself and reports whether it did.
func HandleResourceCORS(w http.ResponseWriter, r *http.Request, allowed bool) (answered bool) {
	origin := r.Header.Get("Origin")
	hd := w.Header()
	if origin != "" {
		hd.Add("Vary", "Origin")
	}
	if origin != "" && allowed {
		hd.Set("Access-Control-Allow-Origin", origin)
		hd["Access-Control-Expose-Headers"] = exposedHeaders
	}
	if r.Method != http.MethodOptions {
		return false
	}
	if origin == "" || r.Header.Get("Access-Control-Request-Method") == "" {
		hd.Set("Allow", "GET, POST, DELETE, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	if !allowed {
		w.WriteHeader(http.StatusForbidden)
		return true
	}
	hd.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	if granted := transportHeaders(r.Header.Values("Access-Control-Request-Headers")); granted != "" {
		hd.Set("Access-Control-Allow-Headers", granted)
	}
	hd.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// mcpRequestHeaders are the request headers of the streamable HTTP
// transport, lower case: a preflight may not grant them with "*", which
// never covers Authorization, and the Mcp-Param-* headers of 2026-07-28
// (SEP-2243, one per annotated tool argument) are a family no fixed list
// holds.
var mcpRequestHeaders = []string{"authorization", "content-type", "accept", "mcp-session-id", "mcp-protocol-version",
	"last-event-id", "mcp-method", "mcp-name"}

// transportHeaders returns those of the requested headers (the values of
// Access-Control-Request-Headers) that the transport defines, joined; a
// browser refuses the request when one it asked for is missing.
func transportHeaders(requested []string) string {
	var out []string
	for _, v := range requested {
		for h := range strings.SplitSeq(v, ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			name, isParam := strings.CutPrefix(h, "mcp-param-")
			if (isParam && name != "" && !strings.ContainsFunc(name, notNameChar)) || slices.Contains(mcpRequestHeaders, h) {
				out = append(out, h)
			}
		}
	}
	return strings.Join(out, ", ")
}

// notNameChar reports a character that MCP header names, and so the
// Mcp-Param-* names a preflight may be granted, never hold.
func notNameChar(c rune) bool {
	return !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.')
}
