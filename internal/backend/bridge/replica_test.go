package bridge

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
)

// A stdio server, or a legacy SSE connection, lives in the replica of the
// gateway that opened it, two Pools here: a session opened through one and
// presented to the other is refused by every method with 404 and a
// JSON-RPC error that says it belongs to another replica (SESS-3: never
// served there), and the other replica starts no server and opens no
// connection for it, neither then nor for its user. The session goes on
// through its own replica; an id no replica made gets the plain answer.
func TestSessionOfAnotherReplica(t *testing.T) {
	t.Run("stdio", func(t *testing.T) {
		a, b := newFixture(t, StdioOptions{}), newFixture(t, StdioOptions{})
		testSessionOfAnotherReplica(t, a, b, func() int {
			entries, _ := os.ReadDir(b.dir) // a user's directory is made when their server starts
			return len(entries)
		})
	})
	t.Run("sse", func(t *testing.T) {
		up := newLegacyUpstream(t)
		a, b := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{}), newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
		testSessionOfAnotherReplica(t, a, b, up.getCount)
	})
}

// testSessionOfAnotherReplica runs on two replicas' fixtures; opened
// counts the servers or connections that exist, which b must not add to.
func testSessionOfAnotherReplica(t *testing.T, a, b *fixture, opened func() int) {
	ctx := context.Background()
	sid := a.session(t, "alice")
	before := opened()
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`

	refused := func(what string, resp *http.Response, body string) {
		t.Helper()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, `"code":-32001`) || !strings.Contains(body, "another replica") {
			t.Errorf("%s on the other replica: %d %s; want 404, -32001, saying the session belongs to another replica", what, resp.StatusCode, body)
		}
	}
	for _, who := range []string{"alice", "bob"} {
		resp, body := b.rpc(t, ctx, who, sid, list, nil)
		refused(who+": tools/list", resp, body)
		resp, body = b.rpc(t, ctx, who, sid, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`, nil)
		refused(who+": a notification", resp, body)
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequestWithContext(ctx, method, b.srv.URL, nil)
		req.Header.Set("X-Test-User", "alice")
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set(sessionHeader, sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		resp.Body.Close()
		refused(method, resp, string(buf[:n]))
	}
	if !strings.Contains(b.logs.String(), "another replica") {
		t.Errorf("the other replica's log does not say why: %s", b.logs.String())
	}
	b.pool.mu.Lock()
	links := len(b.pool.links)
	b.pool.mu.Unlock()
	if now := opened(); links != 0 || now != before {
		t.Errorf("the other replica holds %d links and opened %d servers or connections; want none", links, now-before)
	}

	if resp, body := a.rpc(t, ctx, "alice", sid, list, nil); resp.StatusCode != 200 || !strings.Contains(body, `"echo"`) {
		t.Fatalf("the session on its own replica: %d %s; want 200 and the tools", resp.StatusCode, body)
	}
	if resp, body := b.rpc(t, ctx, "alice", "no-such-session", list, nil); resp.StatusCode != 404 || strings.Contains(body, "replica") {
		t.Errorf("an id no replica made: %d %s; want 404, not about replicas", resp.StatusCode, body)
	}
}
