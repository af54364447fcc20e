package bridge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SEC-204: the answers a pool writes to clients that do not read them are
// bounded, by user and in all; past either, the answer is dropped and its
// client gets a JSON-RPC error with its request's id (429 or 503 with
// Retry-After, or an error event on an event stream under way), and a
// written answer gives its bytes back. Fails before: every answer was
// held whole for as long as its client kept the connection, without a
// bound (1.1 GB from 40 connections of one user against the binary).
func TestSEC204_UnreadAnswersBounded(t *testing.T) {
	const size = 8_000_000 // each answer: far more than the sockets take in
	defer func(total, perUser int) { maxAnswersTotal, maxAnswersPerUser = total, perUser }(maxAnswersTotal, maxAnswersPerUser)
	maxAnswersTotal, maxAnswersPerUser = 28_000_000, 20_000_000
	f := newFixture(t, StdioOptions{})
	sids := map[string]string{"alice": f.session(t, "alice"), "bob": f.session(t, "bob")}

	// unread calls the big tool as user on a connection that never reads.
	unread := func(user string, id int) net.Conn {
		c, err := net.Dial("tcp", strings.TrimPrefix(f.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() }) // before the server's Close, which waits for its handlers
		c.(*net.TCPConn).SetReadBuffer(4096)
		body := callBody(id, "big", map[string]any{"text": fmt.Sprint(size)})
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nX-Test-User: %s\r\n%s: %s\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: %d\r\n\r\n%s",
			user, sessionHeader, sids[user], len(body), body)
		return c
	}
	held := func(n int) func() bool {
		return func() bool { h := f.pool.answers.Held(); return h >= n*size && h < n*(size+1000) }
	}
	call := func(user string, id int, hdr map[string]string, body string) (*http.Response, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if body == "" {
			body = callBody(id, "big", map[string]any{"text": fmt.Sprint(size)})
		}
		return f.rpc(t, ctx, user, sids[user], body, hdr)
	}

	a1, a2 := unread("alice", 101), unread("alice", 102)
	waitFor(t, "alice's two unread answers counted", 20*time.Second, held(2))
	resp, body := call("alice", 103, map[string]string{"Accept": "application/json"}, "")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"id":103`) || !strings.Contains(body, `"error"`) {
		t.Errorf("alice past her share: %d %q %.200s; want 429 with Retry-After and a JSON-RPC error with id 103", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	// An answer that follows progress on an event stream, a small one
	// with alice's share all but full: an error event.
	rest := maxAnswersPerUser - f.pool.answers.Held()
	f.pool.answers.Reserve("local:alice", rest)
	progress := `{"jsonrpc":"2.0","id":104,"method":"tools/call","params":{"name":"progress","arguments":{"text":"half"},"_meta":{"progressToken":"p"}}}`
	resp, body = call("alice", 104, nil, progress)
	f.pool.answers.Release("local:alice", rest)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"progressToken":"p"`) || !strings.Contains(body, `"id":104,"error"`) {
		t.Errorf("alice past her share, on an event stream: %d %.300s; want the progress event, then an error event with id 104", resp.StatusCode, body)
	}

	b1 := unread("bob", 201)
	waitFor(t, "bob's unread answer counted", 20*time.Second, held(3))
	resp, body = call("bob", 202, map[string]string{"Accept": "application/json"}, "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"id":202`) || !strings.Contains(body, `"error"`) {
		t.Errorf("bob within his share, past the pool's: %d %.200s; want 503 with a JSON-RPC error with id 202", resp.StatusCode, body)
	}

	for _, c := range []net.Conn{a1, a2, b1} {
		c.Close()
	}
	waitFor(t, "the unread answers given back", 20*time.Second, func() bool { return f.pool.answers.Held() == 0 })
	resp, body = call("alice", 105, map[string]string{"Accept": "application/json"}, "")
	if resp.StatusCode != http.StatusOK || len(body) < size || !strings.Contains(body, `"id":105`) {
		t.Errorf("alice once her answers were given back: %d, %d bytes; want 200 and the whole answer", resp.StatusCode, len(body))
	}
	if n := f.pool.answers.Held(); n != 0 {
		t.Errorf("%d bytes still counted after every answer was written; want 0", n)
	}
}
