package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// SEC-128: what one assertion can cost in verifications against a set of
// the client's own choosing is bounded by their cost, not only by their
// number: MaxKeys of the cheap kinds (Ed25519, P-256, RSA up to 2048
// bits), fewer of the costly ones, and always two. A P-521 verification
// takes some 30 times a P-256 one: MaxKeys of them were some 16 ms of CPU
// for one made-up ES512 assertion without kid. Fails before this change:
// 16 P-521 keys were tried.
func TestSEC128_VerificationsBoundedByCost(t *testing.T) {
	k := keysFor(t)
	ecKey := func(c elliptic.Curve) *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	rsa4096, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		t.Fatal(err)
	}
	p521 := ecKey(elliptic.P521())
	for _, tt := range []struct {
		alg  jose.SignatureAlgorithm
		key  jose.JSONWebKey
		want int
	}{
		{jose.EdDSA, public(k.ed, "", ""), MaxKeys},
		{jose.ES256, public(k.p256, "", ""), MaxKeys},
		{jose.RS256, public(k.rsa, "", ""), MaxKeys},
		{jose.PS512, public(rsa4096, "", ""), MaxKeys / 2},
		{jose.ES384, public(k.p384, "", ""), MaxKeys / 4},
		{jose.ES512, public(p521, "", ""), 2},
	} {
		set := keySet(slices.Repeat([]jose.JSONWebKey{tt.key}, 2*MaxKeys)...)
		if got := len(candidates(set, jose.Header{Algorithm: string(tt.alg)})); got != tt.want {
			t.Errorf("%s without kid, %d keys of its type: %d tried, want %d", tt.alg, 2*MaxKeys, got, tt.want)
		}
	}
	// A client that signs with ES512 and no kid may still rotate its key.
	signer := ecKey(elliptic.P521())
	token := sign(t, jose.ES512, signer, "", claims(nil))
	if _, err := Verify(token, keySet(public(p521, "", ""), public(signer, "", "")), expected()); err != nil {
		t.Fatalf("ES512 without kid, the second P-521 key of the set: %v", err)
	}
}
