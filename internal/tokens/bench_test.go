package tokens

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// Figures for the docs: run
//
//	go test -run=NONE -bench=. -benchmem ./internal/tokens
//
// The token is testClaims: a full profile with two scopes and two groups.

func benchSetup(b *testing.B, cacheSize int) (*Verifier, *Keyset, string) {
	ks, _ := newTestKeyset(b)
	tok := mint(b, ks, testClaims())
	v := NewVerifier(ks, VerifierOptions{Now: fixedNow(t0.Add(time.Minute)), CacheSize: cacheSize})
	if _, err := v.Verify(tok, issuer, resource); err != nil {
		b.Fatal(err)
	}
	return v, ks, tok
}

// A token seen before: SHA-256 of the token, a read-locked shard lookup,
// exp/iss/aud checks and a copy of the claims. No signature work.
func BenchmarkVerifyCached(b *testing.B) {
	v, _, tok := benchSetup(b, 0)
	before := v.sigChecks.Load()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(tok, issuer, resource); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if v.sigChecks.Load() != before {
		b.Fatal("cached path verified a signature")
	}
	b.ReportMetric(float64(len(tok)), "token-bytes")
}

// A hit costs the same for a large token: the cache key hashes only the
// signature segment. Here 60 groups, about 4 KiB.
func BenchmarkVerifyCachedLargeToken(b *testing.B) {
	ks, _ := newTestKeyset(b)
	c := testClaims()
	for i := range 60 {
		c.User.Groups = append(c.User.Groups, fmt.Sprintf("example-org/team-%02d-with-a-longish-name", i))
	}
	tok := mint(b, ks, c)
	v := NewVerifier(ks, VerifierOptions{Now: fixedNow(t0.Add(time.Minute))})
	if _, err := v.Verify(tok, issuer, resource); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := v.Verify(tok, issuer, resource); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tok)), "token-bytes")
}

// Every call does the full check: parse, Ed25519 signature, claims. The
// cache is disabled, and the benchmark asserts one signature check per call.
func BenchmarkVerifyUncached(b *testing.B) {
	v, _, tok := benchSetup(b, -1)
	before := v.sigChecks.Load()
	n := int64(0)
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(tok, issuer, resource); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.StopTimer()
	if got := v.sigChecks.Load() - before; got != n {
		b.Fatalf("%d signature checks for %d calls", got, n)
	}
}

// Concurrent cached checks. "one-token": every goroutine presents the same
// token (one shard, the worst case for the shard lock); "1024-tokens": a
// spread of users, as on a busy gateway.
func BenchmarkVerifyCachedParallel(b *testing.B) {
	b.Run("one-token", func(b *testing.B) {
		v, _, tok := benchSetup(b, 0)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(tok, issuer, resource); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("1024-tokens", func(b *testing.B) {
		v, ks, _ := benchSetup(b, 0)
		toks := make([]string, 1024)
		c := testClaims()
		for i := range toks {
			c.ID = fmt.Sprint("jti-", i)
			toks[i] = mint(b, ks, c)
			if _, err := v.Verify(toks[i], issuer, resource); err != nil {
				b.Fatal(err)
			}
		}
		before := v.sigChecks.Load()
		var seq atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 97
			for pb.Next() {
				i++
				if _, err := v.Verify(toks[i&1023], issuer, resource); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		if v.sigChecks.Load() != before {
			b.Fatal("cached path verified a signature")
		}
	})
}

func BenchmarkMint(b *testing.B) {
	ks, _ := newTestKeyset(b)
	c := testClaims()
	for b.Loop() {
		if _, err := ks.Mint(c); err != nil {
			b.Fatal(err)
		}
	}
}
