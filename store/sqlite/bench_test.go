package sqlite

import (
	"encoding/binary"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// Every iteration commits twice with synchronous=FULL, so these measure the
// disk's fsync as much as the code. Run with -benchtime to taste.

var benchUser = identity.User{ID: "github:583231", Upstream: "github", Username: "octocat", Groups: []string{"staff"}}

func key(prefix byte, n uint64) []byte {
	h := make([]byte, 32)
	h[0] = prefix
	binary.BigEndian.PutUint64(h[24:], n)
	return h
}

func benchStore(b *testing.B) *Store {
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func codeRound(b *testing.B, s *Store, n uint64, now time.Time) {
	c := &store.Code{
		Hash: key('c', n), ClientID: "client", RedirectURI: "https://app.example/cb",
		CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Resource: "https://mcp.example/mcp",
		Scopes: []string{"mcp:read"}, User: benchUser, GrantID: "grant", ExpiresAt: now.Add(time.Minute),
	}
	if err := s.CreateCode(b.Context(), c); err != nil {
		b.Fatal(err)
	}
	if _, err := s.ConsumeCode(b.Context(), c.Hash, now); err != nil {
		b.Fatal(err)
	}
}

func grantRound(b *testing.B, s *Store, n uint64, now time.Time) {
	g := &store.Grant{ID: string(key('g', n)), ClientID: "client", User: benchUser,
		Resource: "https://mcp.example/mcp", Scopes: []string{"mcp:read"}, CreatedAt: now}
	rt := &store.RefreshToken{Hash: key('r', n), Generation: 1, Scopes: g.Scopes, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateGrant(b.Context(), g, rt); err != nil {
		b.Fatal(err)
	}
	next := &store.RefreshToken{Hash: key('R', n), Scopes: g.Scopes, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, _, err := s.RotateRefresh(b.Context(), rt.Hash, next, nil, now, 0); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkCreateConsumeCode(b *testing.B) {
	s, now := benchStore(b), time.Now()
	var n uint64
	for b.Loop() {
		n++
		codeRound(b, s, n, now)
	}
}

func BenchmarkCreateConsumeCodeParallel(b *testing.B) {
	s, now := benchStore(b), time.Now()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			codeRound(b, s, n.Add(1), now)
		}
	})
}

func BenchmarkCreateGrantRotateRefresh(b *testing.B) {
	s, now := benchStore(b), time.Now()
	var n uint64
	for b.Loop() {
		n++
		grantRound(b, s, n, now)
	}
}

func BenchmarkCreateGrantRotateRefreshParallel(b *testing.B) {
	s, now := benchStore(b), time.Now()
	var n atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			grantRound(b, s, n.Add(1), now)
		}
	})
}
