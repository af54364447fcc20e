package mcpgate_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
)

// SEC-81: Gateway.Close leaves no idle connection to a proxied upstream
// open, neither the answers' nor the event streams', whose transport has
// a pool of its own: without it each stays open for the transport's 90 s
// IdleConnTimeout after the gateway closed.
func TestSEC81_CloseEndsUpstreamConnections(t *testing.T) {
	var open atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	up.Start()
	defer up.Close()
	g := newGateway(t, func(c *mcpgate.Config) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: up.URL + "/mcp"}}
	})
	_, _, tok := g.fullFlow()
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		var body io.Reader
		if m == http.MethodPost {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		}
		req, _ := http.NewRequest(m, g.url+"/mcp", body)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if resp, body := g.do(req); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s through the gateway: HTTP %d, want 200:\n%s", m, resp.StatusCode, body)
		}
	}
	// One connection per transport, idle now; polled with deadlines far
	// below the 90 s they would otherwise stay.
	waitOpen := func(want int64) bool {
		deadline := time.Now().Add(10 * time.Second)
		for open.Load() != want {
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		return true
	}
	if !waitOpen(2) {
		t.Fatalf("after a POST and a GET: %d connections to the upstream, want 2", open.Load())
	}
	if err := g.gw.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !waitOpen(0) {
		t.Fatalf("10 s after Gateway.Close: %d connections to the upstream still open, want 0", open.Load())
	}
}
