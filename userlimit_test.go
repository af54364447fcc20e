package mcpgate_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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

// SEC-35 with identity tokens: a session over the cap is ended as its
// opener, and the DELETE's signed identity token names the opener's client
// and scopes as its X-Forwarded-Client-Id does; and a request of the other
// client, after, carries a token of its own client and scopes. Before, the
// DELETE reused the identity token cached under the current request's
// token id (the other client's), or, once that was due for renewal,
// cached the opener's under it: the other client's next requests then
// reached the backend signed as the opener, with the opener's scopes.
func TestSEC35_EndedAsOpenerInItsIdentityToken(t *testing.T) {
	var mu sync.Mutex
	var seen []string // "METHOD header-client|token-client token-scope"
	var opened atomic.Int64
	var slowOpen atomic.Bool
	var g *gw
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var claims struct {
			ClientID string `json:"client_id"`
			Scope    string `json:"scope"`
		}
		if parts := strings.Split(r.Header.Get("X-Mcpgate-Identity"), "."); len(parts) == 3 {
			payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
			json.Unmarshal(payload, &claims)
		}
		mu.Lock()
		seen = append(seen, r.Method+" "+r.Header.Get("X-Forwarded-Client-Id")+"|"+claims.ClientID+" "+claims.Scope)
		mu.Unlock()
		if strings.Contains(string(body), `"initialize"`) {
			if slowOpen.Load() {
				g.clock.Advance(31 * time.Second) // past half of the identity token's life
			}
			w.Header().Set("Mcp-Session-Id", fmt.Sprint("s", opened.Add(1)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	defer up.Close()
	g = newGateway(t, func(c *mcpgateConfig) {
		c.MaxSessionsPerUser = 1
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp", IdentityToken: true, OptionalScopes: []string{"admin"}}}
	})
	opener := g.register(nil)
	a := g.newAuth(opener.ClientID)
	a.Scope = "mcp admin"
	code, _ := g.login(a)
	_, openerTok := g.exchange(a, code)
	other, _, otherTok := g.fullFlow() // scope mcp only
	post := func(tok, sid, body string) string {
		t.Helper()
		req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		}
		resp, answer := g.do(req)
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s: %d %s, want 200", body, resp.StatusCode, answer)
		}
		return resp.Header.Get("Mcp-Session-Id")
	}
	deletes := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			got := strings.Count(strings.Join(seen, "\n"), "DELETE ")
			mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d DELETEs after 10 s, want %d", got, n)
			}
		}
	}
	const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	post(openerTok.AccessToken, "", initialize) // s1, the opener's
	post(otherTok.AccessToken, "", initialize)  // s2 ends s1 as the opener
	deletes(1)
	post(openerTok.AccessToken, "", initialize) // s3 ends s2 as the other
	deletes(2)
	slowOpen.Store(true)
	s4 := post(otherTok.AccessToken, "", initialize) // s4, slowly, ends s3 as the opener
	slowOpen.Store(false)
	deletes(3)
	post(otherTok.AccessToken, s4, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)

	mu.Lock()
	defer mu.Unlock()
	scopes := map[string]string{opener.ClientID: "mcp admin", other.ClientID: "mcp"}
	for _, line := range seen {
		head, signed, _ := strings.Cut(line, "|")
		_, client, _ := strings.Cut(head, " ")
		if want := client + " " + scopes[client]; signed != want {
			t.Errorf("%s: the identity token names %q, want %q (the client the request goes as)", head, signed, want)
		}
	}
	if len(seen) != 8 {
		t.Errorf("the upstream saw %d requests, want 8 (5 POSTs, 3 DELETEs): %q", len(seen), seen)
	}
}
