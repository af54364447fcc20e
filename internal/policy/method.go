package policy

import (
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// allowHeader lists the methods of the streamable HTTP transport: POST for
// messages, GET for the event stream, DELETE to end a session, OPTIONS for
// the CORS preflight (answered in front, by the resource guard).
const allowHeader = "GET, POST, DELETE, OPTIONS"

// admitMethod answers, and reports false for, a request the transport does
// not define (SEC-30), a GET or DELETE that carries a body (SEC-31: only a
// POST body is read and checked, so no other may reach a backend), and a
// request with more than one Mcp-Session-Id (SEC-32: backends read the
// first, and a proxied upstream might read another), and a POST whose body
// a backend would decode otherwise than as the UTF-8 JSON the policy reads
// (SEC-133).
func admitMethod(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodPost:
		if why := otherEncoding(r.Header); why != "" {
			jsonrpc.WriteError(w, http.StatusUnsupportedMediaType, nil, jsonrpc.CodeInvalidRequest, why)
			return false
		}
	case http.MethodGet, http.MethodDelete:
		if hasBody(r) {
			jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "a "+r.Method+" request must not have a body")
			return false
		}
	case http.MethodOptions:
		w.Header().Set("Allow", allowHeader)
		w.WriteHeader(http.StatusNoContent)
		return false
	default:
		w.Header().Set("Allow", allowHeader)
		jsonrpc.WriteError(w, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest, "method not allowed: use POST, GET or DELETE")
		return false
	}
	if len(r.Header["Mcp-Session-Id"]) > 1 {
		jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "more than one Mcp-Session-Id")
		return false
	}
	return true
}

// hasBody reports whether r carries a body: a Content-Length above zero,
// or a body of unknown length (chunked, or an HTTP/2 stream not ended with
// its headers) that holds a byte. One that ends at once (a chunked body of
// no chunk, which a proxy in front may send for an HTTP/2 request whose
// end came in a frame of its own) is no body, and r gets http.NoBody.
func hasBody(r *http.Request) bool {
	switch {
	case r.ContentLength > 0:
		return true
	case r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody:
		return false
	}
	var b [1]byte
	if n, err := io.ReadFull(r.Body, b[:]); n == 0 && err == io.EOF {
		r.Body = http.NoBody
		return false
	}
	return true
}

// otherEncoding says why a POST's body would not reach a backend as the
// bytes the policy reads, or "" when it would: the policy parses them as
// UTF-8 JSON, and a server that honours a charset (the TypeScript SDK's
// express.json takes any "utf-*", UTF-7 among them) or a Content-Encoding
// would read another message from the same bytes, a denied tool's name
// hidden in an allowed one's arguments (SEC-133). Without a Content-Type
// the body is JSON as it is, as the servers take it.
func otherEncoding(h http.Header) string {
	if ce := h.Values("Content-Encoding"); len(ce) > 1 || (len(ce) == 1 && !strings.EqualFold(strings.TrimSpace(ce[0]), "identity")) {
		return "a request body must not be encoded (Content-Encoding)"
	}
	cts := h.Values("Content-Type")
	switch {
	case len(cts) == 0:
		return ""
	case len(cts) > 1:
		return "more than one Content-Type"
	}
	mt, params, err := mime.ParseMediaType(cts[0])
	if err != nil || mt != "application/json" {
		return "the request body must be application/json"
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return "the request body must be application/json in UTF-8, with no other parameter"
		}
	}
	return ""
}
