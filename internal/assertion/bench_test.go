package assertion

import (
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkVerify is what checking one client assertion costs the token
// endpoint, by algorithm: with a kid, the one key it names; without one
// (as the TypeScript SDK sends it), each key of the set in turn, here the
// right one last of two. Figures: docs/benchmarks.md, "Client assertions".
func BenchmarkVerify(b *testing.B) {
	k := keysFor(b)
	for _, tc := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		set  *jose.JSONWebKeySet
		kid  string
	}{
		{"RS256", jose.RS256, k.rsa, keySet(public(k.rsa, "r1", "")), "r1"},
		{"RS256/no-kid-second-of-two", jose.RS256, k.rsa, keySet(public(k.rsaOther, "r0", ""), public(k.rsa, "r1", "")), ""},
		{"ES256", jose.ES256, k.p256, keySet(public(k.p256, "e1", "")), "e1"},
		{"EdDSA", jose.EdDSA, k.ed, keySet(public(k.ed, "d1", "")), "d1"},
	} {
		token := sign(b, tc.alg, tc.key, tc.kid, claims(nil))
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Verify(token, tc.set, expected()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
