package mcpgate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/store/memory"
)

// auditLog keeps every audit event.
type auditLog struct {
	mu sync.Mutex
	ev []audit.Event
}

func (a *auditLog) Record(_ context.Context, e audit.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.ev = append(a.ev, e)
}

func (a *auditLog) events() []audit.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.ev)
}

// A tools/call over a rate limit per user is answered by the gateway with
// a JSON-RPC error carrying the request's id, never reaches the upstream,
// is audited as rate_limited, and leaves another user's calls and other
// tools alone (SEC-101).
func TestSEC101_ToolCallRateLimited(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	reached := map[string]int{}
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	for _, name := range []string{"search_web", "read"} {
		mcp.AddTool(server, &mcp.Tool{Name: name}, func(_ context.Context, _ *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
			mu.Lock()
			reached[name]++
			mu.Unlock()
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "ok"}}}, nil, nil
		})
	}
	up := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil))
	t.Cleanup(up.Close)
	events := &auditLog{}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
		c.Audit = events
		c.RateLimits = []mcpgate.RateLimit{{Tools: []string{"search_*"}, Per: "user", Rate: mcpgate.Rate{N: 2, Per: time.Hour}}}
	})
	if err := g.local.SetUser(ctx, "bob", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	token := func(user string) string {
		a := g.newAuth(c.ClientID)
		code, _, _, err := browser.New(user, testPassword).Authorize(ctx, a.URL(), a.Redirect)
		if err != nil {
			t.Fatalf("%s: authorize: %v", user, err)
		}
		resp, tok := g.exchange(a, code)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: token: %d", user, resp.StatusCode)
		}
		return tok.AccessToken
	}
	connect := func(tok string) *mcp.ClientSession {
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
			Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(tok)},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	aliceTok := token(testUser)
	alice, bob := connect(aliceTok), connect(token("bob"))
	call := func(cs *mcp.ClientSession, tool string) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool})
		if err == nil && res.IsError {
			t.Fatalf("%s: a tool error, want a result or a JSON-RPC error", tool)
		}
		return err
	}
	for i := range 2 {
		if err := call(alice, "search_web"); err != nil {
			t.Fatalf("alice's call %d within the rate: %v", i, err)
		}
	}
	if err := call(alice, "search_web"); err == nil || !strings.Contains(err.Error(), "rate limited: search_web; try again in 1800 s") {
		t.Fatalf("alice's third call: %v; want the gateway's rate limited error", err)
	}
	if err := call(alice, "read"); err != nil {
		t.Errorf("alice's call of a tool no rule names: %v", err)
	}
	if err := call(bob, "search_web"); err != nil {
		t.Errorf("bob was limited by alice's calls: %v", err)
	}

	// The answer, as sent: the request's id, the code, and Retry-After.
	req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":"call-77","method":"tools/call","params":{"name":"search_docs"}}`))
	req.Header.Set("Authorization", "Bearer "+aliceTok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, body := g.do(req)
	var answer struct {
		ID    string `json:"id"`
		Error struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || resp.StatusCode != 200 || answer.ID != "call-77" || answer.Error.Code != -32029 || resp.Header.Get("Retry-After") != "1800" {
		t.Errorf("limited call: %d Retry-After %q %s (%v); want 200, Retry-After 1800, id call-77 and code -32029",
			resp.StatusCode, resp.Header.Get("Retry-After"), body, err)
	}

	mu.Lock()
	if reached["search_web"] != 3 || reached["search_docs"] != 0 || reached["read"] != 1 {
		t.Errorf("calls that reached the upstream: %v; want search_web 3 (alice 2, bob 1), read 1, nothing limited", reached)
	}
	mu.Unlock()
	var limited []string
	for _, e := range events.events() {
		if e.Outcome == audit.RateLimited {
			limited = append(limited, e.User+" "+e.Client+" "+e.Tool)
		}
	}
	if want := []string{"local:alice " + c.ClientID + " search_web", "local:alice " + c.ClientID + " search_docs"}; !slices.Equal(limited, want) {
		t.Errorf("rate_limited audit events %q, want %q", limited, want)
	}
}

// A client over its rate at /token gets 429 with Retry-After (whole
// seconds, rounded up) and a JSON OAuth error, not stored; another client
// is served (SEC-102).
func TestSEC102_TokenRateLimited(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.RateLimits = []mcpgate.RateLimit{{Endpoints: []string{"token"}, Per: "client", Rate: mcpgate.Rate{N: 1, Per: time.Minute}}}
	})
	c, _, tok := g.fullFlow()
	g.clock.Advance(59*time.Second + 500*time.Millisecond)
	resp, body := g.postForm(g.url+"/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {c.ClientID}})
	var oerr struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.Unmarshal(body, &oerr); err != nil || resp.StatusCode != http.StatusTooManyRequests || oerr.Error != "temporarily_unavailable" ||
		resp.Header.Get("Retry-After") != "1" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("second token request within the minute: %d Retry-After %q Cache-Control %q %s; want 429, Retry-After 1, no-store, temporarily_unavailable",
			resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Control"), body)
	}
	// Another client has its own bucket.
	g.fullFlow()
	// The refused request spent nothing: the refresh token still works
	// once the bucket has refilled.
	g.clock.Advance(time.Second)
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Errorf("refresh after the wait: %d, want 200", resp.StatusCode)
	}
}

// SEC-186: a public client's id is all anyone needs to name it, so its
// endpoint budget is per client address: junk /token requests naming it
// from one address spend that address's tokens, not those of the
// person signing in from another. Fails before: the person's exchange
// after five junk requests got 429.
func TestSEC186_PublicClientBudgetPerAddress(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.RateLimits = []mcpgate.RateLimit{{Endpoints: []string{"token"}, Per: "client", Rate: mcpgate.Rate{N: 5, Per: time.Minute}}}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	c := g.register(nil) // public: token_endpoint_auth_method none
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	junk := func() int {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"junk"}, "client_id": {c.ClientID}}
		req, _ := http.NewRequest(http.MethodPost, g.url+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 5 {
		if s := junk(); s != http.StatusBadRequest {
			t.Fatalf("junk request %d: %d, want 400", i, s)
		}
	}
	if s := junk(); s != http.StatusTooManyRequests {
		t.Errorf("the sixth junk request from the same address: %d, want 429", s)
	}
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 {
		t.Errorf("the person's exchange from another address after the junk: %d %+v, want 200", resp.StatusCode, tok)
	}
}

// /authorize counts a client once its redirect URI is verified: over the
// rate it gets 429 with Retry-After and a JSON OAuth error (SEC-102).
func TestSEC102_AuthorizeRateLimited(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.RateLimits = []mcpgate.RateLimit{{Endpoints: []string{"authorize"}, Per: "client", Rate: mcpgate.Rate{N: 1, Per: time.Hour}}}
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	if resp, body := g.get(a.URL()); resp.StatusCode != 200 {
		t.Fatalf("first /authorize: %d %s, want the consent page", resp.StatusCode, body)
	}
	resp, body := g.get(a.URL())
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3600" || !strings.Contains(string(body), `"error":"temporarily_unavailable"`) {
		t.Errorf("second /authorize: %d Retry-After %q %s; want 429, 3600, temporarily_unavailable", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// An unknown client makes no bucket and is told it is unknown.
	b := g.newAuth("no-such-client")
	if resp, _ := g.get(b.URL()); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown client: %d, want 400", resp.StatusCode)
	}
}

// An invalid rate limit stops New with the rule's index.
func TestSEC100_InvalidRateLimitRefused(t *testing.T) {
	cfg := mcpgate.Config{Store: memory.New(), SecretKey: bytes.Repeat([]byte{7}, 32), RateLimits: []mcpgate.RateLimit{
		{Tools: []string{"*"}, Per: "user", Rate: mcpgate.Rate{N: 1, Per: time.Second}},
		{Endpoints: []string{"token"}, Per: "user", Rate: mcpgate.Rate{N: 1, Per: time.Second}},
	}}
	_, err := mcpgate.New(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "rate_limits[1]: an endpoint rule counts clients") {
		t.Errorf("New: %v, want rate_limits[1] refused", err)
	}
}
