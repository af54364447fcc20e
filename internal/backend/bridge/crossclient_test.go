package bridge

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/identity"
)

func init() {
	alice := users["alice"]
	// Another client alice approved, and alice after an administrator took
	// her out of ops (a refresh that re-read her groups).
	users["alice-app2"] = &identity.Caller{User: alice.User, ClientID: "app2"}
	demoted := alice.User
	demoted.Groups = []string{"dev"}
	users["alice-demoted"] = &identity.Caller{User: demoted, ClientID: alice.ClientID}
	for i := range perUserLinks + 1 {
		users[fmt.Sprintf("alice-k%d", i)] = &identity.Caller{User: alice.User, ClientID: fmt.Sprintf("k%d", i)}
	}
}

// SEC-153: what a user's server asks of its client (roots here; sampling
// and elicitation alike) goes to that client only. Another client of the
// same user, with a stream of its own opened last, neither sees the
// request nor answers it.
func TestSEC153_ServerRequestsStayWithTheirClient(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	legit := mcp.NewClient(&mcp.Implementation{Name: "legit", Version: "1"}, nil)
	legit.AddRoots(&mcp.Root{URI: "file:///legit"})
	cs := f.connect(t, "alice", "2025-11-25", legit)
	waitFor(t, "the legit client's stream", 10*time.Second, func() bool {
		r, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "roots"})
		return err == nil && !r.IsError
	})

	sid := f.session(t, "alice-app2")
	resp := f.openStream(t, "alice-app2", sid)
	asked := make(chan string, 8)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			d, ok := strings.CutPrefix(sc.Text(), "data: ")
			var m struct {
				ID     json.RawMessage
				Method string
			}
			if ok && json.Unmarshal([]byte(d), &m) == nil && m.Method != "" {
				asked <- m.Method
				if m.Method == "roots/list" {
					f.rpc(t, context.Background(), "alice-app2", sid, `{"jsonrpc":"2.0","id":`+string(m.ID)+`,"result":{"roots":[{"uri":"file:///attacker"}]}}`, nil)
				}
			}
		}
	}()
	waitFor(t, "the other client's stream to be open", 5*time.Second, func() bool {
		f.pool.mu.Lock()
		defer f.pool.mu.Unlock()
		s := f.pool.sessions[sid]
		return s != nil && s.st != nil
	})

	if got := callText(t, cs, "roots", nil); got != "file:///legit" {
		t.Errorf("the legit client's tool got roots %q, want its own file:///legit", got)
	}
	select {
	case m := <-asked:
		t.Errorf("the other client's stream carried the server's %s", m)
	case <-time.After(200 * time.Millisecond):
	}
	if a, b := envOf(t, cs).PID, envOf(t, f.connect(t, "alice-app2", "2025-11-25", nil)).PID; a == b {
		t.Errorf("two clients of one user share the server (pid %d)", a)
	}
}

// SEC-153: a client's answer is taken only for a request the server sent
// to that session's stream; any other is dropped, never handed to the
// server as an answer it may take for one of its own.
func TestSEC153_UnaskedResponseDropped(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	sid := f.session(t, "alice")
	resp, body := f.rpc(t, context.Background(), "alice", sid, `{"jsonrpc":"2.0","id":1,"result":{"roots":[{"uri":"file:///forged"}]}}`, nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("a response: %d %s, want 202", resp.StatusCode, body)
	}
	if !strings.Contains(f.logs.String(), "client response dropped") {
		t.Errorf("an answer to no request of the server was not dropped:\n%s", f.logs)
	}
}

// SEC-153: a stdio server is told its user's identity when it starts; a
// user whose groups changed gets a server told the new ones, not the one
// started with the old.
func TestSEC153_ChangedIdentityGetsItsOwnServer(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	if got := envOf(t, f.connect(t, "alice", "2025-11-25", nil)).Groups; got != "dev,ops" {
		t.Fatalf("groups %q, want dev,ops", got)
	}
	if got := envOf(t, f.connect(t, "alice-demoted", "2025-11-25", nil)).Groups; got != "dev" {
		t.Errorf("after the change: groups %q, want dev (the server started for the old groups answered)", got)
	}
}

// SEC-153: one user holds at most perUserLinks servers, one per client:
// a further client's replaces the user's least recently used idle one,
// never another user's.
func TestSEC153_ServersPerUserBounded(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	f.session(t, "bob")
	for i := range perUserLinks + 1 {
		f.session(t, fmt.Sprintf("alice-k%d", i))
	}
	waitFor(t, "the evicted server gone", 10*time.Second, func() bool {
		f.pool.mu.Lock()
		defer f.pool.mu.Unlock()
		alices := 0
		for _, l := range f.pool.links {
			if l.user == "local:alice" {
				alices++
			}
		}
		return alices == perUserLinks
	})
	if f.pool.current(users["bob"]) == nil {
		t.Error("bob's server was evicted for alice's clients")
	}
	if f.pool.current(users["alice-k0"]) != nil {
		t.Error("alice's least recently used server is still there")
	}
}

// SEC-153: at a cap, the server that gives way is one no client listens
// to (no event stream open), before the least recently used: an
// application that holds its stream keeps its server's state.
func TestSEC153_EvictionSparesListenedServers(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	f.openStream(t, "alice-k0", f.session(t, "alice-k0")) // the least recently used, but listened to
	for i := 1; i <= perUserLinks; i++ {
		f.session(t, fmt.Sprintf("alice-k%d", i))
	}
	waitFor(t, "the evicted server gone", 10*time.Second, func() bool { return f.pool.current(users["alice-k1"]) == nil })
	if f.pool.current(users["alice-k0"]) == nil {
		t.Error("the server an application listens to was evicted before one nobody listens to")
	}
}

// openStream opens session sid's GET event stream as user; the end of the
// test closes it.
func (f *fixture) openStream(t *testing.T, user, sid string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.srv.URL, nil)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Test-User", user)
	req.Header.Set(sessionHeader, sid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s's GET stream: %v %v, want 200", user, resp, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// SEC-153: in a pool of fewer than twice perUserLinks processes, a user
// holds half of it: four of alice's applications, each with a call held
// open, cannot take every one of 4 processes from bob. Fails before this
// change: alice held all 4 and bob got 503.
func TestSEC153_OneUserHoldsHalfASmallPool(t *testing.T) {
	f := newFixture(t, StdioOptions{MaxProcesses: 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	held := 0
	for i := range 4 {
		u := fmt.Sprintf("alice-k%d", i)
		resp, _ := f.rpc(t, ctx, u, "", initBody, nil)
		if resp.StatusCode != http.StatusOK {
			continue // alice's share is taken, and busy
		}
		defer func(done <-chan struct{}) { cancel(); <-done }(f.sleep(ctx, u, resp.Header.Get("Mcp-Session-Id")))
		held++
		f.waitBusy(t, u)
	}
	if held != 2 {
		t.Errorf("alice holds %d servers, each busy, in a pool of 4; want 2", held)
	}
	if resp, body := f.rpc(t, context.Background(), "bob", "", initBody, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("bob, with alice's calls held open: %d %s, want 200", resp.StatusCode, body)
	}
}

// SEC-153: a user's share of a pool of 2 or 3 is 2, so that one person's
// two applications each keep a server, in a pool whose room nobody else
// takes. Fails with a share of half the pool, rounded down: alice's second
// application got 503 with 1 of 3 processes running.
func TestSEC153_TwoApplicationsInASmallPool(t *testing.T) {
	f := newFixture(t, StdioOptions{MaxProcesses: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := f.sleep(ctx, "alice-k0", f.session(t, "alice-k0"))
	defer func() { cancel(); <-done }()
	f.waitBusy(t, "alice-k0")
	if resp, body := f.rpc(t, context.Background(), "alice-k1", "", initBody, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's second application, 1 of 3 processes running: %d %s, want 200", resp.StatusCode, body)
	}
}

// waitBusy waits until user's server has a call in flight.
func (f *fixture) waitBusy(t *testing.T, user string) {
	t.Helper()
	waitFor(t, user+"'s call in flight", 10*time.Second, func() bool {
		f.pool.mu.Lock()
		defer f.pool.mu.Unlock()
		l := f.pool.links[linkKey(users[user])]
		return l != nil && l.inflight > 0
	})
}
