package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	testClient = "https://app.example/oauth/client.json"
	testIssuer = "https://gw.example"
)

// t0 is the time every check runs at.
var t0 = time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)

// testKeys are the clients' private keys, made once: RSA takes a while.
type testKeys struct {
	rsa, rsaOther, rsa1024 *rsa.PrivateKey
	p256, p384             *ecdsa.PrivateKey
	ed                     ed25519.PrivateKey
}

var makeKeys = sync.OnceValues(func() (*testKeys, error) {
	var k testKeys
	var err error
	if k.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsaOther, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	if k.rsa1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
		return nil, err
	}
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return &k, nil
})

func keysFor(t testing.TB) *testKeys {
	t.Helper()
	k, err := makeKeys()
	if err != nil {
		t.Fatalf("generating test keys: %v", err)
	}
	return k
}

// public returns the JWK of key's public half.
func public(key crypto.Signer, kid, alg string) jose.JSONWebKey {
	return jose.JSONWebKey{Key: key.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
}

func keySet(keys ...jose.JSONWebKey) *jose.JSONWebKeySet {
	return &jose.JSONWebKeySet{Keys: keys}
}

// claims are an assertion's claims that Verify accepts at t0, changed by
// edit.
func claims(edit func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": testClient,
		"sub": testClient,
		"aud": testIssuer,
		"exp": t0.Add(5 * time.Minute).Unix(),
		"iat": t0.Unix(),
		"jti": "3f0c6a52-8d1e-4b7a-9c55-0f5b2e1d7a10",
	}
	if edit != nil {
		edit(c)
	}
	return c
}

func expected() Expected {
	return Expected{ClientID: testClient, Audiences: []string{testIssuer, testIssuer + "/token"}, Now: t0}
}

// sign returns the compact JWS of c by key with alg; its header names kid
// unless kid is "".
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, c any) string {
	t.Helper()
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if kid != "" {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: kid}
	}
	s, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatalf("signer for %s: %v", alg, err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatalf("signing with %s: %v", alg, err)
	}
	return tok
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// mustJSON is v in JSON.
func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signES256WithP384 returns a JWS whose header says ES256 but whose
// signature is by a P-384 key over the SHA-256 of the signing input, as a
// confused signer would make it.
func signES256WithP384(t testing.TB, key *ecdsa.PrivateKey, kid string, c any) string {
	t.Helper()
	input := b64(mustJSON(t, map[string]string{"alg": "ES256", "kid": kid})) + "." + b64(mustJSON(t, c))
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 96)
	r.FillBytes(sig[:48])
	s.FillBytes(sig[48:])
	return input + "." + b64(sig)
}

// SEC-128: the assertions a private_key_jwt client may send are accepted,
// and Verify says which jti and expiry it checked.
func TestVerifyAccepts(t *testing.T) {
	k := keysFor(t)
	exp := t0.Add(5 * time.Minute)
	tests := []struct {
		name  string
		token string
		keys  *jose.JSONWebKeySet
		edit  func(*Expected)
		jti   string
		exp   time.Time
	}{
		{name: "RS256 with kid",
			token: sign(t, jose.RS256, k.rsa, "r1", claims(nil)),
			keys:  keySet(public(k.rsaOther, "r0", ""), public(k.rsa, "r1", "RS256"))},
		{name: "RS256 as the client's metadata names it",
			token: sign(t, jose.RS256, k.rsa, "r1", claims(nil)),
			keys:  keySet(public(k.rsa, "r1", "")),
			edit:  func(e *Expected) { e.Alg = "RS256" }},
		{name: "PS256",
			token: sign(t, jose.PS256, k.rsa, "r1", claims(nil)),
			keys:  keySet(public(k.rsa, "r1", "PS256"))},
		{name: "ES256 with a P-256 key",
			token: sign(t, jose.ES256, k.p256, "e1", claims(nil)),
			keys:  keySet(public(k.p384, "e0", ""), public(k.p256, "e1", ""))},
		{name: "EdDSA without kid, as the TypeScript SDK signs",
			token: sign(t, jose.EdDSA, k.ed, "", claims(nil)),
			keys:  keySet(public(k.rsa, "r1", ""), public(k.p256, "e1", ""), public(k.ed, "ed", ""))},
		// A kid the set does not name falls back on its keys without a
		// kid: a client's signer may name its key where its set does not.
		{name: "a kid, in a set whose keys have none",
			token: sign(t, jose.RS256, k.rsa, "signer-1", claims(nil)),
			keys:  keySet(public(k.rsaOther, "", ""), public(k.rsa, "", ""))},
		{name: "no kid, the second key of the type verifies",
			token: sign(t, jose.RS256, k.rsa, "", claims(nil)),
			keys:  keySet(public(k.rsaOther, "r0", ""), public(k.rsa, "r1", ""))},
		{name: "no kid, the key after MaxKeys keys of another type",
			token: sign(t, jose.EdDSA, k.ed, "", claims(nil)),
			keys:  keySet(append(slices.Repeat([]jose.JSONWebKey{public(k.p256, "", "")}, MaxKeys), public(k.ed, "", ""))...)},
		{name: "aud an array holding the token endpoint",
			token: sign(t, jose.ES256, k.p256, "e1", claims(func(c map[string]any) {
				c["aud"] = []string{"https://elsewhere.example", testIssuer + "/token"}
			})),
			keys: keySet(public(k.p256, "e1", ""))},
		{name: "iat and nbf absent",
			token: sign(t, jose.EdDSA, k.ed, "ed", claims(func(c map[string]any) { delete(c, "iat"); delete(c, "nbf") })),
			keys:  keySet(public(k.ed, "ed", ""))},
		{name: "nbf and iat within the leeway ahead",
			token: sign(t, jose.EdDSA, k.ed, "ed", claims(func(c map[string]any) {
				c["nbf"] = t0.Add(Leeway).Unix()
				c["iat"] = t0.Add(Leeway).Unix()
			})),
			keys: keySet(public(k.ed, "ed", ""))},
		{name: "exp passed but within the leeway",
			token: sign(t, jose.EdDSA, k.ed, "ed", claims(func(c map[string]any) { c["exp"] = t0.Add(-Leeway + time.Second).Unix() })),
			keys:  keySet(public(k.ed, "ed", "")),
			exp:   t0.Add(-Leeway + time.Second)},
		{name: "exp MaxLifetime and Leeway ahead",
			token: sign(t, jose.EdDSA, k.ed, "ed", claims(func(c map[string]any) { c["exp"] = t0.Add(MaxLifetime + Leeway).Unix() })),
			keys:  keySet(public(k.ed, "ed", "")),
			exp:   t0.Add(MaxLifetime + Leeway)},
		{name: "jti of 256 bytes",
			token: sign(t, jose.EdDSA, k.ed, "ed", claims(func(c map[string]any) { c["jti"] = strings.Repeat("j", maxJTI) })),
			keys:  keySet(public(k.ed, "ed", "")),
			jti:   strings.Repeat("j", maxJTI)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := expected()
			if tt.edit != nil {
				tt.edit(&want)
			}
			v, err := Verify(tt.token, tt.keys, want)
			if err != nil {
				t.Fatalf("Verify: %v, want the assertion accepted", err)
			}
			wantJTI, wantExp := claims(nil)["jti"].(string), exp
			if tt.jti != "" {
				wantJTI = tt.jti
			}
			if !tt.exp.IsZero() {
				wantExp = tt.exp
			}
			if v.ID != wantJTI || !v.Expiry.Equal(wantExp) {
				t.Errorf("Verify = {ID: %q, Expiry: %v}, want {ID: %q, Expiry: %v}", v.ID, v.Expiry, wantJTI, wantExp)
			}
		})
	}
}

// SEC-128: every assertion that breaks a rule is refused with a message
// that says which; a signature no key of the set verifies is ErrNoKey, on
// which the caller may fetch the set again.
func TestVerifyRefuses(t *testing.T) {
	k := keysFor(t)
	rsaSet := keySet(public(k.rsa, "r1", ""))
	edSet := keySet(public(k.ed, "ed", ""))
	ed := func(edit func(map[string]any)) string { return sign(t, jose.EdDSA, k.ed, "ed", claims(edit)) }
	valid := ed(nil)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64(mustJSON(t, claims(func(c map[string]any) { c["jti"] = "another" }))) + "." + parts[2]

	jsonSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: k.ed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jsonSigner.Sign(mustJSON(t, claims(nil)))
	if err != nil {
		t.Fatal(err)
	}
	jsonSerialized := jws.FullSerialize()

	unsigned := b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(mustJSON(t, claims(nil))) + "."
	// A client that shares a secret could sign with it; a metadata
	// document cannot share one (CIMD-8), so HMAC is never accepted.
	hmac := sign(t, jose.HS256, []byte("a secret of thirty-two bytes, ok"), "ed", claims(nil))

	const noKey = "no key of the client's key set verifies the client assertion"
	const algs = "the client assertion must be signed with one of [RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 ES512 EdDSA]"
	// A key verified these: the caller must not take them for a key it
	// lacks and fetch the set again.
	const claimsInvalid = "the client assertion's claims are not valid"
	tests := []struct {
		name  string
		token string
		keys  *jose.JSONWebKeySet
		edit  func(*Expected)
		msg   string // in the error
		noKey bool   // errors.Is(err, ErrNoKey)
	}{
		{name: "iss another client", token: ed(func(c map[string]any) { c["iss"] = "https://evil.example/client.json" }),
			msg: "the client assertion's iss is not the client_id"},
		{name: "sub another client", token: ed(func(c map[string]any) { c["sub"] = "https://evil.example/client.json" }),
			msg: "the client assertion's sub is not the client_id"},
		{name: "client unknown", token: valid, edit: func(e *Expected) { e.ClientID = "" },
			msg: "the client is unknown"},
		{name: "aud missing", token: ed(func(c map[string]any) { delete(c, "aud") }),
			msg: "the client assertion's aud does not name this authorization server"},
		{name: "aud another server", token: ed(func(c map[string]any) { c["aud"] = []string{"https://other.example", "https://other.example/token"} }),
			msg: "the client assertion's aud does not name this authorization server"},
		{name: "aud an empty array", token: ed(func(c map[string]any) { c["aud"] = []string{} }),
			msg: "the client assertion's aud does not name this authorization server"},
		{name: "exp missing", token: ed(func(c map[string]any) { delete(c, "exp") }),
			msg: "the client assertion has no exp"},
		{name: "exp past beyond the leeway", token: ed(func(c map[string]any) { c["exp"] = t0.Add(-Leeway).Unix() }),
			msg: "the client assertion has expired"},
		{name: "exp more than MaxLifetime and Leeway ahead", token: ed(func(c map[string]any) { c["exp"] = t0.Add(MaxLifetime + Leeway + time.Second).Unix() }),
			msg: "the client assertion's exp is more than 10m0s ahead"},
		{name: "exp a year ahead", token: ed(func(c map[string]any) { c["exp"] = t0.AddDate(1, 0, 0).Unix() }),
			msg: "the client assertion's exp is more than 10m0s ahead"},
		{name: "nbf in the future beyond the leeway", token: ed(func(c map[string]any) { c["nbf"] = t0.Add(Leeway + time.Second).Unix() }),
			msg: "the client assertion is not valid yet (nbf)"},
		{name: "iat in the future beyond the leeway", token: ed(func(c map[string]any) { c["iat"] = t0.Add(Leeway + time.Second).Unix() }),
			msg: "the client assertion's iat is in the future"},
		{name: "jti missing", token: ed(func(c map[string]any) { delete(c, "jti") }),
			msg: "the client assertion has no jti"},
		{name: "jti empty", token: ed(func(c map[string]any) { c["jti"] = "" }),
			msg: "the client assertion has no jti"},
		{name: "jti over 256 bytes", token: ed(func(c map[string]any) { c["jti"] = strings.Repeat("j", maxJTI+1) }),
			msg: "the client assertion's jti is over 256 bytes"},
		{name: "alg none, unsigned", token: unsigned, msg: algs},
		{name: "HS256, an HMAC by some bytes", token: hmac, msg: algs},
		{name: "exp a string, signed by the client's key", token: ed(func(c map[string]any) { c["exp"] = "soon" }),
			msg: claimsInvalid},
		{name: "aud a number, signed by the client's key", token: ed(func(c map[string]any) { c["aud"] = 7 }),
			msg: claimsInvalid},
		{name: "iss twice, signed by the client's key",
			token: signEd(k.ed, []byte(`{"alg":"EdDSA","kid":"ed"}`), []byte(`{"iss":"`+testClient+`","iss":"https://evil.example"}`)),
			msg:   claimsInvalid},
		{name: "claims an array, signed by the client's key", token: signEd(k.ed, []byte(`{"alg":"EdDSA"}`), []byte(`[]`)),
			msg: claimsInvalid},
		{name: "header alg not the one the metadata names", token: sign(t, jose.RS256, k.rsa, "r1", claims(nil)), keys: rsaSet,
			edit: func(e *Expected) { e.Alg = "PS256" },
			msg:  "the client assertion is signed with RS256; the client's metadata names PS256"},
		{name: "kid not in the set", token: sign(t, jose.RS256, k.rsa, "r9", claims(nil)), keys: rsaSet,
			msg: noKey, noKey: true},
		{name: "signed by another key under the set's kid", token: sign(t, jose.RS256, k.rsaOther, "r1", claims(nil)), keys: rsaSet,
			msg: noKey, noKey: true},
		{name: "signed by another key without kid", token: sign(t, jose.EdDSA, ed25519.NewKeyFromSeed(make([]byte, 32)), "", claims(nil)),
			msg: noKey, noKey: true},
		{name: "the JWK names another alg than the header", token: sign(t, jose.RS256, k.rsa, "r1", claims(nil)),
			keys: keySet(public(k.rsa, "r1", "PS256")),
			msg:  noKey, noKey: true},
		{name: "ES256 header with a P-384 key", token: signES256WithP384(t, k.p384, "e1", claims(nil)),
			keys: keySet(public(k.p384, "e1", "")),
			msg:  noKey, noKey: true},
		{name: "no kid, the key after MaxKeys others of its type", token: sign(t, jose.EdDSA, k.ed, "", claims(nil)),
			keys: keySet(append(slices.Repeat([]jose.JSONWebKey{public(ed25519.NewKeyFromSeed(make([]byte, 32)), "", "")}, MaxKeys), public(k.ed, "", ""))...),
			msg:  noKey, noKey: true},
		{name: "EdDSA header and only RSA keys", token: sign(t, jose.EdDSA, k.ed, "", claims(nil)), keys: rsaSet,
			msg: noKey, noKey: true},
		{name: "tampered payload", token: tampered,
			msg: noKey, noKey: true},
		{name: "signature cut off", token: parts[0] + "." + parts[1] + ".",
			msg: noKey, noKey: true},
		{name: "JWS JSON serialization", token: jsonSerialized,
			msg: "the client assertion is not a signed JWT in compact form"},
		{name: "two parts", token: parts[0] + "." + parts[1],
			msg: "the client assertion is not a signed JWT in compact form"},
		{name: "empty", token: "",
			msg: "the client assertion is not a signed JWT in compact form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := tt.keys
			if keys == nil {
				keys = edSet
			}
			want := expected()
			if tt.edit != nil {
				tt.edit(&want)
			}
			v, err := Verify(tt.token, keys, want)
			if err == nil {
				t.Fatalf("Verify accepted the assertion (jti %q); want an error with %q", v.ID, tt.msg)
			}
			if v != nil {
				t.Errorf("Verify returned %+v with its error; want nil", v)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Verify: %q, want an error with %q", err, tt.msg)
			}
			if errors.Is(err, ErrNoKey) != tt.noKey {
				t.Errorf("errors.Is(%q, ErrNoKey) = %v, want %v", err, !tt.noKey, tt.noKey)
			}
		})
	}
}

// SEC-128: Issuer reads iss before anything is verified, to find the
// client when the request names none; it refuses what Verify cannot parse.
func TestIssuer(t *testing.T) {
	k := keysFor(t)
	tok := sign(t, jose.EdDSA, k.ed, "", claims(nil))
	if iss, err := Issuer(tok); err != nil || iss != testClient {
		t.Errorf("Issuer = %q, %v; want %q", iss, err, testClient)
	}
	if iss, err := Issuer("not.a.jwt"); err == nil {
		t.Errorf("Issuer of a broken token = %q, want an error", iss)
	}
	// The authorization server reads iss first: its refusal is the one the
	// client sees.
	hmac := sign(t, jose.HS256, []byte("a secret of thirty-two bytes, ok"), "", claims(nil))
	const algs = "the client assertion must be signed with one of [RS256"
	if iss, err := Issuer(hmac); err == nil || !strings.Contains(err.Error(), algs) {
		t.Errorf("Issuer of an HS256 token = %q, %v; want an error with %q", iss, err, algs)
	}
}

// SEC-128: a key set is accepted only of public signing keys, RSA ones of
// 2048 bits at least.
func TestParseKeySet(t *testing.T) {
	k := keysFor(t)
	set := func(keys ...jose.JSONWebKey) string {
		return string(mustJSON(t, jose.JSONWebKeySet{Keys: keys}))
	}
	mixed := set(public(k.rsa, "r1", "RS256"), public(k.p256, "e1", "ES256"), public(k.p384, "e2", ""),
		jose.JSONWebKey{Key: k.ed.Public(), KeyID: "ed"})
	accepts := []struct {
		name, set string
		keys      int
	}{
		{"RSA-2048 public key", set(public(k.rsa, "r1", "RS256")), 1},
		{"RSA, EC and OKP public keys", mixed, 4},
		// RFC 7517 §5: keys it cannot use are left out, not the set.
		{"beside keys it cannot use", set(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "enc", Use: "enc"}, public(k.rsa1024, "short", ""),
			public(k.rsa, "r1", "RS256")), 1},
		{"beside an unknown kty and an invalid EC point", `{"keys":[{"kty":"AKP","alg":"ML-DSA-44","pub":"AAAA"},` +
			`{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"},` + strings.TrimPrefix(strings.TrimSuffix(set(public(k.rsa, "r1", "")), "]}"), `{"keys":[`) + `]}`, 1},
	}
	for _, tt := range accepts {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeySet([]byte(tt.set))
			if err != nil {
				t.Fatalf("ParseKeySet: %v, want the set accepted", err)
			}
			if len(got.Keys) != tt.keys {
				t.Errorf("ParseKeySet read %d keys, want %d", len(got.Keys), tt.keys)
			}
		})
	}

	const private = "is private or symmetric key material, which must never be published"
	const noKey = "the key set has no key to verify signatures with"
	// go-jose reads no RSA modulus over 4096 bits: that bounds what MaxKeys
	// verifications of a set the client chose can cost.
	huge := &rsa.PublicKey{N: new(big.Int).Add(new(big.Int).Lsh(big.NewInt(1), 8191), big.NewInt(1)), E: 65537}
	refuses := []struct {
		name, set, msg string
	}{
		{"private RSA key", set(jose.JSONWebKey{Key: k.rsa, KeyID: "r1"}), "key 1 of the key set " + private},
		{"private EC key after a public one", set(public(k.rsa, "r1", ""), jose.JSONWebKey{Key: k.p256, KeyID: "e1"}),
			"key 2 of the key set " + private},
		{"private OKP key", set(jose.JSONWebKey{Key: k.ed, KeyID: "ed"}), "key 1 of the key set " + private},
		{"oct key", `{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","alg":"HS256"}]}`, "key 1 of the key set " + private},
		{"private RSA key given by its primes only", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","p":"AQ"}]}`, "key 1 of the key set " + private},
		{"only a key for use enc", set(jose.JSONWebKey{Key: k.rsa.Public(), KeyID: "r1", Use: "enc"}), noKey},
		{"only RSA-1024", set(public(k.rsa1024, "r1", "")), noKey},
		{"only RSA over 4096 bits", set(jose.JSONWebKey{Key: huge}), noKey},
		{"empty keys array", `{"keys":[]}`, noKey},
		{"no keys member", `{}`, noKey},
		{"a key that is not an object", `{"keys":["RSA"]}`, "the key set is not a valid JWK Set"},
		{"not JSON", `<html>not found</html>`, "the key set is not a valid JWK Set"},
		{"keys not an array", `{"keys":{"kty":"OKP"}}`, "the key set is not a valid JWK Set"},
		{"only an unknown kty", `{"keys":[{"kty":"XYZ","x":"AAAA"}]}`, noKey},
		{"only an EC point off the curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`, noKey},
	}
	for _, tt := range refuses {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeySet([]byte(tt.set))
			if err == nil {
				t.Fatalf("ParseKeySet accepted %d keys, want an error with %q", len(got.Keys), tt.msg)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseKeySet: %q, want an error with %q", err, tt.msg)
			}
		})
	}
}

// SEC-129: the count of an assertion's uses is keyed by its client and
// jti, each client's jti values its own even where the bytes of one
// client_id and jti run on into another's, and is kept past the last
// moment Verify accepts the assertion.
func TestUse(t *testing.T) {
	exp := t0.Add(5 * time.Minute)
	key := func(client, jti string) string {
		k, _ := Use(client, &Verified{ID: jti, Expiry: exp})
		return k
	}
	if a, b := key(testClient, "a"), key(testClient, "a"); a != b {
		t.Errorf("one assertion, two keys: %q and %q", a, b)
	}
	for _, other := range [][2]string{{testClient, "b"}, {"https://other.example/client.json", "a"}, {testClient + "a", ""}} {
		if key(other[0], other[1]) == key(testClient, "a") {
			t.Errorf("client %q with jti %q has the key of %q with %q", other[0], other[1], testClient, "a")
		}
	}
	if k := key(testClient, "a"); len(k) > 100 || strings.Contains(k, "example") {
		t.Errorf("key %q: want a digest, not the client_id and jti", k)
	}
	_, until := Use(testClient, &Verified{ID: "a", Expiry: exp})
	if last := exp.Add(Leeway); !until.After(last) {
		t.Errorf("counted until t0+%v, want past t0+%v, when Verify stops accepting it", until.Sub(t0), last.Sub(t0))
	}
}

// SEC-163 (draft-ietf-oauth-rfc7523bis): an assertion typed
// client-authentication+jwt names the issuer alone as its aud, as a
// string or a one-element array; the token endpoint, or the issuer among
// other audiences, is refused. An untyped one keeps RFC 7523's rules.
func TestVerifyExplicitlyTypedAssertion(t *testing.T) {
	k := keysFor(t)
	set := keySet(public(k.ed, "", ""))
	signTyped := func(typ string, aud any) string {
		sk := jose.SigningKey{Algorithm: jose.EdDSA, Key: k.ed}
		s, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims(func(c map[string]any) { c["aud"] = aud })).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, c := range []struct {
		name, typ string
		aud       any
		ok        bool
	}{
		{"typed, the issuer", ExplicitType, testIssuer, true},
		{"typed, the issuer in a one-element array", ExplicitType, []string{testIssuer}, true},
		{"typed, another case of the typ", "Client-Authentication+JWT", testIssuer, true},
		{"typed, the token endpoint", ExplicitType, testIssuer + "/token", false},
		{"typed in full, the issuer", "application/" + ExplicitType, testIssuer, true},
		{"typed in full, the token endpoint", "Application/" + ExplicitType, testIssuer + "/token", false},
		{"typed, the issuer among others", ExplicitType, []string{testIssuer, "https://elsewhere.example"}, false},
		{"untyped, the token endpoint (RFC 7523)", "JWT", testIssuer + "/token", true},
	} {
		_, err := Verify(signTyped(c.typ, c.aud), set, expected())
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want accepted %v", c.name, err, c.ok)
		}
	}
}
