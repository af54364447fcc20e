package app

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/config"
)

// countingWriter is stderr: it counts the writes it gets.
type countingWriter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.buf.Write(p)
}

func (c *countingWriter) state() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String(), c.writes
}

// SEC-105: the access lines of many requests reach stderr in far fewer
// writes than lines, each within the bound; what is buffered at exit is
// written before Serve returns.
func TestSEC105_LogsBuffered(t *testing.T) {
	cfg := config.Defaults()
	cfg.Store, cfg.DataDir, cfg.Listen = "memory", t.TempDir(), "127.0.0.1:0"
	stderr := &countingWriter{}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ready := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, &cfg, io.Discard, stderr, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-served:
		t.Fatalf("serve: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	// The start-up lines are written at once, for whoever waits for them.
	if out, _ := stderr.state(); !strings.Contains(out, "msg=listening") {
		t.Errorf("stderr after start: %q, want the listening line", out)
	}
	_, before := stderr.state()
	const n = 100
	for range n {
		get(t, "http://"+addr+"/healthz")
	}
	var out string
	var writes int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out, writes = stderr.state()
		if strings.Count(out, "msg=request") >= n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d access lines in 10 s, want %d", strings.Count(out, "msg=request"), n)
		}
	}
	if w := writes - before; w > n/2 {
		t.Errorf("%d access lines took %d writes, want them buffered (at most %d)", n, w, n/2)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return")
	}
	if out, _ := stderr.state(); !strings.Contains(out, "msg=\"shutting down\"") {
		t.Errorf("stderr after Serve returned lacks the shutdown line: %q", out[max(0, len(out)-500):])
	}
}
