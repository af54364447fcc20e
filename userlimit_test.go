package mcpgate_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// SEC-35: one user opening session after session at the embedded server
// and at a proxied upstream keeps at most MaxSessionsPerUser: each one
// more ends the least recently used, which the backend is told with a
// DELETE (a proxied upstream frees it too).
func TestSEC35_SessionsPerUserCapped(t *testing.T) {
	var mu sync.Mutex
	var deleted []string
	server := mcp.NewServer(&mcp.Implementation{Name: "up", Version: "1"}, nil)
	sdk := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, nil)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			mu.Lock()
			deleted = append(deleted, r.Header.Get("Mcp-Session-Id")+" "+r.Header.Get("X-Forwarded-User"))
			mu.Unlock()
		}
		sdk.ServeHTTP(w, r)
	}))
	defer up.Close()
	g := newGateway(t, func(c *mcpgateConfig) {
		c.MaxSessionsPerUser = 2
		c.Resources = []mcpgate.Resource{{Path: "/mcp"}, {Path: "/up/mcp", Upstream: up.URL + "/mcp"}}
	})
	c := g.register(nil)
	for _, path := range []string{"/mcp", "/up/mcp"} {
		t.Run(path, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			a.Resource = g.url + path
			code, _ := g.login(a)
			resp, tok := g.exchange(a, code)
			if resp.StatusCode != 200 {
				t.Fatalf("token for %s: %d, want 200", path, resp.StatusCode)
			}
			post := func(sid, body string) *http.Response {
				req, _ := http.NewRequest("POST", g.url+path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
				if sid != "" {
					req.Header.Set("Mcp-Session-Id", sid)
					req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
				}
				resp, _ := g.do(req)
				return resp
			}
			var ids []string
			for i := range 3 {
				resp := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
				if resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") == "" {
					t.Fatalf("initialize %d: %d, want 200 with a session", i, resp.StatusCode)
				}
				ids = append(ids, resp.Header.Get("Mcp-Session-Id"))
			}
			ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
			for deadline := time.Now().Add(10 * time.Second); post(ids[0], ping).StatusCode != http.StatusNotFound; {
				if time.Now().After(deadline) {
					t.Fatal("the first session still answers 10s after a third opened with a cap of 2, want it ended (404)")
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, id := range ids[1:] {
				if s := post(id, ping).StatusCode; s != 200 {
					t.Errorf("a recent session: %d, want 200", s)
				}
			}
			if path == "/up/mcp" {
				mu.Lock()
				defer mu.Unlock()
				if len(deleted) != 1 || deleted[0] != ids[0]+" local:"+testUser {
					t.Errorf("the upstream got DELETEs %q, want one for the first session, as its user", deleted)
				}
			}
		})
	}
}

// SEC-32 at the embedded server: a request with two Mcp-Session-Id values
// is refused before the go-sdk, which would read the first.
func TestSEC32_TwoSessionIDsAtEmbeddedServer(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow()
	sid := g.mcpSession(tok.AccessToken)
	req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	req.Header.Add("Mcp-Session-Id", sid)
	req.Header.Add("Mcp-Session-Id", "another")
	if resp, body := g.do(req); resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "more than one Mcp-Session-Id") {
		t.Fatalf("two session ids: %d %s, want 400 saying so", resp.StatusCode, body)
	}
}

// SEC-36 at the embedded server: with one event stream per user, a second
// session's stream is refused with 429 while the first is open, and
// allowed once it closes.
func TestSEC36_StreamsPerUserCapped(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.MaxStreamsPerUser = 1 })
	_, _, tok := g.fullFlow()
	session := func() string {
		resp, _ := g.mcpInitialize(g.url, tok.AccessToken)
		if resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") == "" {
			t.Fatalf("initialize: %d, want 200 with a session", resp.StatusCode)
		}
		return resp.Header.Get("Mcp-Session-Id")
	}
	stream := func(ctx context.Context, sid string) *http.Response {
		req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/mcp", nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	a, b := session(), session()
	ctx, cancel := context.WithCancel(t.Context())
	first := stream(ctx, a)
	if first.StatusCode != 200 {
		t.Fatalf("the first stream: %d, want 200", first.StatusCode)
	}
	second := stream(t.Context(), b)
	second.Body.Close()
	if second.StatusCode != http.StatusTooManyRequests || second.Header.Get("Retry-After") == "" {
		t.Fatalf("a second stream: %d, Retry-After %q; want 429 with Retry-After", second.StatusCode, second.Header.Get("Retry-After"))
	}
	cancel()
	first.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ctx, cancel := context.WithCancel(t.Context())
		resp := stream(ctx, b)
		status := resp.StatusCode
		cancel()
		resp.Body.Close()
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a stream 10s after the first closed: %d, want 200", status)
		}
	}
}
