package proxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate/identity"
)

// SEC-104: a client's W3C Baggage never reaches the upstream, traced or
// not. It is the client's text ("user.id=admin"), and an upstream whose
// OpenTelemetry propagators read it would take it as context the gateway
// vouched for.
func TestSEC104_ClientBaggageNeverForwarded(t *testing.T) {
	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3},
		SpanID:     trace.SpanID{4, 5, 6},
		TraceFlags: trace.FlagsSampled,
	})
	for _, traced := range []bool{false, true} {
		rec := &recorder{}
		be := backend(t, rec.handler(nil))
		h, err := New(Options{Upstream: mustURL(t, be.URL)})
		if err != nil {
			t.Fatal(err)
		}
		guarded := asGuard(h, &identity.Caller{User: identity.User{ID: "local:bob"}, ClientID: "client-1"})
		fe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if traced {
				r = r.WithContext(trace.ContextWithSpanContext(r.Context(), span))
			}
			guarded.ServeHTTP(w, r)
		}))
		t.Cleanup(fe.Close)
		req, _ := http.NewRequest("POST", fe.URL+"/mcp", strings.NewReader("{}"))
		req.Header.Set("Baggage", "user.id=local:admin,role=admin")
		req.Header.Add("baggage", "tenant=other")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r, _ := rec.last(t)
		if got := r.Header.Values("Baggage"); len(got) != 0 {
			t.Errorf("traced %v: upstream got Baggage %q, want none", traced, got)
		}
		if traced && r.Header.Get("Traceparent") == "" {
			t.Errorf("traced: upstream got no traceparent")
		}
	}
}
