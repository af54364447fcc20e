package assertion

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"runtime"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// certifiedKeySet is a JWK Set of at most maxBytes whose every key carries
// its certificate (x5c), as a set may.
func certifiedKeySet(t *testing.T, maxBytes int) []byte {
	t.Helper()
	var keys []jose.JSONWebKey
	var out []byte
	for {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client"}, NotBefore: t0, NotAfter: t0.AddDate(1, 0, 0)}
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, k.Public(), k)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, jose.JSONWebKey{Key: k.Public(), Certificates: []*x509.Certificate{cert}, KeyID: "k", Use: "sig"})
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > maxBytes {
			return out
		}
		out = b
	}
}

// SEC-128: a parsed key set keeps the public keys and what selects them,
// not the certificates of x5c, which nothing checks: parsed, those take
// five times the bytes a set may be, and a cache of 1,000 sets from
// anyone's jwks_uri held 170 MB. Fails before this change: a 32 KiB set
// of certified keys held about 170 KB once parsed.
func TestSEC128_ParseKeySetKeepsOnlyKeys(t *testing.T) {
	raw := certifiedKeySet(t, 32<<10)
	set, err := ParseKeySet(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range set.Keys {
		if len(k.Certificates) != 0 || k.KeyID != "k" || k.Use != "sig" || !k.IsPublic() {
			t.Fatalf("key %d = %+v, want its public key, kid and use without certificates", i, k)
		}
	}
	before := liveHeap()
	sets := make([]*jose.JSONWebKeySet, 100)
	for i := range sets {
		if sets[i], err = ParseKeySet(raw); err != nil {
			t.Fatal(err)
		}
	}
	per := (int64(liveHeap()) - int64(before)) / int64(len(sets))
	runtime.KeepAlive(sets)
	if per > int64(len(raw)) {
		t.Fatalf("a parsed set of %d bytes holds %d bytes, want no more than its size", len(raw), per)
	}
}

// SEC-128: what a client's own set can cost in verifications is bounded
// by the modulus (at most 4096 bits) and by the exponent: an RSA key whose
// exponent is over 65537 is left out. With e = 2^31-1, the largest Go
// verifies with, each of MaxKeys verifications of a 4096-bit key costs
// 2.6 times as much, some 12 ms of CPU for one made-up assertion. Fails
// before this change: the key of exponent 2^31-1 was kept.
func TestSEC128_ParseKeySetLeavesOutLargeRSAExponents(t *testing.T) {
	n := keysFor(t).rsa.N
	for _, tt := range []struct {
		e    int
		keep bool
	}{{3, true}, {65537, true}, {65539, false}, {1<<31 - 1, false}} {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &rsa.PublicKey{N: n, E: tt.e}, KeyID: "big-e", Use: "sig"},
			public(keysFor(t).p256, "ec", ""),
		}})
		if err != nil {
			t.Fatal(err)
		}
		set, err := ParseKeySet(b)
		if err != nil {
			t.Fatalf("e=%d: %v", tt.e, err)
		}
		if kept := len(set.Key("big-e")) == 1; kept != tt.keep {
			t.Errorf("RSA key with e=%d kept: %v, want %v", tt.e, kept, tt.keep)
		}
	}
}

// liveHeap is the heap in use once the collector has run: what the values
// still referenced hold.
func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
