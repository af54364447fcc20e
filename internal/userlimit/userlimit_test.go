package userlimit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

var (
	alice = &identity.Caller{User: identity.User{ID: "local:alice"}}
	bob   = &identity.Caller{User: identity.User{ID: "local:bob"}}
)

// front serves h behind Wrap; the caller is named by the X-Test-User
// header (what the resource guard would have verified).
func front(t *testing.T, h http.Handler, opts Options) *httptest.Server {
	t.Helper()
	w := Wrap(h, opts)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		c := alice
		if r.Header.Get("X-Test-User") == "bob" {
			c = bob
		}
		w.ServeHTTP(rw, r.WithContext(identity.WithCaller(r.Context(), c)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url, session, user, body string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), method, url, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
	}
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func open(t *testing.T, url, user string) string {
	t.Helper()
	resp, b := do(t, http.MethodPost, url, "", user, initialize)
	id := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("initialize: %d %s, want 200 with a session", resp.StatusCode, b)
	}
	return id
}

func alive(t *testing.T, url, id, user string) bool {
	t.Helper()
	resp, b := do(t, http.MethodPost, url, id, user, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	switch resp.StatusCode {
	case 200:
		return true
	case 404:
		return false
	}
	t.Fatalf("ping in session: %d %s, want 200 or 404", resp.StatusCode, b)
	return false
}

// waitGone polls until session id of user is ended, or fails.
func waitGone(t *testing.T, url, id, user string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); alive(t, url, id, user); {
		if time.Now().After(deadline) {
			t.Fatalf("session %s of %s still alive after 10s, want it ended", id, user)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SEC-35: a user has at most MaxSessions sessions at a resource; a new
// one ends that user's least recently used (with a DELETE through the
// backend, which frees what it holds), never another user's.
func TestSEC35_SessionsPerUserLeastRecentlyUsedEnded(t *testing.T) {
	server := mcp.NewServer(&mcp.Implementation{Name: "s", Version: "1"}, nil)
	srv := front(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{JSONResponse: true}), Options{MaxSessions: 3})
	bobs := open(t, srv.URL, "bob")
	var ids []string
	for range 3 {
		ids = append(ids, open(t, srv.URL, ""))
	}
	// The first is used again: the second is now the least recently used.
	if !alive(t, srv.URL, ids[0], "") {
		t.Fatal("alice's first session ended below the cap")
	}
	ids = append(ids, open(t, srv.URL, ""))
	waitGone(t, srv.URL, ids[1], "")
	ids = append(ids, open(t, srv.URL, ""))
	waitGone(t, srv.URL, ids[2], "")
	for _, i := range []int{0, 3, 4} {
		if !alive(t, srv.URL, ids[i], "") {
			t.Errorf("alice's session %d ended, want the 3 most recently used alive", i)
		}
	}
	if !alive(t, srv.URL, bobs, "bob") {
		t.Error("bob's session ended by alice's, want each user capped alone")
	}
}

// streaming answers a GET with an event stream that stays open until the
// client leaves.
func streaming() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	})
}

// SEC-36: a user holds at most MaxStreams open GET event streams at a
// resource; one more is refused with 429, Retry-After and a JSON-RPC
// error, and a stream that closes makes room.
func TestSEC36_StreamsPerUserRefusedAtCap(t *testing.T) {
	srv := front(t, streaming(), Options{MaxStreams: 2})
	get := func(ctx context.Context, user string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		req.Header.Set("Accept", "text/event-stream")
		req.Header.Set("X-Test-User", user)
		return http.DefaultClient.Do(req)
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	for i := range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		resp, err := get(ctx, "alice")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v, want 200 below the cap", i, resp, err)
		}
		defer resp.Body.Close()
	}
	resp, err := get(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var e struct {
		Error struct{ Code int } `json:"error"`
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || json.Unmarshal(b, &e) != nil || e.Error.Code == 0 {
		t.Fatalf("stream over the cap: %d, Retry-After %q, %s; want 429 with Retry-After and a JSON-RPC error", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancels = append(cancels, cancel)
	if resp, err := get(ctx, "bob"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("bob's stream: %v %v, want 200: the cap is per user", resp, err)
	}
	cancels[0]() // alice closes one
	for deadline := time.Now().Add(10 * time.Second); ; {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		resp, err := get(ctx, "alice")
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stream for alice 10s after she closed one: %v %v", resp, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SEC-35: a session is counted whenever an answer hands out one that
// differs from the request's, also for a request that named a session (a
// backend may open a new one for an initialize that carries a stale or
// made-up id): over the cap, the least recently used still ends. Fails
// before this change: only requests without a session were counted, and
// alice held every session such initializes opened.
func TestSEC35_NewSessionCountedWhateverTheRequestNamed(t *testing.T) {
	var next, deleted atomic.Int32
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deleted.Add(1)
			return
		}
		// Every POST opens a new session, whatever it names.
		w.Header().Set("Mcp-Session-Id", fmt.Sprintf("s%d", next.Add(1)))
		w.WriteHeader(http.StatusOK)
	})
	srv := front(t, backend, Options{MaxSessions: 2})
	for i := range 5 {
		named := ""
		if i > 0 {
			named = "made-up"
		}
		if resp, b := do(t, http.MethodPost, srv.URL, named, "", initialize); resp.StatusCode != 200 {
			t.Fatalf("initialize %d: %d %s", i, resp.StatusCode, b)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); deleted.Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions ended after 5 opened with a cap of 2, want 3", deleted.Load())
		}
	}
}

// SEC-35: a backend that takes the id a request named as its new
// session's (an initialize carrying a made-up Mcp-Session-Id, answered
// with the same) opens a session all the same: counted, and over the cap
// the least recently used ends. Fails before this change: an answer's id
// equal to the request's was never counted, and alice held as many
// sessions as she made up ids.
func TestSEC35_AdoptedSessionIDCounted(t *testing.T) {
	var deleted atomic.Int32
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deleted.Add(1)
			return
		}
		w.Header().Set("Mcp-Session-Id", r.Header.Get("Mcp-Session-Id"))
		w.WriteHeader(http.StatusOK)
	})
	srv := front(t, backend, Options{MaxSessions: 2})
	for i := range 5 {
		if resp, b := do(t, http.MethodPost, srv.URL, fmt.Sprintf("made-up-%d", i), "", initialize); resp.StatusCode != 200 {
			t.Fatalf("initialize %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// Used again, a held session is not counted again.
	if resp, b := do(t, http.MethodPost, srv.URL, "made-up-4", "", initialize); resp.StatusCode != 200 {
		t.Fatalf("a held session used again: %d %s", resp.StatusCode, b)
	}
	for deadline := time.Now().Add(10 * time.Second); deleted.Load() < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions ended after 5 adopted with a cap of 2, want 3", deleted.Load())
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := deleted.Load(); n != 3 {
		t.Fatalf("%d sessions ended, want 3: a held session used again was counted as new", n)
	}
}

// SEC-35: a session over the cap is ended as the caller who opened it,
// with the expiry of the request that went over (the opener's token has
// often expired: a backend that mints an identity token from the caller
// refuses an expired one). A
// backend binds a session to its opener's client (SESS-3), and a user with
// two applications opens sessions through both: ended as the caller of
// the other application, the oldest was refused and stayed open, and the
// user held as many sessions as they liked. Fails before this change: the
// DELETE carried the caller of the request that went over the cap.
func TestSEC35_SessionEndedAsItsOpener(t *testing.T) {
	var mu sync.Mutex
	openedBy := map[string]string{} // session → client of its opener
	var next atomic.Int32
	backend := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := identity.FromContext(r.Context())
		client := caller.ClientID
		mu.Lock()
		defer mu.Unlock()
		if r.Method == http.MethodDelete {
			id := r.Header.Get("Mcp-Session-Id")
			if openedBy[id] != client {
				w.WriteHeader(http.StatusNotFound) // another client's session
				return
			}
			if caller.ExpiresAt.Before(time.Now()) {
				// As the proxy's identity token minter: no token for an
				// expired caller.
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			delete(openedBy, id)
			return
		}
		id := fmt.Sprintf("s%d", next.Add(1))
		openedBy[id] = client
		w.Header().Set("Mcp-Session-Id", id)
		w.WriteHeader(http.StatusOK)
	})
	h := Wrap(backend, Options{MaxSessions: 2})
	for i := range 6 {
		c := *alice
		c.ClientID = []string{"claude", "cursor"}[i/2%2] // two at a time, as the cap
		// The first two openers' tokens have expired since, as the least
		// recently used sessions' often have.
		c.ExpiresAt = time.Now().Add(time.Hour)
		if i < 2 {
			c.ExpiresAt = time.Now().Add(-time.Minute)
		}
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initialize)).WithContext(identity.WithCaller(t.Context(), &c))
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(openedBy)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice holds %d sessions at the backend after 6 opened through two applications with a cap of 2, want 2", n)
		}
	}
}
