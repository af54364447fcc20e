package oauth

import "net/http"

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
