package tokens

import (
	"testing"
	"time"
)

// Figures for the docs: run
//
//	go test -run=NONE -bench=. -benchmem ./internal/tokens
//
// The token is testClaims: a full profile with two scopes and two groups.
// The resource guard caches what Verify accepted (internal/resource,
// BenchmarkGuardCached); these are the costs of a check it has not seen.

// Every call does the full check: parse, Ed25519 signature, claims.
func BenchmarkVerify(b *testing.B) {
	ks, _ := newTestKeyset(b)
	tok := mint(b, ks, testClaims())
	now := t0.Add(time.Minute)
	for b.Loop() {
		if _, err := ks.Verify(tok, issuer, resource, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(tok)), "token-bytes")
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
