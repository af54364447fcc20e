package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// scrape returns what the handler serves.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", rec.Code)
	}
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// A nil *Metrics is metrics off: every method is a no-op and the handler
// answers 404.
func TestNilMetricsCountNothing(t *testing.T) {
	var m *Metrics
	r := httptest.NewRequest("GET", "/x", nil)
	m.Request(r, 200, time.Millisecond)
	m.OAuthStep("token_refresh_token", "ok")
	m.TokenCheck("ok")
	m.ListedTool("/mcp", "echo")
	m.ToolCall("/mcp", "echo", ToolOK, true, time.Millisecond)
	m.BackendError("/mcp", "unavailable")
	m.StdioProcesses("/mcp", 1)
	m.EventStreams("/mcp", 1)
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, r)
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Metrics' handler: %d, want 404", rec.Code)
	}
}

// SEC-89: the registry is the gateway's own: what another package puts on
// the global default one is not served; the Go runtime's and the
// process's collectors are.
func TestSEC89_OwnRegistry(t *testing.T) {
	stray := prometheus.NewCounter(prometheus.CounterOpts{Name: "stray_counter_total", Help: "x"})
	prometheus.MustRegister(stray)
	defer prometheus.Unregister(stray)
	m := New()
	body := scrape(t, m)
	if strings.Contains(body, "stray_counter_total") {
		t.Error("a collector of the default registry is served")
	}
	for _, want := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
		if !strings.Contains(body, want) {
			t.Errorf("%s missing from the scrape", want)
		}
	}
	// Two gateways in one process do not collide.
	_ = New()
}

// SEC-90: the route is the mux pattern, led by the method when the
// pattern has none; a path no route serves is "unmatched", and the raw
// path and query never appear.
func TestSEC90_RouteIsThePattern(t *testing.T) {
	m := New()
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {}
	mux.HandleFunc("POST /token", ok)
	mux.HandleFunc("GET /login/{connector}", ok)
	mux.HandleFunc("/mcp", ok)
	for _, tc := range []struct{ method, target, route string }{
		{"POST", "/token", "POST /token"},
		{"POST", "/token", "POST /token"},
		{"GET", "/login/local?state=secret-state-1", "GET /login/{connector}"},
		{"GET", "/mcp", "GET /mcp"},
		{"POST", "/mcp", "POST /mcp"},
		{"BREW", "/mcp", "OTHER /mcp"},
		{"GET", "/no/such/path-secret-2", Unmatched},
	} {
		r := httptest.NewRequest(tc.method, tc.target, nil)
		mux.ServeHTTP(httptest.NewRecorder(), r)
		if got := RouteOf(r); got != tc.route {
			t.Errorf("%s %s: route %q, want %q", tc.method, tc.target, got, tc.route)
		}
		m.Request(r, 200, 3*time.Millisecond)
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("POST /token", "200")); got != 2 {
		t.Errorf("requests{POST /token,200} = %v, want 2", got)
	}
	if got := testutil.CollectAndCount(m.latency); got != 6 {
		t.Errorf("%d latency series, want 6 (one per route)", got)
	}
	body := scrape(t, m)
	for _, leak := range []string{"secret-state-1", "path-secret-2", "/login/local", "BREW"} {
		if strings.Contains(body, leak) {
			t.Errorf("the scrape holds %q", leak)
		}
	}
	if !strings.Contains(body, `mcpgate_http_request_duration_seconds_bucket{route="POST /token",le="0.005"} 2`) {
		t.Errorf("the latency histogram of POST /token is not in the scrape:\n%s", body)
	}
}

func TestOAuthStepsAndTokenChecks(t *testing.T) {
	m := New()
	m.OAuthStep("register", "ok")
	m.OAuthStep("token_authorization_code", "invalid_grant")
	m.OAuthStep("token_authorization_code", "invalid_grant")
	m.TokenCheck("expired")
	for _, tc := range []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.oauthSteps.WithLabelValues("register", "ok"), 1},
		{m.oauthSteps.WithLabelValues("token_authorization_code", "invalid_grant"), 2},
		{m.tokenChecks.WithLabelValues("expired"), 1},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.c, got, tc.want)
		}
	}
}

// SEC-90: a tool name is a label only once the backend listed it or
// answered a call to it with a result, and at most MaxToolNames per
// resource; any other name a client sends is "other".
func TestSEC90_ToolNamesCapped(t *testing.T) {
	m := New()
	count := func(resource, tool, outcome string) float64 {
		return testutil.ToFloat64(m.toolCalls.WithLabelValues(resource, tool, outcome))
	}
	// A name nobody listed, refused by the policy or unknown to the
	// backend, is other.
	m.ToolCall("/mcp", "made-up-by-a-client", ToolDenied, false, time.Millisecond)
	m.ToolCall("/mcp", "made-up-by-a-client", ToolError, false, time.Millisecond)
	if count("/mcp", OtherTool, ToolDenied) != 1 || count("/mcp", OtherTool, ToolError) != 1 {
		t.Error("unknown tool names are not counted as other")
	}
	// Listed: its own label, denied or not; answered: its own label.
	m.ListedTool("/mcp", "delete_notes")
	m.ToolCall("/mcp", "delete_notes", ToolDenied, false, time.Millisecond)
	m.ToolCall("/mcp", "echo", ToolOK, true, time.Millisecond)
	m.ToolCall("/mcp", "echo", ToolOK, true, time.Millisecond)
	if count("/mcp", "delete_notes", ToolDenied) != 1 || count("/mcp", "echo", ToolOK) != 2 {
		t.Error("known tool names are not their own label")
	}
	// Per resource: echo is not known at /other.
	m.ToolCall("/other", "echo", ToolDenied, false, time.Millisecond)
	if count("/other", OtherTool, ToolDenied) != 1 {
		t.Error("a tool known at one resource is a label at another")
	}
	// A name that is not UTF-8, or too long, never becomes a label.
	m.ToolCall("/mcp", "bad\xff", ToolOK, true, time.Millisecond)
	m.ToolCall("/mcp", strings.Repeat("x", 129), ToolOK, true, time.Millisecond)
	if count("/mcp", OtherTool, ToolOK) != 2 {
		t.Error("an invalid tool name is not other")
	}
	// The cap.
	for i := range 2 * MaxToolNames {
		m.ToolCall("/big", fmt.Sprintf("tool%d", i), ToolOK, true, time.Millisecond)
	}
	if got := testutil.CollectAndCount(m.toolCalls); got > 6+MaxToolNames+1 {
		t.Errorf("%d tool call series, want at most %d", got, 6+MaxToolNames+1)
	}
	if count("/big", OtherTool, ToolOK) != MaxToolNames {
		t.Errorf("calls past the cap counted as other: %v, want %d", count("/big", OtherTool, ToolOK), MaxToolNames)
	}
	if got := testutil.CollectAndCount(m.toolLatency); got != 3 {
		t.Errorf("%d tool latency series, want 3 (one per resource)", got)
	}
}

func TestGaugesAndBackendErrors(t *testing.T) {
	m := New()
	m.StdioProcesses("/fs", 1)
	m.StdioProcesses("/fs", 1)
	m.StdioProcesses("/fs", -1)
	m.EventStreams("/mcp", 1)
	m.BackendError("/mcp", "unavailable")
	if got := testutil.ToFloat64(m.stdio.WithLabelValues("/fs")); got != 1 {
		t.Errorf("stdio processes = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.streams.WithLabelValues("/mcp")); got != 1 {
		t.Errorf("event streams = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.backendErrors.WithLabelValues("/mcp", "unavailable")); got != 1 {
		t.Errorf("backend errors = %v, want 1", got)
	}
}

// What the metrics add to one proxied tools/call: the request's counter
// and histogram, the token check, the tool call's counter and histogram.
func BenchmarkToolCallPath(b *testing.B) {
	m := New()
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(http.ResponseWriter, *http.Request) {})
	r := httptest.NewRequest("POST", "/mcp", nil)
	mux.ServeHTTP(httptest.NewRecorder(), r)
	m.ListedTool("/mcp", "echo")
	b.ReportAllocs()
	for b.Loop() {
		m.TokenCheck("ok")
		m.ToolCall("/mcp", "echo", ToolOK, true, time.Millisecond)
		m.Request(r, 200, time.Millisecond)
	}
}
