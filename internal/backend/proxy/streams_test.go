package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// idleBackend answers a GET with the headers of an event stream and then
// nothing until the client leaves, as an MCP server's standalone stream
// with nothing to say.
func idleBackend(t testing.TB) string {
	return backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})).URL
}

// openIdle opens n GET event streams at url, each on a connection of its
// own, and returns once every one has its headers; cancel ends them.
func openIdle(t *testing.T, url string, n int) (cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	tr := &http.Transport{MaxIdleConnsPerHost: -1}
	var wg sync.WaitGroup
	for i := range n {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			stop()
			t.Fatalf("stream %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusOK {
			stop()
			t.Fatalf("stream %d: HTTP %d, want 200", i, resp.StatusCode)
		}
		wg.Go(func() {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	return func() {
		stop()
		wg.Wait()
		tr.CloseIdleConnections()
	}
}

// liveHeap is the heap in use after a full collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// waitGoroutines waits, with a deadline, until at most n goroutines run:
// the streams of a run and their connections are gone.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the streams ended, want at most %d", runtime.NumGoroutine(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// heapPerStream is the live heap each of n idle streams to url adds.
func heapPerStream(t *testing.T, url string, n int) int64 {
	t.Helper()
	g := runtime.NumGoroutine()
	before := liveHeap()
	end := openIdle(t, url, n)
	after := liveHeap()
	end()
	waitGoroutines(t, g)
	return (after - before) / int64(n)
}

// SEC-81: an idle event stream (a GET) through the proxy holds no buffer
// sized for large answers. Its cost to the gateway, the heap it adds
// beyond the same stream straight to the upstream (the gateway's side of
// the client's connection and its connection to the upstream), stays
// under maxIdleStreamHeap, which ReverseProxy's own 32 KiB copy buffer
// alone would reach (64 KB per stream before the streams had buffers of
// their own, 30 KB after).
func TestSEC81_IdleStreamHeap(t *testing.T) {
	const n = 200
	const maxIdleStreamHeap = 32 << 10
	up := idleBackend(t)
	fe := front(t, up, Options{}, alice)
	heapPerStream(t, up, n) // warms the pools of both runs up
	direct := heapPerStream(t, up, n)
	proxied := heapPerStream(t, fe.URL, n)
	t.Logf("live heap per idle stream: %d B direct, %d B through the proxy, the proxy's share %d B", direct, proxied, proxied-direct)
	if got := proxied - direct; got > maxIdleStreamHeap {
		t.Fatalf("an idle stream through the proxy costs the gateway %d B of heap, want at most %d", got, maxIdleStreamHeap)
	}
}

// The idle-stream path still passes each event on as it comes: events of
// every size, the stream idle between them, each read by the client before
// the upstream writes the next; one larger than any copy buffer comes
// whole.
func TestIdleStreamEventsFlushedOneByOne(t *testing.T) {
	bothProtocols(t, testIdleStreamEventsFlushedOneByOne)
}

func testIdleStreamEventsFlushedOneByOne(t *testing.T, up *upstream) {
	events := []string{
		"id: 1\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n",
		"id: 2\ndata: " + strings.Repeat("x", 100<<10) + "\n\n",
		"id: 3\ndata: " + strings.Repeat("y", 3000) + "\n\n",
		"id: 4\ndata: z\n\n",
	}
	next := make(chan struct{})
	be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for _, e := range events {
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, e)
			w.(http.Flusher).Flush()
		}
		<-r.Context().Done()
	}))
	fe := up.front(t, be.URL, Options{Timeout: 50 * time.Millisecond}, alice)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, fe.URL+"/mcp", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i, want := range events {
		next <- struct{}{} // the upstream writes event i now, and then waits
		got, err := readEvent(br)
		if err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
		if got != want {
			t.Fatalf("event %d: %d bytes starting %.40q, want %d bytes starting %.40q", i+1, len(got), got, len(want), want)
		}
	}
}

// readEvent reads one event, up to and with its blank line.
func readEvent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), fmt.Errorf("after %d bytes: %w", b.Len(), err)
		}
		if line == "\n" {
			return b.String(), nil
		}
	}
}

// BenchmarkProxyEventStream is the reason the streams' small buffers cost
// no throughput that matters: a GET event stream whose upstream writes
// events as fast as it can, each flushed (a fast stream), and a GET
// answered with one 4 MiB body (no MCP server does, the worst case for
// small buffers), through the streams' buffers and through the 32 KiB
// pooled ones of the other answers.
func BenchmarkProxyEventStream(b *testing.B) {
	for _, c := range []struct {
		name        string
		event, each int // bytes per event, events per stream
		flush       bool
	}{
		{"events-200B", 200, 5000, true},
		{"events-16KiB", 16 << 10, 256, true},
		{"body-4MiB", 4 << 20, 1, false},
	} {
		event := []byte("data: " + strings.Repeat("x", c.event-8) + "\n\n")
		be := backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for range c.each {
				w.Write(event)
				if c.flush {
					w.(http.Flusher).Flush()
				}
			}
		}))
		for _, small := range []bool{true, false} {
			b.Run(c.name+map[bool]string{true: "/stream-buffers", false: "/large-buffers"}[small], func(b *testing.B) {
				h, err := New(Options{Upstream: mustURL(b, be.URL)})
				if err != nil {
					b.Fatal(err)
				}
				if !small {
					h.(*handler).streams = h.(*handler).rp
				}
				fe := httptest.NewServer(asGuard(h, alice))
				defer fe.Close()
				b.SetBytes(int64(len(event) * c.each))
				for b.Loop() {
					resp, err := http.Get(fe.URL)
					if err != nil {
						b.Fatal(err)
					}
					n, err := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil || n != int64(len(event)*c.each) {
						b.Fatalf("%d bytes, %v; want %d", n, err, len(event)*c.each)
					}
				}
			})
		}
	}
}
