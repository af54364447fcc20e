package bridge

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

// SEC-137: a stdio server that writes notifications faster than its
// client reads them fills a bounded queue, not the gateway's memory: 40
// notifications of 1 MiB toward a client stream that reads nothing leave
// the gateway holding at most the stream's budget (16 MiB) and the one
// message being written. Fails before this change: the stream's 64
// places held all 40 MiB.
func TestSEC137_ServerFloodBoundedPerStream(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	sid := f.session(t, "alice")
	// A client stream that reads nothing.
	u, _ := url.Parse(f.srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nX-Test-User: alice\r\n%s: %s\r\n\r\n", u.Host, sessionHeader, sid)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET stream: %v %v", resp, err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if r, body := f.rpc(t, ctx, "alice", sid, callBody(2, "flood", map[string]any{"text": "40"}), nil); r.StatusCode != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("flood: %d %s", r.StatusCode, body)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 24<<20 {
		t.Errorf("the gateway holds %d MiB more after 40 MiB of notifications toward a stream that reads nothing, want at most the stream's 16 MiB and the message being written", grew>>20)
	}
}

// SEC-137: a progress notification is a number and a short message: one
// over maxProgress is dropped, and the call still gets its answer.
func TestSEC137_LargeProgressDropped(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	sid := f.session(t, "alice")
	for n, want := range map[int]bool{100: true, maxProgress + 1: false} {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"progress","arguments":{"text":"%d"},"_meta":{"progressToken":"tok-1"}}}`, n)
		_, out := f.rpc(t, context.Background(), "alice", sid, body, nil)
		if got := strings.Contains(out, `"progressToken":"tok-1"`); got != want || !strings.Contains(out, `"text":"done"`) {
			t.Errorf("progress with a message of %d bytes: relayed %v, want %v, and the answer:\n%.300s", n, got, want, out)
		}
	}
}
