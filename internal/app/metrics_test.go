package app

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/config"
)

// freeAddr is a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func get(t *testing.T, u string) (int, string) {
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

// SEC-89: with metrics_listen, /metrics is served on that listener and
// never on the public one (404 there); the metrics listener stops with
// serve.
func TestSEC89_MetricsOnTheirOwnListener(t *testing.T) {
	cfg := config.Defaults()
	cfg.Store, cfg.DataDir, cfg.Listen = "memory", t.TempDir(), "127.0.0.1:0"
	cfg.MetricsListen = freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, &cfg, io.Discard, io.Discard, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	if code, _ := get(t, "http://"+addr+"/metrics"); code != http.StatusNotFound {
		t.Errorf("GET /metrics on the public listener: %d, want 404", code)
	}
	// The public listener's 404 is counted, under no path, as its handler
	// returns, which may be just after the client has the answer.
	counted := `mcpgate_http_requests_total{code="404",route="unmatched"} 1`
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var code int
		if code, body = get(t, "http://"+cfg.MetricsListen+"/metrics"); code != http.StatusOK {
			t.Fatalf("GET /metrics on the metrics listener: %d", code)
		}
		if strings.Contains(body, counted) || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{counted, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("the scrape lacks %s:\n%s", want, body)
		}
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if c, err := net.DialTimeout("tcp", cfg.MetricsListen, 5*time.Second); err == nil {
		c.Close()
		t.Error("the metrics listener is still open after serve returned")
	}
}

// SEC-206: the metrics listener holds few connections from one address
// (and few in all): connections held idle there cannot take the
// descriptors the public listener needs. Fails before: all 12 were
// answered and held.
func TestSEC206_MetricsListenerConnectionsCapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveMetrics(ln, mcpgate.NewMetrics(), slog.New(slog.DiscardHandler))
	defer stop()
	const tries = 12
	answered := 0
	for range tries {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		// An answer, or the connection closed at the cap: held open, it keeps its descriptor.
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
			answered++
		}
	}
	if answered != metricsMaxPerAddress {
		t.Errorf("%d of %d connections from one address answered and held; want %d", answered, tries, metricsMaxPerAddress)
	}
}
