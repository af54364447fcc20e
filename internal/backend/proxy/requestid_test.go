package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/requestid"
)

// SEC-103: the upstream gets the gateway's request id as X-Request-Id,
// never the one a client sent: an upstream takes that header for its own
// request's id, and its log would then name what the client chose, not
// the request in the gateway's access line and audit event.
func TestSEC103_UpstreamGetsGatewayRequestID(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	h, err := New(Options{Upstream: mustURL(t, be.URL)})
	if err != nil {
		t.Fatal(err)
	}
	guarded := asGuard(h, &identity.Caller{User: identity.User{ID: "local:bob"}, ClientID: "client-1"})
	fe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		guarded.ServeHTTP(w, r.WithContext(requestid.With(r.Context(), id)))
	}))
	t.Cleanup(fe.Close)
	req, _ := http.NewRequest("POST", fe.URL+"/mcp", strings.NewReader("{}"))
	req.Header.Set("X-Request-Id", "client-chosen")
	req.Header.Add("X-Request-Id", "another")
	// A backend that folds _ into - (CGI, WSGI) would join this one to
	// the gateway's. Fails before: it reached the upstream.
	req.Header["X_request_id"] = []string{"forged-by-client"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := rec.last(t)
	if got := r.Header.Values("X-Request-Id"); len(got) != 1 || got[0] != id {
		t.Errorf("upstream X-Request-Id %q, want the gateway's %q only", got, id)
	}
	if got := r.Header.Values("X_request_id"); len(got) != 0 {
		t.Errorf("upstream X_request_id %q, want none", got)
	}
}
