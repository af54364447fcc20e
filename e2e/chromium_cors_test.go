package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/cdp"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// tokenCatcher keeps the access token the go-sdk client's OAuth handler
// sends.
type tokenCatcher struct {
	mu    sync.Mutex
	token string
}

func (c *tokenCatcher) RoundTrip(r *http.Request) (*http.Response, error) {
	if a, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		c.mu.Lock()
		c.token = a
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// seenAtMCP records the method and Origin of each request to /mcp.
type seenAtMCP struct {
	mu   sync.Mutex
	reqs []string // "METHOD origin status"
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(s int) { w.status = s; w.ResponseWriter.WriteHeader(s) }
func (w *statusWriter) Flush()            { _ = http.NewResponseController(w.ResponseWriter).Flush() }

func (s *seenAtMCP) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mcp" {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: 200}
		h.ServeHTTP(sw, r)
		s.mu.Lock()
		s.reqs = append(s.reqs, fmt.Sprintf("%s %s %d", r.Method, r.Header.Get("Origin"), sw.status))
		s.mu.Unlock()
	})
}

func (s *seenAtMCP) from(origin string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.reqs {
		if strings.Contains(r, " "+origin+" ") {
			out = append(out, r)
		}
	}
	return out
}

// SEC-34, TRANS-1: a web page calls /mcp with fetch() from a real
// Chromium. On an allowed origin (allowed_origins), the preflight grants
// the transport's headers, an Mcp-Param-* among them, and the page reads
// the answer and its Mcp-Session-Id; on another origin the browser is
// stopped at the preflight and the request itself is never sent.
func TestChromiumMCPFromBrowserPage(t *testing.T) {
	path := chromiumPath(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>MCP web client</title>`)
	}))
	defer page.Close()
	_, port, _ := net.SplitHostPort(page.Listener.Addr().String())
	app, evil := "http://app.test:"+port, "http://evil.test:"+port

	srv := startGateway(t, ctx, mcpgate.Config{Store: memory.New(), AllowedOrigins: []string{app}})
	seen := &seenAtMCP{}
	gw := httptest.NewServer(seen.wrap(srv.Config.Handler))
	defer gw.Close()

	h, _ := oauthClient(t)
	tc := &tokenCatcher{}
	sess, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: gw.URL + "/mcp", OAuthHandler: h, HTTPClient: &http.Client{Transport: tc}}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	sess.Close()
	tc.mu.Lock()
	token := tc.token
	tc.mu.Unlock()

	b, err := cdp.LaunchWith(ctx, path, "--host-resolver-rules=MAP app.test 127.0.0.1, MAP evil.test 127.0.0.1")
	if err != nil {
		t.Fatalf("launching Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("closing Chromium: %v", err)
		}
	})
	call := fmt.Sprintf(`fetch(%q, {method: "POST", headers: {
		"Authorization": "Bearer " + %q, "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		"Mcp-Protocol-Version": "2025-06-18", "Mcp-Param-Region": "eu"},
		body: JSON.stringify({jsonrpc: "2.0", id: 1, method: "initialize", params: {protocolVersion: "2025-06-18", capabilities: {}, clientInfo: {name: "page", version: "1"}}})})
	.then(async r => ({status: r.status, session: r.headers.get("Mcp-Session-Id") || "", body: await r.text()}), e => ({error: String(e)}))`,
		gw.URL+"/mcp", token)
	type outcome struct {
		Status  int
		Session string
		Body    string
		Error   string
	}

	if err := b.Navigate(ctx, app+"/"); err != nil {
		t.Fatal(err)
	}
	var ok outcome
	if err := b.Eval(ctx, call, &ok); err != nil {
		t.Fatal(err)
	}
	if ok.Error != "" || ok.Status != 200 || ok.Session == "" || !strings.Contains(ok.Body, "protocolVersion") {
		t.Fatalf("from the allowed origin %s: %+v; want 200, the initialize result and the Mcp-Session-Id readable\n%v", app, ok, seen.from(app))
	}
	if got := seen.from(app); len(got) != 2 || got[0] != "OPTIONS "+app+" 204" || got[1] != "POST "+app+" 200" {
		t.Errorf("at /mcp from %s: %q, want a granted preflight then the POST", app, got)
	}

	if err := b.Navigate(ctx, evil+"/"); err != nil {
		t.Fatal(err)
	}
	var blocked outcome
	if err := b.Eval(ctx, call, &blocked); err != nil {
		t.Fatal(err)
	}
	if blocked.Error == "" || blocked.Status != 0 {
		t.Fatalf("from the refused origin %s: %+v; want fetch to fail", evil, blocked)
	}
	if got := seen.from(evil); len(got) != 1 || got[0] != "OPTIONS "+evil+" 403" {
		t.Errorf("at /mcp from %s: %q, want only the refused preflight (the request never sent)", evil, got)
	}
}
