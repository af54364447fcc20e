package mcpgate_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// providerCalls counts the requests the OIDC connector sends to its
// provider, by path, and the time they take.
type providerCalls struct {
	mu    sync.Mutex
	paths map[string]int
	spent time.Duration
}

func (c *providerCalls) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := http.DefaultTransport.RoundTrip(r)
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.spent += time.Since(start)
	c.mu.Unlock()
	return resp, err
}

// take returns the counts and time since the last take, and starts anew.
func (c *providerCalls) take() (map[string]int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	paths, spent := c.paths, c.spent
	c.paths, c.spent = map[string]int{}, 0
	return paths, spent
}

// stepTimer times the gateway's handler for the requests that match: the
// step of a login that turns the person's sign-in into a code.
type stepTimer struct {
	next  http.Handler
	match func(*http.Request) bool
	mu    sync.Mutex
	times []time.Duration
}

func (s *stepTimer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.match(r) {
		s.next.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	s.next.ServeHTTP(w, r)
	d := time.Since(start)
	s.mu.Lock()
	s.times = append(s.times, d)
	s.mu.Unlock()
}

func (s *stepTimer) take() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.times
	s.times = nil
	return t
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// loginBench is a gateway on SQLite, as `mcpgate serve` runs it, with one
// connector and a registered client.
type loginBench struct {
	base, clientID string
	step           *stepTimer
	calls          *providerCalls // nil for a local account
	user, password string
	endpoints      map[string]string // the provider's path → its role in the discovery document
}

func newLoginBench(b *testing.B, connector string, claimsAtUserinfo bool) *loginBench {
	b.Helper()
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	lb := &loginBench{base: "http://" + ln.Addr().String()}
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "mcpgate.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var con upstream.Connector
	switch connector {
	case "local":
		lc := local.New(st, local.Options{})
		lb.user, lb.password = "alice", "correct horse battery staple"
		if err := lc.SetUser(ctx, lb.user, lb.password, "admins", "devs"); err != nil {
			b.Fatal(err)
		}
		con = lc
	case "oidc":
		op := oidctest.Start(b, oidctest.Options{
			ClaimsOnlyAtUserinfo: claimsAtUserinfo,
			Clients:              []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{lb.base + "/callback/oidc"}}},
			Users: []oidctest.User{{Sub: "u-1", Email: "mira@corp.example", EmailVerified: true, Name: "Mira Mendes", Username: "mira",
				Groups: []string{"admins", "devs"}, Password: "mira-pw"}},
		})
		lb.user, lb.password = "u-1", "mira-pw"
		lb.endpoints = discoveryEndpoints(b, op.Issuer())
		lb.calls = &providerCalls{paths: map[string]int{}}
		con, err = oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret",
			HTTPClient: &http.Client{Transport: lb.calls, Timeout: 30 * time.Second}})
		if err != nil {
			b.Fatal(err)
		}
		paths, _ := lb.calls.take()
		b.Logf("%s at start: %s", connector, lb.describe(paths, 1))
	}
	g, err := mcpgate.New(ctx, mcpgate.Config{Store: st, SecretKey: bytes.Repeat([]byte{7}, 32), Connectors: []upstream.Connector{con}})
	if err != nil {
		b.Fatal(err)
	}
	step := "GET /callback/" + con.ID()
	if connector == "local" {
		step = "POST /login/" + con.ID() // not the GET that shows the form
	}
	lb.step = &stepTimer{next: g, match: func(r *http.Request) bool { return r.Method+" "+r.URL.Path == step }}
	srv := httptest.NewUnstartedServer(lb.step)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	b.Cleanup(srv.Close)

	body, _ := json.Marshal(map[string]any{"client_name": "bench", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "none", "application_type": "native"})
	resp, err := http.Post(lb.base+"/register", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 201 {
		b.Fatalf("register: %v %v", err, resp)
	}
	var reg registered
	json.NewDecoder(resp.Body).Decode(&reg)
	resp.Body.Close()
	lb.clientID = reg.ClientID
	return lb
}

// discoveryEndpoints names the provider's endpoints by their paths.
func discoveryEndpoints(b *testing.B, issuer string) map[string]string {
	b.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		b.Fatal(err)
	}
	out := map[string]string{"/.well-known/openid-configuration": "discovery"}
	for _, k := range []string{"token_endpoint", "jwks_uri", "userinfo_endpoint"} {
		if u, ok := d[k].(string); ok {
			out[strings.TrimPrefix(u, issuer)] = strings.TrimSuffix(strings.TrimSuffix(k, "_endpoint"), "_uri")
		}
	}
	return out
}

// describe says what paths (counted over n logins) were, by role.
func (lb *loginBench) describe(paths map[string]int, n int) string {
	var parts []string
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		role := lb.endpoints[p]
		if role == "" {
			role = "other " + p
		}
		parts = append(parts, fmt.Sprintf("%s %g", role, float64(paths[p])/float64(n)))
	}
	if len(parts) == 0 {
		return "no request to the provider"
	}
	return strings.Join(parts, ", ")
}

// login runs one whole login in a fresh browser (no session at mcpgate or
// the provider): authorize, consent, the sign-in (mcpgate's login form or
// the provider's), and the redirect with a code.
func (lb *loginBench) login(b *testing.B) {
	q := fmt.Sprintf("response_type=code&client_id=%s&redirect_uri=%s&code_challenge=%s&code_challenge_method=S256&state=s1&resource=%s",
		lb.clientID, redirectURI, tokens.S256("bench-verifier-0123456789-0123456789-0123456789"), lb.base+"/mcp")
	code, _, _, err := browser.New(lb.user, lb.password).Authorize(context.Background(), lb.base+"/authorize?"+q, redirectURI)
	if err != nil || code == "" {
		b.Fatalf("login: %v", err)
	}
}

// BenchmarkLogin is one whole login through the gateway per op (ns/op: the
// browser's wall time, sign-in page included), with a local account and
// through an OpenID provider (oidc-provider on loopback; with its claims in
// the ID token, and with them only at userinfo). step_p50_us is the median
// time of the gateway's handler for the step that turns the sign-in into a
// code: POST /login/local (bcrypt) or GET /callback/oidc (the provider's
// token endpoint, the ID token's check, userinfo when claims are missing);
// upstream_p50_us is the part of it spent waiting for the provider. The
// */login metrics are the requests to the provider per login, after one
// login not timed (the first fetches the JWKS, which go-oidc then keeps);
// the log lists them, and the requests made at start (discovery).
func BenchmarkLogin(b *testing.B) {
	for _, v := range []struct {
		name, connector  string
		claimsAtUserinfo bool
	}{
		{"local", "local", false},
		{"oidc", "oidc", false},
		{"oidc-userinfo", "oidc", true},
	} {
		b.Run(v.name, func(b *testing.B) {
			lb := newLoginBench(b, v.connector, v.claimsAtUserinfo)
			lb.login(b)
			lb.step.take()
			if lb.calls != nil {
				paths, _ := lb.calls.take()
				b.Logf("%s, first login: %s", v.name, lb.describe(paths, 1))
			}
			b.ResetTimer()
			var upstreamTimes []time.Duration
			loop := map[string]int{}
			for range b.N {
				lb.login(b)
				if lb.calls != nil {
					b.StopTimer()
					paths, spent := lb.calls.take()
					for p, n := range paths {
						loop[p] += n
					}
					upstreamTimes = append(upstreamTimes, spent)
					b.StartTimer()
				}
			}
			b.StopTimer()
			steps := lb.step.take()
			if len(steps) != b.N {
				b.Fatalf("%d timed steps for %d logins", len(steps), b.N)
			}
			b.ReportMetric(float64(median(steps).Microseconds()), "step_p50_us")
			if lb.calls == nil {
				return
			}
			b.ReportMetric(float64(median(upstreamTimes).Microseconds()), "upstream_p50_us")
			byRole := map[string]int{}
			for p, n := range loop {
				byRole[cmp.Or(lb.endpoints[p], "other")] += n
			}
			for _, role := range []string{"discovery", "token", "jwks", "userinfo", "other"} {
				b.ReportMetric(float64(byRole[role])/float64(b.N), role+"_req/login")
			}
			b.Logf("%s, %d logins: %s; step p50 %v, of which waiting for the provider %v",
				v.name, b.N, lb.describe(loop, b.N), median(steps), median(upstreamTimes))
		})
	}
}
