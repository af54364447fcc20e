package mcpgate_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/metrics/metricstest"
)

// scrapeMetrics is what m's handler serves.
func scrapeMetrics(t *testing.T, m *mcpgate.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	return string(body)
}

// The OAuth funnel, the token checks and the requests per route are
// counted with the outcome each step answered, and the whole scrape holds
// no user, client, token, code, state or redirect URI (SEC-90).
func TestSEC90_FunnelAndTokenChecks(t *testing.T) {
	m := mcpgate.NewMetrics()
	g := newGateway(t, func(c *mcpgate.Config) {
		c.Metrics = m
		c.Resources = []mcpgate.Resource{{Path: "/mcp"}, {Path: "/other"}}
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 {
		t.Fatalf("token: %d %+v", resp.StatusCode, tok)
	}
	// The code again: invalid_grant (PKCE-3), which also revokes what it issued.
	if resp, _ := g.exchange(a, code); resp.StatusCode != 400 {
		t.Fatalf("code replay: %d, want 400", resp.StatusCode)
	}
	_, a2, tok := g.fullFlow()
	// A wrong password, after consent: the login page again, with 401.
	if _, _, _, err := browser.New(testUser, "wrong password").Authorize(context.Background(), g.newAuth(c.ClientID).URL(), redirectURI); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if resp, _ := g.postForm(g.url+"/token", url.Values{"grant_type": {"password"}, "client_id": {c.ClientID}}); resp.StatusCode != 400 {
		t.Fatalf("grant_type password: %d, want 400", resp.StatusCode)
	}
	resp, tok2 := g.refresh(a2.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d %+v", resp.StatusCode, tok2)
	}

	// Token checks.
	g.mcpInitialize(g.url, "")
	g.mcpInitialize(g.url, "not-a-token")
	g.mcpInitialize(g.url, "", "Authorization", "Basic eDp5")
	if resp, _ := g.mcpInitialize(g.url, tok2.AccessToken); resp.StatusCode != 200 {
		t.Fatalf("initialize: %d", resp.StatusCode)
	}
	if resp, _ := g.postForm(g.url+"/other", nil, "Authorization", "Bearer "+tok2.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("a /mcp token at /other: %d, want 401", resp.StatusCode)
	}
	if resp, _ := g.postForm(g.url+"/revoke", url.Values{"token": {tok2.RefreshToken}, "client_id": {a2.ClientID}}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	g.mcpInitialize(g.url, tok2.AccessToken)
	g.clock.Advance(2 * time.Hour)
	g.mcpInitialize(g.url, tok2.AccessToken)

	// A request is counted as its handler returns, which may be just after
	// the client has its answer: poll until the counts hold.
	var body string
	var bad []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		body = scrapeMetrics(t, m)
		f := metricstest.Parse(t, body)
		bad = nil
		for _, tc := range []struct {
			step, outcome string
			want          float64
		}{
			{"register", "ok", 2},
			{"authorize", "ok", 3},
			{"consent", "ok", 3},
			{"login", "ok", 2},
			{"login", "refused", 1},
			{"token_authorization_code", "ok", 2},
			{"token_authorization_code", "invalid_grant", 1},
			{"token_other", "unsupported_grant_type", 1},
			{"token_refresh_token", "ok", 1},
			{"revoke", "ok", 1},
		} {
			if got := f.Value("mcpgate_oauth_steps_total", "step", tc.step, "outcome", tc.outcome); got != tc.want {
				bad = append(bad, fmt.Sprintf("oauth_steps{%s,%s} = %v, want %v", tc.step, tc.outcome, got, tc.want))
			}
		}
		for _, tc := range []struct {
			outcome string
			want    float64
		}{{"missing", 1}, {"invalid", 1}, {"malformed", 1}, {"ok", 1}, {"wrong_audience", 1}, {"revoked", 1}, {"expired", 1}} {
			if got := f.Value("mcpgate_token_checks_total", "outcome", tc.outcome); got != tc.want {
				bad = append(bad, fmt.Sprintf("token_checks{%s} = %v, want %v", tc.outcome, got, tc.want))
			}
		}
		if got := f.Value("mcpgate_http_requests_total", "route", "POST /token", "code", "200"); got != 3 {
			bad = append(bad, fmt.Sprintf("requests{POST /token,200} = %v, want 3", got))
		}
		if got := f.Value("mcpgate_http_requests_total", "route", "POST /mcp", "code", "401"); got != 5 {
			bad = append(bad, fmt.Sprintf("requests{POST /mcp,401} = %v, want 5", got))
		}
		if got := f.Value("mcpgate_http_request_duration_seconds", "route", "POST /register"); got != 2 {
			bad = append(bad, fmt.Sprintf("%v registrations timed, want 2", got))
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, b := range bad {
		t.Error(b)
	}
	for _, secret := range []string{c.ClientID, a2.ClientID, tok.AccessToken, tok.RefreshToken, tok2.AccessToken, tok2.RefreshToken,
		code, a.State, a.Verifier, redirectURI, "local:" + testUser, testUser, "not-a-token"} {
		if strings.Contains(body, secret) {
			t.Errorf("the scrape holds %q", secret)
		}
	}
}

// The flow debugger's lost events are in the metrics (SEC-119): a flood
// of junk /authorize steps from one address is recorded up to the
// address's burst, and the rest are counted as limited.
func TestFlowEventsLostInMetrics(t *testing.T) {
	m := mcpgate.NewMetrics()
	g := newGateway(t, withFlows, func(c *mcpgate.Config) { c.Metrics = m })
	for i := range flows.KeyBurst + 30 {
		a := g.newAuth(fmt.Sprintf("junk-%d", i))
		if resp, _ := g.get(a.URL()); resp.StatusCode != 400 {
			t.Fatalf("/authorize of an unknown client: %d, want 400", resp.StatusCode)
		}
	}
	f := metricstest.Parse(t, scrapeMetrics(t, m))
	if got := f.Value("mcpgate_flow_events_limited_total"); got < 30 {
		t.Errorf("mcpgate_flow_events_limited_total = %v, want at least the 30 steps over the burst", got)
	}
	if _, ok := f["mcpgate_flow_events_dropped_total"]; !ok {
		t.Error("mcpgate_flow_events_dropped_total is not exported")
	}
}

// Each backend's failure series are in the first scrape at zero, before any
// request (and the stdio processes' gauge for a stdio server): an alert on
// their rate sees the first failure, and the scrape names every backend.
// The demo server has none.
func TestBackendSeriesFromTheStart(t *testing.T) {
	m := mcpgate.NewMetrics()
	newGateway(t, func(c *mcpgate.Config) {
		c.Metrics = m
		c.Resources = []mcpgate.Resource{
			{Path: "/mcp"},
			{Path: "/api/mcp", Upstream: "http://127.0.0.1:1/mcp"},
			{Path: "/legacy/mcp", Upstream: "http://127.0.0.1:1/sse", UpstreamTransport: "sse"},
			{Path: "/files/mcp", Command: []string{"/bin/cat"}, Stdio: mcpgate.StdioOptions{Dir: t.TempDir(), Isolation: "none"}},
		}
	})
	scrape := scrapeMetrics(t, m)
	for _, want := range []string{
		`mcpgate_backend_errors_total{kind="unavailable",resource="/api/mcp"} 0`,
		`mcpgate_backend_errors_total{kind="timeout",resource="/api/mcp"} 0`,
		`mcpgate_backend_errors_total{kind="unavailable",resource="/legacy/mcp"} 0`,
		`mcpgate_backend_errors_total{kind="send",resource="/legacy/mcp"} 0`,
		`mcpgate_backend_errors_total{kind="exited",resource="/files/mcp"} 0`,
		`mcpgate_backend_errors_total{kind="busy",resource="/files/mcp"} 0`,
		`mcpgate_stdio_processes{resource="/files/mcp"} 0`,
	} {
		if !strings.Contains(scrape, want) {
			t.Errorf("no line %q in the first scrape", want)
		}
	}
	if strings.Contains(scrape, `mcpgate_backend_errors_total{kind="unavailable",resource="/mcp"}`) {
		t.Errorf("the demo server has backend error series:\n%s", scrape)
	}
}
