package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend is an upstream that answers a GET with a short event
// stream and anything else with JSON, and counts its open connections.
func countingBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var open atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: {}\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	return be, &open
}

// waitOpen polls, with a deadline far below the transports' 90 s
// IdleConnTimeout, until the upstream has want connections open.
func waitOpen(open *atomic.Int64, want int64) bool {
	deadline := time.Now().Add(10 * time.Second)
	for open.Load() != want {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// SEC-81: the event streams' transport has connections of its own, and the
// proxy closes them with the other answers': after CloseIdleConnections no
// connection to the upstream stays open, where each pool kept its idle
// connection for IdleConnTimeout.
func TestSEC81_CloseIdleConnectionsOfBothTransports(t *testing.T) {
	be, open := countingBackend(t)
	h, err := New(Options{Upstream: mustURL(t, be.URL)})
	if err != nil {
		t.Fatal(err)
	}
	fe := httptest.NewServer(asGuard(h, alice))
	t.Cleanup(fe.Close)
	for _, m := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(m, fe.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: HTTP %d, want 200", m, resp.StatusCode)
		}
	}
	if !waitOpen(open, 2) {
		t.Fatalf("after a POST and a GET: %d connections to the upstream, want 2 (one per transport)", open.Load())
	}
	c, ok := h.(interface{ CloseIdleConnections() })
	if !ok {
		t.Fatalf("%T has no CloseIdleConnections: its transports' idle connections stay open until they time out", h)
	}
	c.CloseIdleConnections()
	if !waitOpen(open, 0) {
		t.Fatalf("10 s after CloseIdleConnections: %d connections to the upstream still open, want 0", open.Load())
	}
}
