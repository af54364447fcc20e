package memory_test

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func newStore(t *testing.T) store.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, newStore) }

func TestRefreshSession(t *testing.T) { storetest.RunRefreshSession(t, newStore) }

func TestConcurrency(t *testing.T) { storetest.RunConcurrency(t, newStore) }

func BenchmarkCreateConsumeCode(b *testing.B) {
	s, ctx, now := memory.New(), b.Context(), time.Now()
	var n uint64
	for b.Loop() {
		n++
		h := make([]byte, 32)
		binary.BigEndian.PutUint64(h, n)
		c := &store.Code{Hash: h, ClientID: "client", Scopes: []string{"mcp:read"},
			User: identity.User{ID: "github:1", Groups: []string{"staff"}}, GrantID: "grant", ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateCode(ctx, c); err != nil {
			b.Fatal(err)
		}
		if _, err := s.ConsumeCode(ctx, h, "", now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateGrantRotateRefresh(b *testing.B) {
	s, ctx, now := memory.New(), b.Context(), time.Now()
	var n uint64
	for b.Loop() {
		n++
		h := make([]byte, 32)
		binary.BigEndian.PutUint64(h, n)
		g := &store.Grant{ID: string(h), ClientID: "client", User: identity.User{ID: "github:1"}, Scopes: []string{"mcp:read"}, CreatedAt: now}
		rt := &store.RefreshToken{Hash: h, Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateGrant(ctx, g, rt); err != nil {
			b.Fatal(err)
		}
		next := &store.RefreshToken{Hash: append([]byte{'n'}, h...), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, _, err := s.RotateRefresh(ctx, h, next, nil, now, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// One housekeeping batch (500 deletions, housekeeping's size) in a backlog
// of 200,000 expired rate counters, as a flood of counted client
// assertions leaves (SEC-129), beside 10,000 live grants: each batch must
// stop once it has deleted its 500, not walk every map under the lock.
func BenchmarkDeleteExpiredBatch(b *testing.B) {
	s, ctx, now := memory.New(), b.Context(), time.Now()
	for i := range 10_000 {
		h := make([]byte, 32)
		binary.BigEndian.PutUint64(h, uint64(i))
		g := &store.Grant{ID: string(h), ClientID: "client", User: identity.User{ID: "github:1"}, CreatedAt: now}
		if err := s.CreateGrant(ctx, g, &store.RefreshToken{Hash: h, Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		for ; n < 200_000; n++ {
			if _, err := s.AddRateHit(ctx, "client assertion "+strconv.Itoa(n), time.Unix(0, 0), now.Add(-time.Second)); err != nil {
				b.Fatal(err)
			}
		}
		n -= 500
		b.StartTimer()
		if got, err := s.DeleteExpired(ctx, now, time.Time{}, 500); err != nil || got != 500 {
			b.Fatalf("DeleteExpired: %d, %v; want 500 deleted", got, err)
		}
	}
}
