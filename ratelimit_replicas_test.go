package mcpgate_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/store/postgres"
)

// Registrations from one address are limited per address across every
// replica sharing the store: spread over two gateways they are refused at
// the limit, not at twice it, and the next window admits them again.
func TestDCR_RateLimitAcrossReplicas(t *testing.T) {
	for _, backend := range []string{"memory", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			var a, b store.Store
			switch backend {
			case "memory":
				a = memory.New()
				b = a
			case "postgres":
				dsn := pgtest.Start(t)
				for _, p := range []*store.Store{&a, &b} {
					s, err := postgres.Open(t.Context(), dsn)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { s.Close() })
					*p = s
				}
			}
			ga := newGateway(t, func(c *mcpgate.Config) { c.Store = a })
			gb := newGateway(t, func(c *mcpgate.Config) { c.Store = b })
			// Both replicas' clocks at one instant, early in a minute: the
			// in-process limiters refill nothing meanwhile.
			at := time.Now().Truncate(time.Minute).Add(time.Second)
			for _, g := range []*gw{ga, gb} {
				g.clock.Advance(at.Sub(g.clock.Now()))
			}
			const limit, tries = 20, 60 // the default RegistrationRate
			accepted := func() int {
				n := 0
				for i := range tries {
					g := []*gw{ga, gb}[i%2]
					resp, body := g.do(jsonReq(t, g.url+"/register", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`))
					switch resp.StatusCode {
					case http.StatusCreated:
						n++
					case http.StatusTooManyRequests:
						if resp.Header.Get("Retry-After") == "" {
							t.Errorf("429 without Retry-After: %s", body)
						}
					default:
						t.Fatalf("registration %d: %d %s, want 201 or 429", i, resp.StatusCode, body)
					}
				}
				return n
			}
			if n := accepted(); n != limit {
				t.Errorf("%d of %d registrations from one address across two replicas accepted, want the limit, %d", n, tries, limit)
			}
			for _, g := range []*gw{ga, gb} {
				g.clock.Advance(time.Minute)
			}
			if n := accepted(); n != limit {
				t.Errorf("a minute later %d of %d registrations accepted, want %d again", n, tries, limit)
			}
		})
	}
}
