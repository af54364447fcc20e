package sqlite

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// Every iteration commits twice with synchronous=FULL, so these measure the
// disk's fsync as much as the code. Run with -benchtime to taste.

var benchUser = identity.User{ID: "github:583231", Upstream: "github", Username: "octocat", Groups: []string{"staff"}}

// key is a SHA-256, as the gateway stores its secrets: keys land at
// random places in the B-trees, as they do in production.
func key(prefix byte, n uint64) []byte {
	var b [9]byte
	b[0] = prefix
	binary.BigEndian.PutUint64(b[1:], n)
	h := sha256.Sum256(b[:])
	return h[:]
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
	if _, err := s.ConsumeCode(b.Context(), c.Hash, c.CodeChallenge, now); err != nil {
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

// The store's share of a full authorization-code flow: CreateCode at
// /authorize, ConsumeCode and CreateGrant at /token; 64 callers at once,
// as many as the HTTP harness's workers, so that group commit has company.
func BenchmarkFlowWrites64(b *testing.B) {
	s, now := benchStore(b), time.Now()
	var n atomic.Uint64
	b.SetParallelism(32) // × GOMAXPROCS 2
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			codeRound(b, s, i, now)
			g := &store.Grant{ID: string(key('g', i)), ClientID: "client", User: benchUser,
				Resource: "https://mcp.example/mcp", Scopes: []string{"mcp:read"}, CreatedAt: now}
			rt := &store.RefreshToken{Hash: key('r', i), Generation: 1, Scopes: g.Scopes, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := s.CreateGrant(b.Context(), g, rt); err != nil {
				b.Fatal(err)
			}
		}
	})
	reportCommits(b, s)
}

// Refresh rotations: each of 64 callers rotates its own chain, recording
// a successor of the size the gateway seals (a token response with an
// access token: about 1.1 KiB), or none.
func BenchmarkRotateRefresh64(b *testing.B) {
	for _, size := range []int{0, 1100} {
		b.Run(fmt.Sprintf("successor=%d", size), func(b *testing.B) { rotateRefresh64(b, size) })
	}
}

func rotateRefresh64(b *testing.B, successorSize int) {
	s, now := benchStore(b), time.Now()
	var chains atomic.Uint64
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		c := chains.Add(1)
		g := &store.Grant{ID: string(key('g', c)), ClientID: "client", User: benchUser,
			Resource: "https://mcp.example/mcp", Scopes: []string{"mcp:read"}, CreatedAt: now}
		cur := key('r', c<<32)
		if err := s.CreateGrant(b.Context(), g, &store.RefreshToken{Hash: cur, Generation: 1, Scopes: g.Scopes, CreatedAt: now}); err != nil {
			b.Fatal(err)
		}
		var successor []byte
		if successorSize > 0 {
			successor = make([]byte, successorSize)
		}
		for i := uint64(1); pb.Next(); i++ {
			next := &store.RefreshToken{Hash: key('r', c<<32|i), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if _, _, err := s.RotateRefresh(b.Context(), cur, next, successor, now, 30*time.Second); err != nil {
				b.Fatal(err)
			}
			cur = next.Hash
		}
	})
	reportCommits(b, s)
}

func reportCommits(b *testing.B, s *Store) {
	st := s.Stats()
	b.ReportMetric(float64(st.Commits)/float64(b.N), "commits/op")
	if st.Commits > 0 {
		b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/commit")
	}
	b.ReportMetric(float64(pagesWritten(b, s))/float64(b.N), "pages/op")
}

// pagesWritten is the number of pages the write connection has written
// (to the WAL) since it opened.
func pagesWritten(b *testing.B, s *Store) int {
	c, err := s.w.Conn(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var n int
	err = c.Raw(func(dc any) error {
		var err error
		n, _, err = dc.(msqlite.DBStatus).Status(msqlite.DBStatusCacheWrite, false)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// One client assertion's use counted (SEC-129): a new key each time, as
// every assertion has a jti of its own, so each is an insert; one caller,
// then 64 at once, whose commits group.
func BenchmarkAddRateHit(b *testing.B) {
	count := func(b *testing.B, s *Store, n uint64, now time.Time) {
		if _, err := s.AddRateHit(b.Context(), fmt.Sprintf("client assertion %x", key('a', n)), time.Unix(0, 0), now.Add(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("callers=1", func(b *testing.B) {
		s, now := benchStore(b), time.Now()
		var n uint64
		for b.Loop() {
			n++
			count(b, s, n, now)
		}
	})
	b.Run("callers=64", func(b *testing.B) {
		s, now := benchStore(b), time.Now()
		var n atomic.Uint64
		b.SetParallelism(32) // × GOMAXPROCS 2
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				count(b, s, n.Add(1), now)
			}
		})
		reportCommits(b, s)
	})
}
