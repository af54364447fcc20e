package mcpgate_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
)

// SEC-138: behind a trusted reverse proxy, the registration limit (20 a
// minute) counts each client by the address the proxy appended to
// X-Forwarded-For, not the proxy: one client over its limit does not stop
// another's registration, and an address a client wrote into the header
// itself is not read. Without trusted_proxies the header is never read.
// Fails before this change: every request counted as the proxy's, so the
// second client was refused with the first.
func TestSEC138_RegistrationLimitPerClientBehindProxy(t *testing.T) {
	register := func(g *gw, forwarded string) int {
		t.Helper()
		req := jsonReq(t, g.url+"/register", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`)
		if forwarded != "" {
			req.Header.Set("X-Forwarded-For", forwarded)
		}
		resp, _ := g.do(req)
		return resp.StatusCode
	}
	early := func(g *gw) { // a whole minute ahead for the limit's window
		g.clock.Advance(time.Now().Truncate(time.Minute).Add(time.Minute + time.Second).Sub(g.clock.Now()))
	}

	g := newGateway(t, func(c *mcpgate.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	early(g)
	for i := range 20 {
		if s := register(g, "203.0.113.1"); s != http.StatusCreated {
			t.Fatalf("registration %d of client A: %d, want 201", i, s)
		}
	}
	for _, forwarded := range []string{"203.0.113.1", "198.51.100.9, 203.0.113.1", "127.0.0.1, 203.0.113.1, 127.0.0.2"} {
		if s := register(g, forwarded); s != http.StatusTooManyRequests {
			t.Errorf("client A's 21st registration, X-Forwarded-For %q: %d, want 429", forwarded, s)
		}
	}
	if s := register(g, "203.0.113.2"); s != http.StatusCreated {
		t.Errorf("client B's first registration while A is over its limit: %d, want 201", s)
	}

	plain := newGateway(t)
	early(plain)
	for i := range 20 {
		if s := register(plain, "203.0.113.100"); s != http.StatusCreated {
			t.Fatalf("registration %d without trusted proxies: %d, want 201", i, s)
		}
	}
	if s := register(plain, "203.0.113.101"); s != http.StatusTooManyRequests {
		t.Errorf("without trusted proxies, a registration naming another address in X-Forwarded-For: %d, want 429 (the header is not read)", s)
	}
}

// An IPv6 client counts by its /64, as the connection caps count it: 200
// registrations from as many addresses of one /64 are held to the 20 a
// minute of one client; another /64 is another client. Fails before this
// change: all 200 were accepted.
func TestSEC138_IPv6CountedByItsSlash64(t *testing.T) {
	g := newGateway(t)
	g.clock.Advance(time.Now().Truncate(time.Minute).Add(time.Minute + time.Second).Sub(g.clock.Now()))
	register := func(remote string) int {
		req := httptest.NewRequest(http.MethodPost, g.url+"/register", strings.NewReader(`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		g.gw.ServeHTTP(rec, req)
		return rec.Code
	}
	created := 0
	for i := 1; i <= 200; i++ {
		if register(fmt.Sprintf("[2001:db8:1:2::%x]:40000", i)) == http.StatusCreated {
			created++
		}
	}
	if created != 20 {
		t.Errorf("%d of 200 registrations from one /64 accepted, want 20", created)
	}
	if s := register("[2001:db8:1:3::1]:40000"); s != http.StatusCreated {
		t.Errorf("a registration from another /64: %d, want 201", s)
	}
}
