package cimd

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CIMD-6: freshness per RFC 9111, clamped to [MinTTL, MaxTTL].
func TestLifetime(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	date := now.Add(-time.Minute).Format(http.TimeFormat) // server clock a minute behind
	f := New(Options{})
	for _, c := range []struct {
		name     string
		header   map[string]string
		want     time.Duration
		storable bool
	}{
		{"no headers: DefaultTTL", nil, DefaultTTL, true},
		{"max-age", map[string]string{"Cache-Control": "public, max-age=600"}, 10 * time.Minute, true},
		{"quoted max-age", map[string]string{"Cache-Control": `max-age="600"`}, 10 * time.Minute, true},
		{"max-age minus Age", map[string]string{"Cache-Control": "max-age=600", "Age": "120"}, 8 * time.Minute, true},
		{"max-age below MinTTL", map[string]string{"Cache-Control": "max-age=5"}, DefaultMinTTL, true},
		{"max-age=0: MinTTL", map[string]string{"Cache-Control": "max-age=0"}, DefaultMinTTL, true},
		{"max-age above MaxTTL", map[string]string{"Cache-Control": "max-age=31536000"}, DefaultMaxTTL, true},
		{"max-age overflowing", map[string]string{"Cache-Control": "max-age=99999999999999999999999"}, DefaultMaxTTL, true},
		{"invalid max-age is stale", map[string]string{"Cache-Control": "max-age=-5"}, DefaultMinTTL, true},
		{"max-age wins over Expires", map[string]string{"Cache-Control": "max-age=600", "Expires": now.Add(time.Hour).Format(http.TimeFormat)}, 10 * time.Minute, true},
		{"no-cache: MinTTL", map[string]string{"Cache-Control": "no-cache"}, DefaultMinTTL, true},
		{"no-cache with max-age", map[string]string{"Cache-Control": "max-age=3600, no-cache"}, DefaultMinTTL, true},
		{"no-store", map[string]string{"Cache-Control": "max-age=3600, No-Store"}, 0, false},
		{"Expires relative to Date", map[string]string{"Expires": now.Add(30 * time.Minute).Format(http.TimeFormat), "Date": date}, 31 * time.Minute, true},
		{"Expires without Date", map[string]string{"Expires": now.Add(30 * time.Minute).Format(http.TimeFormat)}, 30 * time.Minute, true},
		{"Expires above MaxTTL (SEC-160)", map[string]string{"Expires": now.Add(24 * time.Hour).Format(http.TimeFormat)}, time.Hour, true},
		{"Expires: 0", map[string]string{"Expires": "0"}, DefaultMinTTL, true},
		{"Expires in the past", map[string]string{"Expires": now.Add(-time.Hour).Format(http.TimeFormat)}, DefaultMinTTL, true},
	} {
		h := http.Header{}
		for k, v := range c.header {
			h.Set(k, v)
		}
		got, storable := f.lifetime(h, now)
		if got != c.want || storable != c.storable {
			t.Errorf("%s: lifetime = %v, %v; want %v, %v", c.name, got, storable, c.want, c.storable)
		}
	}
}

// CIMD-6: a second call within the lifetime is served from the cache.
func TestCacheServesSecondCall(t *testing.T) {
	e := newEnv(t, docHandler, nil)
	id := e.url("/client.json")
	for i := range 3 {
		if _, err := e.f.Client(context.Background(), id); err != nil {
			t.Fatalf("call %d: %v, want the document", i+1, err)
		}
	}
	if n := e.hitCount("/client.json"); n != 1 {
		t.Errorf("server hit %d times, want 1", n)
	}
}

// CIMD-6: max-age is respected; once it passes the document is fetched again.
func TestCacheMaxAge(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=600")
		docHandler(w, r)
	}, nil)
	id := e.url("/client.json")
	get := func() {
		t.Helper()
		if _, err := e.f.Client(context.Background(), id); err != nil {
			t.Fatalf("%v, want the document", err)
		}
	}
	get()
	e.clock.advance(599 * time.Second)
	get()
	if n := e.hitCount("/client.json"); n != 1 {
		t.Fatalf("within max-age: server hit %d times, want 1", n)
	}
	e.clock.advance(2 * time.Second)
	get()
	if n := e.hitCount("/client.json"); n != 2 {
		t.Fatalf("after max-age: server hit %d times, want 2", n)
	}
}

// CIMD-6: errors and invalid documents are never cached; the next call
// fetches again and succeeds once the server is fixed.
func TestCacheNeverCachesFailures(t *testing.T) {
	var state atomic.Int32 // 0: 500, 1: invalid document, 2: valid
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		switch state.Load() {
		case 0:
			http.Error(w, "down", http.StatusInternalServerError)
		case 1:
			serveJSON(w, doc(selfURL(r), func(m map[string]any) { delete(m, "redirect_uris") }))
		default:
			docHandler(w, r)
		}
	}, nil)
	id := e.url("/client.json")
	for s, what := range []string{"a 500", "an invalid document"} {
		state.Store(int32(s))
		if _, err := e.f.Client(context.Background(), id); err == nil {
			t.Errorf("%s was accepted, want an error", what)
		}
	}
	state.Store(2)
	if _, err := e.f.Client(context.Background(), id); err != nil {
		t.Fatalf("after the fix: %v, want the document", err)
	}
	if n := e.hitCount("/client.json"); n != 3 {
		t.Errorf("server hit %d times, want 3", n)
	}
}

// CIMD-6: a no-store document is used but not kept.
func TestCacheNoStore(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		docHandler(w, r)
	}, nil)
	id := e.url("/client.json")
	for i := range 2 {
		if _, err := e.f.Client(context.Background(), id); err != nil {
			t.Fatalf("call %d: %v, want the document", i+1, err)
		}
	}
	if n := e.hitCount("/client.json"); n != 2 {
		t.Errorf("server hit %d times, want 2", n)
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *Fetcher) waiters(clientID string) int { return f.documents.waiting(clientID) }

// CIMD-6: concurrent calls for one URL collapse into one fetch.
func TestCacheCollapsesConcurrentFetches(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		docHandler(w, r)
	}, nil)
	id := e.url("/client.json")
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := e.f.Client(context.Background(), id)
			errs <- err
		})
	}
	waitFor(t, "all callers to join the fetch", func() bool { return e.f.waiters(id) == n })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a caller got %v, want the document", err)
		}
	}
	if hits := e.hitCount("/client.json"); hits != 1 {
		t.Errorf("server hit %d times, want 1", hits)
	}
}

// A caller that gives up does not cancel the fetch others are waiting for.
func TestCacheCallerCancelDoesNotAbortSharedFetch(t *testing.T) {
	release := make(chan struct{})
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		docHandler(w, r)
	}, nil)
	id := e.url("/client.json")
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := e.f.Client(ctx, id)
		first <- err
	}()
	waitFor(t, "the first caller", func() bool { return e.f.waiters(id) == 1 })
	second := make(chan error, 1)
	go func() {
		_, err := e.f.Client(context.Background(), id)
		second <- err
	}()
	waitFor(t, "the second caller", func() bool { return e.f.waiters(id) == 2 })
	cancel()
	if err := <-first; err == nil {
		t.Error("the cancelled caller got a client, want its context's error")
	}
	close(release)
	if err := <-second; err != nil {
		t.Errorf("the waiting caller: %v, want the document", err)
	}
	if _, err := e.f.Client(context.Background(), id); err != nil {
		t.Fatalf("a later call: %v, want the cached document", err)
	}
	if hits := e.hitCount("/client.json"); hits != 1 {
		t.Errorf("server hit %d times, want 1", hits)
	}
}

// The fetch ends when its last caller gives up: a request dropped at once
// leaves no fetch running, and a later call fetches anew. Fails before
// this change: the fetch ran on to its timeout (here a minute).
func TestCacheFetchEndsWithItsLastCaller(t *testing.T) {
	st := newStall(docHandler)
	e := newEnv(t, st.ServeHTTP, func(o *Options) { o.Timeout = time.Minute })
	id := e.url("/client.json")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.f.Client(ctx, id)
		done <- err
	}()
	<-st.entered
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled caller got a client, want its context's error")
	}
	select {
	case <-st.aborted:
	case <-time.After(10 * time.Second):
		t.Fatal("10 s after its only caller gave up, the fetch still runs")
	}
	st.on.Store(false)
	if _, err := e.f.Client(context.Background(), id); err != nil {
		t.Fatalf("a later call: %v, want the document fetched anew", err)
	}
}

// SEC-159: at most maxConcurrentFetches documents and key sets are
// fetched at once, whoever asks; past it a fetch waits for a slot, holding
// no connection, until no caller waits for it, and then fails with the
// reason of a document that could not be fetched; it goes on once a slot
// frees.
func TestFetchesBoundedAtOnce(t *testing.T) {
	e := newEnv(t, docHandler, nil)
	for range maxConcurrentFetches {
		e.f.fetching <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.f.Client(ctx, e.url("/client.json"))
	var e1 *Error
	if !errors.As(err, &e1) || e1.Reason != reasonUnreachable {
		t.Fatalf("a fetch past the cap whose caller gave up: %v, want the unreachable reason", err)
	}
	if n := e.hitCount("/client.json"); n != 0 {
		t.Errorf("the document was asked for %d times past the cap, want 0", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := e.f.Client(context.Background(), e.url("/client.json"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	<-e.f.fetching // a slot frees
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the waiting fetch once a slot freed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting fetch did not go on once a slot freed")
	}
}

// The cache is bounded; when full, the entry closest to expiry goes.
func TestCacheBounded(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age="+map[string]string{
			"/a.json": "3600", "/b.json": "600", "/c.json": "7200",
		}[r.URL.Path])
		docHandler(w, r)
	}, func(o *Options) { o.MaxEntries = 2 })
	for _, p := range []string{"/a.json", "/b.json", "/c.json"} {
		if _, err := e.f.Client(context.Background(), e.url(p)); err != nil {
			t.Fatalf("%s: %v, want the document", p, err)
		}
	}
	e.f.mu.Lock()
	_, hasA := e.f.cache[e.url("/a.json")]
	_, hasB := e.f.cache[e.url("/b.json")]
	_, hasC := e.f.cache[e.url("/c.json")]
	size := len(e.f.cache)
	e.f.mu.Unlock()
	if size != 2 || !hasA || hasB || !hasC {
		t.Errorf("cache holds %d entries (a=%v b=%v c=%v), want a and c", size, hasA, hasB, hasC)
	}
}

// SEC-218: when the cache is full, a document served from it since it was
// stored (a client in use) stays, and one fetched once goes first, even
// with a longer lifetime: anyone may have documents fetched, once each,
// with long lifetimes, to push out those of the clients in use. Fails
// before: the document in use, closest to expiry, went.
func TestCacheKeepsDocumentsInUse(t *testing.T) {
	e := newEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age="+map[string]string{
			"/in-use.json": "300", "/once.json": "3600", "/new.json": "3600",
		}[r.URL.Path])
		docHandler(w, r)
	}, func(o *Options) { o.MaxEntries = 2 })
	for _, p := range []string{"/in-use.json", "/in-use.json", "/once.json", "/new.json"} {
		if _, err := e.f.Client(context.Background(), e.url(p)); err != nil {
			t.Fatalf("%s: %v, want the document", p, err)
		}
	}
	e.f.mu.Lock()
	_, inUse := e.f.cache[e.url("/in-use.json")]
	_, once := e.f.cache[e.url("/once.json")]
	e.f.mu.Unlock()
	if !inUse || once {
		t.Errorf("the cache kept the document in use: %v, the one fetched once: %v; want true, false", inUse, once)
	}
}
