package proxy

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
)

// countingStore counts the binding calls it passes to a memory store, and
// fails them all while broken.
type countingStore struct {
	*memory.Store
	mu     sync.Mutex
	calls  map[string]int
	broken atomic.Bool
}

func newCountingStore() *countingStore {
	return &countingStore{Store: memory.New(), calls: map[string]int{}}
}

func (s *countingStore) count(name string) error {
	s.mu.Lock()
	s.calls[name]++
	s.mu.Unlock()
	if s.broken.Load() {
		return errors.New("disk on fire")
	}
	return nil
}

func (s *countingStore) n(name string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.calls[name] }

func (s *countingStore) PutMCPSession(ctx context.Context, m *store.MCPSession, now time.Time) error {
	if err := s.count("put"); err != nil {
		return err
	}
	return s.Store.PutMCPSession(ctx, m, now)
}

func (s *countingStore) GetMCPSession(ctx context.Context, resource string, hash []byte, now time.Time) (*store.MCPSession, error) {
	if err := s.count("get"); err != nil {
		return nil, err
	}
	return s.Store.GetMCPSession(ctx, resource, hash, now)
}

func (s *countingStore) DeleteMCPSession(ctx context.Context, resource string, hash []byte) error {
	if err := s.count("delete"); err != nil {
		return err
	}
	return s.Store.DeleteMCPSession(ctx, resource, hash)
}

// sessionUpstream hands out a new session id to every request without
// one, repeats the session's id on every answer, and answers 404 to a
// session a DELETE ended, as the go-sdk does. It counts the requests that
// reach it.
func sessionUpstream(t *testing.T, reached *atomic.Int64) string {
	var n atomic.Int64
	var ended sync.Map
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		sid := r.Header.Get(sessionHeader)
		if _, gone := ended.Load(sid); gone {
			http.Error(w, "session not found", http.StatusNotFound)
			return
		}
		if r.Method == http.MethodDelete {
			ended.Store(sid, true)
		}
		if sid == "" {
			sid = "sess-" + string(rune('A'+n.Add(1)))
		}
		w.Header().Set(sessionHeader, sid)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	return be.URL
}

func sessionRequest(t *testing.T, srv *httptest.Server, method, sid string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	if sid != "" {
		req.Header.Set(sessionHeader, sid)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// SESS-3 across replicas: two proxies (two replicas of the gateway) on one
// store. A session opened through one is bound in the store by its hash,
// never its id, and found by the other; another user is refused by both;
// an ended session is gone from the store. The replica that opened it, or
// that found it once, asks the store no more, though the upstream repeats
// the id on every answer.
func TestSESS3_SessionBindingInStore(t *testing.T) {
	var reached atomic.Int64
	up := mustURL(t, sessionUpstream(t, &reached))
	st := newCountingStore()
	bob := &identity.Caller{User: identity.User{ID: "local:bob"}}
	hA := mustNew(t, Options{Upstream: up, Sessions: st, Resource: "/mcp"})
	aliceA, bobA := serveAs(t, hA, alice), serveAs(t, hA, bob)
	hB := mustNew(t, Options{Upstream: up, Sessions: st, Resource: "/mcp"})
	aliceB, bobB := serveAs(t, hB, alice), serveAs(t, hB, bob)

	_, _, hdr := sessionRequest(t, aliceA, http.MethodPost, "")
	sid := hdr.Get(sessionHeader)
	h := sha256.Sum256([]byte(sid))
	m, err := st.Store.GetMCPSession(t.Context(), "/mcp", h[:], time.Now())
	if err != nil || m.UserID != alice.User.ID || !m.ExpiresAt.After(time.Now().Add(23*time.Hour)) {
		t.Fatalf("the binding in the store: %+v, %v; want alice's, for a day", m, err)
	}
	if _, err := st.Store.GetMCPSession(t.Context(), "/mcp", []byte(sid), time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the store holds the session id itself: %v", err)
	}
	for i := range 3 {
		if status, body, _ := sessionRequest(t, aliceA, http.MethodPost, sid); status != 200 {
			t.Fatalf("alice through A, request %d: %d %s", i, status, body)
		}
	}
	if st.n("get") != 0 || st.n("put") != 1 {
		t.Fatalf("the opening replica called the store: %v; want the one put of the initialize", st.calls)
	}
	for i := range 3 {
		if status, body, _ := sessionRequest(t, aliceB, http.MethodPost, sid); status != 200 {
			t.Fatalf("alice through B, request %d: %d %s; want the session found in the store", i, status, body)
		}
	}
	if st.n("get") != 1 {
		t.Fatalf("B read the store %d times for 3 requests; want once", st.n("get"))
	}
	before := reached.Load()
	for name, srv := range map[string]*httptest.Server{"A": bobA, "B": bobB} {
		if status, _, _ := sessionRequest(t, srv, http.MethodPost, sid); status != 404 {
			t.Errorf("bob with alice's session through %s: %d, want 404", name, status)
		}
	}
	if reached.Load() != before {
		t.Error("bob's requests reached the upstream")
	}
	if status, _, _ := sessionRequest(t, aliceB, http.MethodDelete, sid); status != 200 {
		t.Fatalf("DELETE through B: %d", status)
	}
	if _, err := st.Store.GetMCPSession(t.Context(), "/mcp", h[:], time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the binding after the DELETE: %v, want ErrNotFound", err)
	}
	// A, which still knew it, passes the upstream's 404 on, and then
	// refuses it itself.
	for i := range 2 {
		before := reached.Load()
		if status, _, _ := sessionRequest(t, aliceA, http.MethodPost, sid); status != 404 {
			t.Fatalf("the session ended through B, through A, request %d: %d, want 404", i, status)
		}
		if forwarded := reached.Load() - before; forwarded != int64(1-i) {
			t.Fatalf("request %d through A after the end: %d reached the upstream, want %d", i, forwarded, 1-i)
		}
	}
	// A third replica, which never saw it, refuses it.
	hC := mustNew(t, Options{Upstream: up, Sessions: st, Resource: "/mcp"})
	if status, _, _ := sessionRequest(t, serveAs(t, hC, alice), http.MethodPost, sid); status != 404 {
		t.Errorf("the ended session through a third replica: %d, want 404", status)
	}
}

// A session in use moves its expiry in the store once an hour, not at
// every request, so that it never expires there while it is used through
// a replica that does not read it back.
func TestSessionExpiryMovesHourly(t *testing.T) {
	var reached atomic.Int64
	st := newCountingStore()
	h := mustNew(t, Options{Upstream: mustURL(t, sessionUpstream(t, &reached)), Sessions: st, Resource: "/mcp"})
	now := time.Now()
	var mu sync.Mutex
	h.(*handler).sessions.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	srv := serveAs(t, h, alice)
	_, _, hdr := sessionRequest(t, srv, http.MethodPost, "")
	sid := hdr.Get(sessionHeader)
	for range 3 {
		advance(20 * time.Minute)
		sessionRequest(t, srv, http.MethodPost, sid)
	}
	if st.n("put") != 2 {
		t.Fatalf("%d puts after an hour of use; want the first and one move", st.n("put"))
	}
	advance(23 * time.Hour)
	sum := sha256.Sum256([]byte(sid))
	if _, err := st.Store.GetMCPSession(t.Context(), "/mcp", sum[:], now); err != nil {
		t.Fatalf("a session used an hour into its day, 23 h later: %v; want it live in the store", err)
	}
}

// The store failing costs no session a replica holds: a session whose
// binding could not be stored works through the replica that opened it;
// a session the replica must look up is answered 503 with Retry-After and
// no detail, and is not forwarded.
func TestSessionStoreFailing(t *testing.T) {
	var reached atomic.Int64
	st := newCountingStore()
	h := mustNew(t, Options{Upstream: mustURL(t, sessionUpstream(t, &reached)), Sessions: st, Resource: "/mcp"})
	srv := serveAs(t, h, alice)
	st.broken.Store(true)
	_, _, hdr := sessionRequest(t, srv, http.MethodPost, "")
	sid := hdr.Get(sessionHeader)
	if status, body, _ := sessionRequest(t, srv, http.MethodPost, sid); status != 200 {
		t.Fatalf("the session whose binding was not stored, on its replica: %d %s; want 200", status, body)
	}
	before := reached.Load()
	status, body, hdr := sessionRequest(t, srv, http.MethodPost, "sess-of-another-replica")
	if status != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, "retry later") || strings.Contains(body, "fire") {
		t.Fatalf("a lookup with the store down: %d %q %s; want 503 with Retry-After and no detail", status, hdr.Get("Retry-After"), body)
	}
	if reached.Load() != before {
		t.Fatal("a session that could not be checked was forwarded")
	}
}

func mustNew(t *testing.T, opts Options) http.Handler {
	t.Helper()
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func serveAs(t *testing.T, h http.Handler, c *identity.Caller) *httptest.Server {
	srv := httptest.NewServer(asGuard(h, c))
	t.Cleanup(srv.Close)
	return srv
}

// SESS-3: an answer with two Mcp-Session-Id values is the upstream's
// mistake, and only one of them could be bound to the user: the client
// gets a 502, never an id the gateway would then refuse as unknown.
func TestSESS3_TwoSessionIDsFromUpstreamRefused(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Mcp-Session-Id", "first")
		w.Header().Add("Mcp-Session-Id", "second")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	fe := front(t, be.URL, Options{}, alice)
	resp := post(t, fe.URL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || len(resp.Header.Values("Mcp-Session-Id")) != 0 {
		t.Errorf("an upstream answer with two session ids: %d, Mcp-Session-Id %q, %s; want 502 and none", resp.StatusCode, resp.Header.Values("Mcp-Session-Id"), b)
	}
}
