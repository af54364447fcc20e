package storetest

import (
	"testing"

	"github.com/mcpgate/mcpgate/store"
)

// Ping succeeds on a working store, again and again, and leaves nothing
// another verb could see (SEC-13).
func testPing(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create client", s.CreateClient(ctx, newClient("c1")))
	for range 3 {
		must(t, "ping", s.Ping(ctx))
	}
	got, err := s.GetClient(ctx, "c1")
	must(t, "get client after ping", err)
	same(t, "client after ping", got, newClient("c1"))
	expireAll(t, s, t0, t0)
}
