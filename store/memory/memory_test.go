package memory_test

import (
	"encoding/binary"
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
		if _, err := s.ConsumeCode(ctx, h, now); err != nil {
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
