package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/internal/metrics/metricstest"
)

// scrape GETs u and returns the status and body.
func scrape(t *testing.T, u string) (int, string) {
	t.Helper()
	// Bounded: a listener that accepts and never answers fails the test.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The binary with --metrics-listen (SEC-89, SEC-90): after a go-sdk
// client's whole flow and five tool calls (ok, denied by the tool policy,
// a tool error, a tool the backend does not have, one over a rate limit),
// and a refresh over the token endpoint's rate limit, /metrics on the
// metrics listener shows the funnel and the tool counters with the
// values of what happened, and the open event stream while the session
// lasts; the public listener has no /metrics; and nothing in the whole
// scrape names the user, the client or a token.
func TestBinaryMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := mcp.NewServer(&mcp.Implementation{Name: "notes", Version: "1"}, nil)
	type textArg struct {
		Text string `json:"text"`
	}
	for _, name := range []string{"read_notes", "delete_notes", "fail"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(ctx context.Context, req *mcp.CallToolRequest, in textArg) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{IsError: name == "fail", Content: []mcp.Content{&mcp.TextContent{Text: name + " done"}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	// A cleanup, not a defer: it must run after the binary's, which ends
	// the event stream that Close would otherwise wait for.
	t.Cleanup(up.Close)

	dir := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := `local_users: ["bob:` + password + `"]
upstream: ` + up.URL + `/mcp
metrics_listen: ` + metricsAddr + `
tool_policy:
  rules:
    - deny: ["delete_*"]
      users: ["local:bob"]
rate_limits:
  - {tools: ["fail"], per: user, rate: 1/h}
  - {endpoints: [token], per: client, rate: 1/h}
`
	cfgPath := filepath.Join(dir, "mcpgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, freePort(t), "--data-dir", filepath.Join(dir, "data"), "--config", cfgPath)
	metricsURL := "http://" + metricsAddr + "/metrics"

	if code, _ := scrape(t, p.base+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404", code)
	}

	h, _ := oauthClientAs(t, "bob", password)
	client := mcp.NewClient(&mcp.Implementation{Name: "e2e-metrics", Version: "1"}, nil)
	sess, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, p.Stderr())
	}
	if _, err := sess.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "read_notes", Arguments: map[string]any{"text": "x"}}); err != nil || res.IsError {
		t.Fatalf("read_notes: %v %+v", err, res)
	}
	if _, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "delete_notes", Arguments: map[string]any{"text": "x"}}); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("delete_notes: %v, want not allowed", err)
	}
	if res, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{"text": "x"}}); err != nil || !res.IsError {
		t.Fatalf("fail: %v %+v, want a tool error", err, res)
	}
	if _, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "no_such_tool", Arguments: map[string]any{}}); err == nil {
		t.Fatal("no_such_tool: no error")
	}
	if _, err := sess.CallTool(ctx, &mcp.CallToolParams{Name: "fail", Arguments: map[string]any{"text": "x"}}); err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("fail, a second time: %v, want rate limited", err)
	}

	// The counters move as each handler returns, which may be just after
	// the client has its answer: poll.
	poll := func(what string, done func(metricstest.Families) bool) (metricstest.Families, string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			code, body := scrape(t, metricsURL)
			if code != http.StatusOK {
				t.Fatalf("GET %s: %d", metricsURL, code)
			}
			f := metricstest.Parse(t, body)
			if done(f) {
				return f, body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not reached in 20 s; /metrics:\n%s", what, body)
			}
		}
	}
	f, _ := poll("five tool calls and the open event stream", func(f metricstest.Families) bool {
		// Each collector is read in turn, not at one instant: wait for
		// every family the checks below read.
		return f.Value("mcpgate_tool_call_duration_seconds", "resource", "/mcp") == 5 && f.Value("mcpgate_tool_calls_total") == 5 &&
			f.Value("mcpgate_event_streams_open", "resource", "/mcp") == 1 && f.Value("mcpgate_oauth_steps_total", "step", "token_authorization_code") == 1
	})
	for _, tc := range []struct {
		step, outcome string
		want          float64
	}{
		{"register", "ok", 1},
		{"authorize", "ok", 1},
		{"consent", "ok", 1},
		{"login", "ok", 1},
		{"token_authorization_code", "ok", 1},
	} {
		if got := f.Value("mcpgate_oauth_steps_total", "step", tc.step, "outcome", tc.outcome); got != tc.want {
			t.Errorf("oauth_steps{%s,%s} = %v, want %v", tc.step, tc.outcome, got, tc.want)
		}
	}
	for _, tc := range []struct {
		tool, outcome string
		want          float64
	}{
		{"read_notes", "ok", 1},
		{"delete_notes", "denied", 1},
		{"fail", "error", 1},
		{"other", "error", 1},
		{"fail", "rate_limited", 1},
	} {
		if got := f.Value("mcpgate_tool_calls_total", "resource", "/mcp", "tool", tc.tool, "outcome", tc.outcome); got != tc.want {
			t.Errorf("tool_calls{%s,%s} = %v, want %v", tc.tool, tc.outcome, got, tc.want)
		}
	}
	if got := f.Value("mcpgate_token_checks_total", "outcome", "missing"); got < 1 {
		t.Errorf("token_checks{missing} = %v, want the client's first request without a token", got)
	}
	if ok, posts := f.Value("mcpgate_token_checks_total", "outcome", "ok"), f.Value("mcpgate_http_requests_total", "route", "POST /mcp", "code", "200"); ok < posts || posts < 5 {
		t.Errorf("token_checks{ok} = %v, POST /mcp 200 = %v: want at least the 5 requests of the session checked ok", ok, posts)
	}

	ts, err := h.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	// The client's one token request spent the endpoint's bucket: a
	// refresh is answered 429 and counted as rate_limited (SEC-102).
	resp, err := http.PostForm(p.base+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {clientIDOf(t, tok.AccessToken)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("refresh over the token endpoint's limit: %d, Retry-After %q; want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	sess.Close()
	_, body := poll("the event stream ended and the refused refresh counted", func(f metricstest.Families) bool {
		return f.Value("mcpgate_event_streams_open", "resource", "/mcp") == 0 &&
			f.Value("mcpgate_oauth_steps_total", "step", "token_refresh_token", "outcome", "rate_limited") == 1
	})
	for _, secret := range []string{"local:bob", `"bob"`, clientIDOf(t, tok.AccessToken), tok.AccessToken, tok.RefreshToken, callback, password, "no_such_tool"} {
		if secret != "" && strings.Contains(body, secret) {
			t.Errorf("/metrics holds %q", secret)
		}
	}
	p.stop(t)
}
