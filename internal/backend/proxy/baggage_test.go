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

// SEC-104: untraced, the upstream gets the client's traceparent only as
// the IDs and flags it names, written again, and none for a value that
// is no traceparent: an upstream's propagator trusts that header as the
// gateway's. Fails before: the client's text passed as it came.
func TestSEC104_UntracedTraceparentWrittenAgain(t *testing.T) {
	const valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for sent, want := range map[string]string{
		valid:                             valid,
		valid + ";x-forwarded-user=admin": "",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-x-01": "",
		"any text the client wants":                "",
	} {
		rec := &recorder{}
		be := backend(t, rec.handler(nil))
		h, err := New(Options{Upstream: mustURL(t, be.URL)})
		if err != nil {
			t.Fatal(err)
		}
		fe := httptest.NewServer(asGuard(h, &identity.Caller{User: identity.User{ID: "local:bob"}, ClientID: "client-1"}))
		t.Cleanup(fe.Close)
		req, _ := http.NewRequest("POST", fe.URL+"/mcp", strings.NewReader("{}"))
		req.Header.Set("Traceparent", sent)
		req.Header.Set("Tracestate", "vendor=client-text")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r, _ := rec.last(t)
		if got := strings.Join(r.Header.Values("Traceparent"), ","); got != want {
			t.Errorf("sent traceparent %q: upstream got %q, want %q", sent, got, want)
		}
		if got := r.Header.Values("Tracestate"); len(got) != 0 {
			t.Errorf("sent traceparent %q: upstream got tracestate %q, want none", sent, got)
		}
	}
}
