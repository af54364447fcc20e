package resource

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

type fixture struct {
	guard *Guard
	keys  *tokens.Keyset
	now   time.Time
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	sealer, err := tokens.NewSealer(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	f := &fixture{now: time.Now()}
	f.keys, err = tokens.LoadKeyset(context.Background(), memory.New(), sealer, f.now)
	if err != nil {
		tb.Fatal(err)
	}
	clock := func() time.Time { return f.now }
	f.guard = NewGuard(Options{
		Site:     &oauth.Site{Fallback: "http://127.0.0.1:8080"},
		Resource: oauth.Resource{Path: "/mcp", Scopes: []string{"mcp"}},
		Keys:     f.keys,
		Denylist: NewDenylist(time.Hour, clock),
		Now:      clock,
	})
	return f
}

func (f *fixture) mint(tb testing.TB, aud string, scopes ...string) string {
	tb.Helper()
	at, err := f.keys.Mint(&tokens.Claims{Issuer: "http://127.0.0.1:8080", Subject: "local:alice", Audience: aud,
		ClientID: "c1", Scopes: scopes, IssuedAt: f.now, ExpiresAt: f.now.Add(time.Hour), ID: tokens.NewID(), GrantID: "g1",
		User: identity.User{ID: "local:alice", Username: "alice"}})
	if err != nil {
		tb.Fatal(err)
	}
	return at
}

func request(token string) *http.Request {
	r := httptest.NewRequest("POST", "http://127.0.0.1:8080/mcp", nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r
}

// The cache never serves what the verifier would refuse: a token cached
// for one issuer is checked again under another, expiry and revocation
// are checked on every hit (TOK-2, RES-3).
func TestCachedTokenStillChecked(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "http://127.0.0.1:8080/mcp", "mcp")
	var seen *identity.Caller
	h := f.guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = identity.FromContext(r.Context())
	}))
	do := func(r *http.Request) int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := do(request(tok)); c != 200 || seen == nil || seen.User.ID != "local:alice" {
		t.Fatalf("first: %d %+v, want 200 and the caller local:alice", c, seen)
	}
	if c := do(request(tok)); c != 200 {
		t.Fatalf("cached: %d, want 200", c)
	}
	other := request(tok)
	other.Host = "localhost:8080" // another issuer and audience
	if c := do(other); c != 401 {
		t.Fatalf("RES-3: cached token for another audience: %d, want 401", c)
	}
	f.guard.opts.Denylist.Revoke("g1")
	if c := do(request(tok)); c != 401 {
		t.Fatalf("revoked grant from the cache: %d, want 401", c)
	}
	f2 := newFixture(t)
	tok2 := f2.mint(t, "http://127.0.0.1:8080/mcp", "mcp")
	h2 := f2.guard.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	w := httptest.NewRecorder()
	h2.ServeHTTP(w, request(tok2))
	f2.now = f2.now.Add(time.Hour)
	w = httptest.NewRecorder()
	h2.ServeHTTP(w, request(tok2))
	if w.Code != 401 {
		t.Fatalf("TOK-2: expired cached token: %d, want 401", w.Code)
	}
}

// TOK-1: a request with two Authorization headers is refused with 400
// invalid_request (RFC 6750 §3.1: more than one method, or otherwise
// malformed), whichever of them holds a valid token: a proxy or log in
// front that reads the other one would judge a different token than the
// gateway lets in.
func TestTOK1_OneAuthorizationHeader(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "http://127.0.0.1:8080/mcp", "mcp")
	reached := false
	h := f.guard.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
	for _, pair := range [][2]string{{"Bearer " + tok, "Bearer junk"}, {"Bearer junk", "Bearer " + tok}, {"Bearer " + tok, "Bearer " + tok}} {
		reached = false
		r := request("")
		r.Header.Add("Authorization", pair[0])
		r.Header.Add("Authorization", pair[1])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 400 || reached || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_request"`) {
			t.Errorf("two Authorization headers: %d, WWW-Authenticate %q, reached %v; want 400 invalid_request, not reached",
				w.Code, w.Header().Get("WWW-Authenticate"), reached)
		}
	}
}

// SCOPE-1: a cached token without the required scope stays a 403.
func TestCachedInsufficientScope(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "http://127.0.0.1:8080/mcp", "other")
	h := f.guard.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for i := 0; i < 2; i++ {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, request(tok))
		if w.Code != 403 {
			t.Fatalf("round %d: %d, want 403 (SCOPE-1)", i, w.Code)
		}
	}
}

// The cache is bounded.
func TestVerifiedCacheBounded(t *testing.T) {
	c := newVerifiedCache(4)
	now := time.Now()
	for i := 0; i < 10; i++ {
		c.put(tokenKey(string(rune('a'+i))), &verified{info: infoExpiring(now.Add(time.Hour))}, now)
		if len(c.entries) > 4 {
			t.Fatalf("%d entries", len(c.entries))
		}
	}
}

// BenchmarkGuardCached is the whole per-request check of a known token,
// from the header to the go-sdk's TokenInfo in the context.
func BenchmarkGuardCached(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, "http://127.0.0.1:8080/mcp", "mcp")
	h := f.guard.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := request(tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(w, r)
	}
}

// SESS-3 relies on this: the go-sdk finds the TokenInfo the guard put in
// the context, with its UserID, and the caller in it.
func TestGoSDKSeesTokenInfo(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "http://127.0.0.1:8080/mcp", "mcp")
	var info *auth.TokenInfo
	var caller *identity.Caller
	h := f.guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info = auth.TokenInfoFromContext(r.Context())
		caller = identity.FromContext(r.Context())
	}))
	h.ServeHTTP(httptest.NewRecorder(), request(tok))
	if info == nil || info.UserID != "local:alice" || caller == nil || caller.ClientID != "c1" {
		t.Fatalf("TokenInfo %+v, caller %+v", info, caller)
	}
}

// SEC-142: a token verified with a key that has since been dropped (rotated
// out, as after a leak) is checked again, and refused, rather than trusted
// from the guard's cache for the rest of its life. Fails before this
// change: the cached token answered 200 after its key was gone.
func TestSEC142_CachedTokenOfADroppedKeyRefused(t *testing.T) {
	ctx := context.Background()
	sealer, err := tokens.NewSealer(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	keys, err := tokens.OpenKeyset(ctx, memory.New(), sealer, now, tokens.KeysetOptions{Keep: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	g := NewGuard(Options{Site: &oauth.Site{Fallback: "http://127.0.0.1:8080"}, Resource: oauth.Resource{Path: "/mcp", Scopes: []string{"mcp"}},
		Keys: keys, Denylist: NewDenylist(time.Hour, clock), Now: clock})
	tok, err := keys.Mint(&tokens.Claims{Issuer: "http://127.0.0.1:8080", Subject: "local:alice", Audience: "http://127.0.0.1:8080/mcp",
		ClientID: "c1", Scopes: []string{"mcp"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour), ID: tokens.NewID(), GrantID: "g1",
		User: identity.User{ID: "local:alice"}})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	do := func() int {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, request(tok))
		return w.Code
	}
	if c := do(); c != 200 {
		t.Fatalf("the token before the rotation: %d, want 200", c)
	}
	if _, err := keys.Rotate(ctx, now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Minute) // past Keep: the old key is dropped
	if err := keys.Reload(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(tok, "http://127.0.0.1:8080", "http://127.0.0.1:8080/mcp", now); err == nil {
		t.Fatal("the dropped key still verifies: the test proves nothing")
	}
	if c := do(); c != 401 {
		t.Errorf("the cached token of the dropped key: %d, want 401", c)
	}
}

// The denylist forgets a grant once its tokens have all expired, whether
// this gateway revoked it or learnt of it from another (RevokeAll, which
// a replica that revokes nothing itself calls alone): it never grows
// past the revocations of one access-token lifetime.
func TestDenylistForgetsExpiredGrants(t *testing.T) {
	now := time.Now()
	d := NewDenylist(time.Hour, func() time.Time { return now })
	d.RevokeAll([]string{"a", "b"})
	now = now.Add(2 * time.Hour)
	d.RevokeAll([]string{"c"})
	if d.Denied("a") || d.Denied("b") || !d.Denied("c") || len(d.grants) != 1 {
		t.Errorf("after their tokens expired: a %v, b %v, c %v, %d held; want only c", d.Denied("a"), d.Denied("b"), d.Denied("c"), len(d.grants))
	}
}

// SEC-158: a GET (an event stream, open for hours) ends when its grant is
// revoked, as a new request would be refused then, and leaves no watcher
// behind; neither it nor a POST carries a deadline of its token's expiry
// (a client that refreshed holds a valid token).
func TestSEC158_StreamEndsWithItsGrant(t *testing.T) {
	f := newFixture(t)
	tok := f.mint(t, "http://127.0.0.1:8080/mcp", "mcp")
	ended := make(chan struct{}, 1)
	h := f.guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Deadline(); ok {
			t.Errorf("a %s got a deadline", r.Method)
		}
		if r.Method == http.MethodPost {
			return
		}
		<-r.Context().Done()
		ended <- struct{}{}
	}))
	h.ServeHTTP(httptest.NewRecorder(), request(tok)) // a POST returns at once
	get := request(tok)
	get.Method = http.MethodGet
	go h.ServeHTTP(httptest.NewRecorder(), get)
	d := f.guard.opts.Denylist
	waitUntil(t, "the stream watched", func() bool { d.mu.RLock(); defer d.mu.RUnlock(); return len(d.open["g1"]) == 1 })
	d.Revoke("g1")
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its grant's revocation")
	}
	waitUntil(t, "no watcher left", func() bool { d.mu.RLock(); defer d.mu.RUnlock(); return len(d.open) == 0 })
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// SEC-158: a stream lasts as long as its grant holds an access token seen
// valid: one opened with a token that expires ends with it, unless a later
// token of the grant (a refresh) came through meanwhile.
func TestSEC158_StreamLastsWhileItsGrantHasAValidToken(t *testing.T) {
	var clock atomic.Int64 // the guard's and the denylist's now, in ns
	t0 := time.Now()
	clock.Store(t0.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	sealer, err := tokens.NewSealer(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tokens.LoadKeyset(context.Background(), memory.New(), sealer, t0)
	if err != nil {
		t.Fatal(err)
	}
	guard := NewGuard(Options{
		Site: &oauth.Site{Fallback: "http://127.0.0.1:8080"}, Resource: oauth.Resource{Path: "/mcp", Scopes: []string{"mcp"}},
		Keys: keys, Denylist: NewDenylist(time.Hour, now), Now: now,
	})
	mint := func(grant string, exp time.Time) string {
		at, err := keys.Mint(&tokens.Claims{Issuer: "http://127.0.0.1:8080", Subject: "local:alice", Audience: "http://127.0.0.1:8080/mcp",
			ClientID: "c1", Scopes: []string{"mcp"}, IssuedAt: t0, ExpiresAt: exp, ID: tokens.NewID(), GrantID: grant,
			User: identity.User{ID: "local:alice", Username: "alice"}})
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	h := guard.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			<-r.Context().Done()
		}
	}))
	stream := func(tok string) chan struct{} {
		ended := make(chan struct{})
		r := request(tok)
		r.Method = http.MethodGet
		go func() {
			h.ServeHTTP(httptest.NewRecorder(), r)
			close(ended)
		}()
		return ended
	}
	// Tokens carry whole seconds: expiries a second apart.
	exp := t0.Add(2 * time.Second).Truncate(time.Second)

	lone := stream(mint("g-lone", exp))
	refreshed := stream(mint("g-refreshed", exp))
	time.Sleep(100 * time.Millisecond)
	h.ServeHTTP(httptest.NewRecorder(), request(mint("g-refreshed", exp.Add(time.Hour)))) // a refresh's token at work
	clock.Store(exp.Add(time.Second).UnixNano())                                          // past the first tokens' expiry
	select {
	case <-lone:
	case <-time.After(10 * time.Second):
		t.Fatal("a stream whose grant has no valid token left is still open")
	}
	select {
	case <-refreshed:
		t.Error("the stream of a grant whose client refreshed ended with the first token")
	case <-time.After(2 * time.Second):
	}
}
