package bridge

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/userlimit"
)

// newFrontedFixture is newFixture with the stdio bridge behind what the
// gateway puts in front of every backend: the policy middleware (with its
// method and session-header checks) and the per-user caps of limits.
func newFrontedFixture(t *testing.T, limits userlimit.Options) *fixture {
	t.Helper()
	f := &fixture{logs: &syncBuffer{}, dir: t.TempDir()}
	pool, err := NewStdio(StdioOptions{Command: []string{os.Args[0]}, Env: []string{fakeEnv + "=server"}, Dir: f.dir, Resource: "/mcp", Logger: f.logger()})
	if err != nil {
		t.Fatal(err)
	}
	f.pool = pool
	h := policy.Wrap(userlimit.Wrap(pool, limits), policy.Options{Resource: "/mcp"})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := users[r.Header.Get("X-Test-User")]; c != nil {
			r = r.WithContext(identity.WithCaller(r.Context(), c))
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pool.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// SEC-32 at the stdio bridge: two Mcp-Session-Id values never reach it,
// whichever comes first.
func TestBridgeTwoSessionIDsRefused(t *testing.T) {
	f := newFrontedFixture(t, userlimit.Options{})
	sid := f.session(t, "alice")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, f.srv.URL, nil)
	req.Header.Set("X-Test-User", "alice")
	req.Header.Add(sessionHeader, sid)
	req.Header.Add(sessionHeader, "another")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("DELETE with two session ids: %d, want 400", resp.StatusCode)
	}
	if r, b := f.rpc(t, t.Context(), "alice", sid, `{"jsonrpc":"2.0","id":2,"method":"ping"}`, nil); r.StatusCode != 200 {
		t.Fatalf("the session after the refused DELETE: %d %s, want it alive (200)", r.StatusCode, b)
	}
}

// SEC-35 at the stdio bridge: a session over the user's cap ends the least
// recently used one, its event stream with it.
func TestBridgeSessionOverCapEndsOldest(t *testing.T) {
	f := newFrontedFixture(t, userlimit.Options{MaxSessions: 2})
	first := f.session(t, "alice")
	stream := f.openStream(t, "alice", first)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
		}
	}()
	bobs := f.session(t, "bob")
	f.session(t, "alice")
	f.session(t, "alice")
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of alice's oldest session still open 10s after her third session, want it ended")
	}
	ping := `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	if r, _ := f.rpc(t, t.Context(), "alice", first, ping, nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("alice's oldest session: %d, want 404 (ended)", r.StatusCode)
	}
	if r, _ := f.rpc(t, t.Context(), "bob", bobs, ping, nil); r.StatusCode != 200 {
		t.Errorf("bob's session: %d, want 200: alice's sessions never end his", r.StatusCode)
	}
}

// SEC-35 at the stdio bridge: an initialize that names a session is
// refused (400) rather than served as a new session the per-user cap
// would not count; one without is served. Fails before this change: ten
// initializes with a made-up id gave alice ten live sessions, cap 2.
func TestSEC35_BridgeInitializeWithSessionRefused(t *testing.T) {
	f := newFrontedFixture(t, userlimit.Options{MaxSessions: 2})
	for range 3 {
		resp, body := f.rpc(t, t.Context(), "alice", "made-up", initBody, nil)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get(sessionHeader) != "" || !strings.Contains(body, "without Mcp-Session-Id") {
			t.Fatalf("initialize naming a session: %d %q %s, want 400 and no session", resp.StatusCode, resp.Header.Get(sessionHeader), body)
		}
	}
	f.session(t, "alice") // without one, a session opens
}
