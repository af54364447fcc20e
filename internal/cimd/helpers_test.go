package cimd

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stubResolver answers from a function of the host and the call number.
type stubResolver struct {
	mu     sync.Mutex
	calls  int
	answer func(host string, call int) ([]net.IPAddr, error)
}

func (r *stubResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	r.calls++
	n := r.calls
	r.mu.Unlock()
	return r.answer(host, n)
}

func (r *stubResolver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

func ipAddrs(ss ...string) []net.IPAddr {
	var out []net.IPAddr
	for _, s := range ss {
		host, zone, _ := strings.Cut(s, "%")
		ip := net.ParseIP(host)
		if ip == nil {
			panic("bad test IP " + s)
		}
		out = append(out, net.IPAddr{IP: ip, Zone: zone})
	}
	return out
}

// staticResolver maps every host to the same answer.
func staticResolver(ss ...string) *stubResolver {
	return &stubResolver{answer: func(string, int) ([]net.IPAddr, error) { return ipAddrs(ss...), nil }}
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a TLS document server on 127.0.0.1 reached as example.com (a
// name its test certificate covers) through a stub resolver, with
// example.com allow-listed unless a test clears AllowHosts.
type env struct {
	t     *testing.T
	srv   *httptest.Server
	conns atomic.Int64 // connections the server accepted
	mu    sync.Mutex
	hits  map[string]int
	res   *stubResolver
	clock *fakeClock
	f     *Fetcher
}

func newEnv(t *testing.T, h http.HandlerFunc, edit func(*Options)) *env {
	t.Helper()
	e := &env{t: t, hits: map[string]int{}, clock: &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.URL.Path]++
		e.mu.Unlock()
		h(w, r)
	}))
	e.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			e.conns.Add(1)
		}
	}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(e.srv.Certificate())
	e.res = staticResolver("127.0.0.1")
	opts := Options{
		AllowHosts: []string{"example.com"},
		RootCAs:    pool,
		Timeout:    5 * time.Second,
		Now:        e.clock.now,
		Logger:     slog.New(slog.NewTextHandler(t.Output(), nil)),
		Resolver:   e.res,
	}
	if edit != nil {
		edit(&opts)
	}
	e.f = New(opts)
	return e
}

func (e *env) port() string {
	_, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	return port
}

// url is the client_id for path on the test server.
func (e *env) url(path string) string { return "https://example.com:" + e.port() + path }

func (e *env) hitCount(path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[path]
}

// selfURL is the URL a request reached, which is its own client_id.
func selfURL(r *http.Request) string { return "https://" + r.Host + r.URL.Path }

// doc renders a valid document for id after edit changes its members.
func doc(id string, edit func(m map[string]any)) string {
	m := map[string]any{
		"client_id":     id,
		"client_name":   "Example MCP Client",
		"redirect_uris": []string{"https://app.example/callback"},
		"scope":         "mcp",
		"client_uri":    "https://app.example",
		"logo_uri":      "https://app.example/logo.png",
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func serveJSON(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(body))
}

// docHandler serves a valid document for whatever URL is asked.
func docHandler(w http.ResponseWriter, r *http.Request) { serveJSON(w, doc(selfURL(r), nil)) }

// asError asserts err is an *Error with a Reason.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *cimd.Error", err, err)
	}
	if e.Reason == "" {
		t.Fatalf("error %v has no Reason", err)
	}
	return e
}

// testKeySet is a public Ed25519 key set; testPrivateKeySet the same key
// with its private part, which a document must never publish.
var (
	testKeySet        = map[string]any{"keys": []any{map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}}
	testPrivateKeySet = map[string]any{"keys": []any{map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "k1", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}}}
)

// stall is a handler that, while on (as it starts), holds each request
// until the gateway's side goes away, saying when it holds one and when
// it was let go, and once off serves with next.
type stall struct {
	entered, aborted chan struct{}
	on               atomic.Bool
	next             http.HandlerFunc
}

func newStall(next http.HandlerFunc) *stall {
	s := &stall{entered: make(chan struct{}, 1), aborted: make(chan struct{}, 1), next: next}
	s.on.Store(true)
	return s
}

func (s *stall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.on.Load() {
		s.next(w, r)
		return
	}
	s.entered <- struct{}{}
	<-r.Context().Done() // the gateway's side went away
	s.aborted <- struct{}{}
}
