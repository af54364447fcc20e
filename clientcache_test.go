package mcpgate_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
)

// count is how many of calls are method.
func count(calls []string, method string) int {
	n := 0
	for _, c := range calls {
		if c == method {
			n++
		}
	}
	return n
}

// SEC-85: two replicas on one store. A busy registered client is read
// from the store once per replica, not at each /authorize and /token; a
// use an hour on is recorded once, by the replica that sees it first (B
// reads A's record), not at each request; deleted, the client is refused
// by both replicas once 1 s has passed.
func TestSEC85_RegisteredClientsHeldBriefly(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testClientsHeldBriefly(t, backend) })
	}
}

func testClientsHeldBriefly(t *testing.T, backend string) {
	stA, stB := sharedStores(t, backend)
	watchA, watchB := &watchedStore{inner: stA}, &watchedStore{inner: stB}
	on := func(st store.Store) gwOption { return func(c *mcpgate.Config) { c.Store = st } }
	a, b := newGateway(t, on(watchA)), newGateway(t, on(watchB))
	client := a.register(nil)
	replicas := []struct {
		name  string
		g     *gw
		watch *watchedStore
	}{{"A", a, watchA}, {"B", b, watchB}}

	// invalid_grant: the client is known, its refresh token is not.
	tokenStatus := func(g *gw) (int, string) {
		resp, body := g.postForm(g.url+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {client.ClientID}})
		return resp.StatusCode, decode[map[string]string](t, body)["error"]
	}
	busy := func(when string) {
		t.Helper()
		for _, r := range replicas {
			r.watch.mu.Lock()
			r.watch.calls = nil
			r.watch.mu.Unlock()
			r.watch.armed.Store(true)
			for range 5 {
				if status, body := r.g.authorizePage(client.ClientID); status != 200 {
					t.Fatalf("%s: /authorize on %s: %d, want the page for a known client:\n%s", when, r.name, status, body)
				}
				if status, e := tokenStatus(r.g); status != 400 || e != "invalid_grant" {
					t.Fatalf("%s: /token on %s: %d %s, want 400 invalid_grant", when, r.name, status, e)
				}
			}
			r.watch.armed.Store(false)
			seen := r.watch.seen()
			if n := count(seen, "GetClient"); n != 1 {
				t.Errorf("%s: 10 requests of one client on %s read it %d times, want once", when, r.name, n)
			}
			if n, want := count(seen, "TouchClient"), map[bool]int{true: 1}[when == "an hour on" && r.name == "A"]; n != want {
				t.Errorf("%s: 10 requests of one client on %s recorded its use %d times, want %d", when, r.name, n, want)
			}
		}
	}
	busy("at once")
	for _, r := range replicas {
		r.g.clock.Advance(time.Hour)
	}
	busy("an hour on")

	now := a.clock.Now()
	if n, err := stA.DeleteUnusedClients(t.Context(), now.Add(time.Minute), now, 10); err != nil || n != 1 {
		t.Fatalf("deleting the client: %d, %v", n, err)
	}
	// The bound stated in SEC-85, on each replica's clock.
	for _, r := range replicas {
		r.g.clock.Advance(time.Second)
		if status, body := r.g.authorizePage(client.ClientID); status != 400 || !strings.Contains(body, "Unknown application") {
			t.Errorf("1 s after its deletion, the client at /authorize on %s: %d, want 400 Unknown application", r.name, status)
		}
		if status, e := tokenStatus(r.g); status != 401 || e != "invalid_client" {
			t.Errorf("1 s after its deletion, the client at /token on %s: %d %s, want 401 invalid_client", r.name, status, e)
		}
	}
}
