package mcpgate_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgate/mcpgate"
)

// traceparents keeps the traceparent header of every request an upstream
// receives.
type traceparents struct {
	mu   sync.Mutex
	seen []string
}

func (p *traceparents) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, r.Header.Get("Traceparent"))
		p.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (p *traceparents) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.seen...)
}

func spanAttrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// SEC-104: with a tracer provider, every request has a server span named
// by its route, with the request id; a tools/call has a child span with
// the user, client, resource, tool and outcome; the upstream gets the
// W3C trace context of the same trace; an incoming traceparent is the
// parent; and no span carries the access token, the code or a query.
func TestSEC104_Tracing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	mcp.AddTool(server, &mcp.Tool{Name: "echo"}, func(context.Context, *mcp.CallToolRequest, struct{}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
	})
	parents := &traceparents{}
	up := httptest.NewServer(parents.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	t.Cleanup(up.Close)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	events := &auditLog{}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
		c.Audit = events
		c.TracerProvider = tp
	})

	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d", resp.StatusCode)
	}
	rt := &requestIDs{token: tok.AccessToken}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: rt},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo"}); err != nil {
		t.Fatal(err)
	}
	cs.Close()

	// A caller's trace context is the parent of the gateway's span.
	const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	g.get(g.url+"/.well-known/oauth-protected-resource/mcp?x=secret-query", "Traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")

	spans := rec.Ended()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byName[s.Name()] = append(byName[s.Name()], s)
		for k, v := range spanAttrs(s) {
			for _, secret := range []string{tok.AccessToken, tok.RefreshToken, code, "secret-query"} {
				if strings.Contains(v, secret) {
					t.Errorf("span %q attribute %s carries a secret: %q", s.Name(), k, v)
				}
			}
		}
		if strings.Contains(s.Name(), "secret-query") || strings.Contains(s.Name(), code) {
			t.Errorf("span name %q carries a query or code", s.Name())
		}
	}
	for _, route := range []string{"POST /register", "GET /authorize", "POST /token", "POST /mcp", "GET /.well-known/oauth-protected-resource/mcp"} {
		ss := byName[route]
		if len(ss) == 0 {
			names := make([]string, 0, len(byName))
			for n := range byName {
				names = append(names, n)
			}
			t.Errorf("no span named %q; have %q", route, names)
			continue
		}
		s := ss[0]
		at := spanAttrs(s)
		if s.SpanKind() != trace.SpanKindServer || at["http.request.method"] != strings.Fields(route)[0] || at["http.response.status_code"] == "" || !requestIDPattern.MatchString(at["mcpgate.request_id"]) {
			t.Errorf("span %q: kind %v attributes %v, want a server span with method, status code and request id", route, s.SpanKind(), at)
		}
	}
	if ss := byName["GET /.well-known/oauth-protected-resource/mcp"]; len(ss) == 1 {
		if s := ss[0]; s.Parent().TraceID().String() != parentTrace || s.Parent().SpanID().String() != parentSpan {
			t.Errorf("span with an incoming traceparent: parent %v, want %s/%s", s.Parent(), parentTrace, parentSpan)
		}
	}

	calls := byName["tools/call"]
	if len(calls) != 1 {
		t.Fatalf("%d tools/call spans, want 1", len(calls))
	}
	call := calls[0]
	at := spanAttrs(call)
	ev := events.events()
	if len(ev) != 1 {
		t.Fatalf("%d audit events, want 1", len(ev))
	}
	want := map[attribute.Key]string{"user.id": ev[0].User, "mcpgate.client_id": c.ClientID, "mcpgate.resource": "/mcp", "mcp.tool.name": "echo", "mcpgate.outcome": "ok", "mcpgate.request_id": ev[0].RequestID}
	for k, v := range want {
		if at[k] != v || v == "" {
			t.Errorf("tools/call span %s = %q, want %q", k, at[k], v)
		}
	}
	var parent sdktrace.ReadOnlySpan
	for _, s := range byName["POST /mcp"] {
		if s.SpanContext().SpanID() == call.Parent().SpanID() {
			parent = s
		}
	}
	if parent == nil {
		t.Fatalf("the tools/call span's parent %v is no POST /mcp span", call.Parent())
	}
	// The upstream got the trace context of the request that carried the
	// call.
	wantParent := fmt.Sprintf("00-%s-%s-01", parent.SpanContext().TraceID(), parent.SpanContext().SpanID())
	found := false
	for _, p := range parents.all() {
		found = found || p == wantParent
	}
	if !found {
		t.Errorf("upstream traceparents %q, want one %q", parents.all(), wantParent)
	}
}

// Without a tracer provider no traceparent is made up for the upstream:
// the client's passes as before.
func TestTracingOffPassesTraceparent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	parents := &traceparents{}
	up := httptest.NewServer(parents.wrap(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)))
	t.Cleanup(up.Close)
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
	})
	_, _, tok := g.fullFlow()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(tok.AccessToken)},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs.Close()
	for _, p := range parents.all() {
		if p != "" {
			t.Errorf("upstream got traceparent %q with tracing off, want none", p)
		}
	}
}
