package assertion

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// fixedKeys are keys every fuzz worker process derives alike, so that a
// seed signed in one verifies in all.
func fixedKeys(t testing.TB) (ed25519.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	ed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	scalar := sha256.Sum256([]byte("mcpgate assertion fuzz P-256 key"))
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar[:])
	if err != nil {
		t.Fatal(err)
	}
	return ed, ec
}

// signEd signs the header and payload, as they are, with key: the fuzzer
// chooses the claims and header of a token with a good signature.
func signEd(key ed25519.PrivateKey, header, payload []byte) string {
	input := b64(header) + "." + b64(payload)
	return input + "." + b64(ed25519.Sign(key, []byte(input)))
}

// FuzzVerify (SEC-128): whatever the token, Verify does not panic, returns
// either a result or an error, never go-jose's internal text, and accepts
// only a token whose claims keep every rule: iss and sub the client, aud
// naming an expected audience, exp present and within bounds, nbf and iat
// not ahead, jti present and short. Beside the token as it comes, the
// fuzzed header and payload are signed with a key of the set, so that the
// claim checks are reached and not only the signature's.
func FuzzVerify(f *testing.F) {
	ed, ec := fixedKeys(f)
	keys := keySet(public(ed, "ed", ""), public(ec, "ec", "ES256"))
	want := expected()
	edHeader := []byte(`{"alg":"EdDSA","kid":"ed"}`)
	payload := func(edit func(map[string]any)) []byte { return mustJSON(f, claims(edit)) }
	valid := sign(f, jose.EdDSA, ed, "ed", claims(nil))
	validEC := sign(f, jose.ES256, ec, "ec", claims(nil))
	for _, tok := range []string{valid, validEC} {
		if _, err := Verify(tok, keys, want); err != nil {
			f.Fatalf("a valid seed is refused: %v", err)
		}
	}
	parts := strings.Split(valid, ".")
	for _, tok := range []string{
		valid,
		validEC,
		"",
		"a.b.c",
		b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		b64([]byte(`{"alg":"HS256","kid":"ed"}`)) + "." + parts[1] + "." + parts[2],
		`{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		parts[0] + "." + parts[1] + "=." + parts[2],
	} {
		f.Add(tok, edHeader, payload(nil))
	}
	for _, edit := range []func(map[string]any){
		func(c map[string]any) { c["aud"] = []string{"x", testIssuer + "/token"} },
		func(c map[string]any) { c["exp"] = "soon" },
		func(c map[string]any) { c["exp"] = 1e300 },
		func(c map[string]any) { c["exp"] = -9.2e18 },
		func(c map[string]any) { c["nbf"] = 9.2e18 },
		func(c map[string]any) { c["iat"] = float64(t0.Unix()) + 59.5 },
		func(c map[string]any) { c["exp"] = float64(t0.Add(MaxLifetime+Leeway).Unix()) + 0.9 },
		func(c map[string]any) { c["jti"] = strings.Repeat("j", maxJTI) },
		func(c map[string]any) { c["iss"] = "https://evil.example" },
		func(c map[string]any) { delete(c, "sub"); c["SUB"] = testClient },
		func(c map[string]any) { c["aud"] = 7 },
	} {
		f.Add("", edHeader, payload(edit))
	}
	f.Add("", []byte(`{"alg":"EdDSA"}`), []byte(`{"iss":"`+testClient+`","iss":"x"}`))
	f.Add("", []byte(`{"alg":"EdDSA","crit":["b64"],"b64":false}`), payload(nil))
	f.Add("", []byte(`{"alg":"ES256","kid":"ed"}`), payload(nil))

	f.Fuzz(func(t *testing.T, token string, header, payload []byte) {
		checkVerify(t, token, keys, want)
		checkVerify(t, signEd(ed, header, payload), keys, want)
	})
}

// checkVerify verifies token and checks what FuzzVerify says of the result.
func checkVerify(t *testing.T, token string, keys *jose.JSONWebKeySet, want Expected) {
	t.Helper()
	v, err := Verify(token, keys, want)
	if err != nil {
		if v != nil {
			t.Fatalf("Verify returned %+v with its error %q", v, err)
		}
		if strings.Contains(err.Error(), "go-jose") {
			t.Fatalf("Verify's error shows the library's text: %q", err)
		}
		return
	}
	if v == nil {
		t.Fatalf("Verify returned neither a result nor an error for %q", token)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("Verify accepted %q, which is not three parts", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		t.Fatalf("Verify accepted %q, whose payload is not base64url: %v", token, err)
	}
	// Decoded apart from go-jose, case-sensitive as JWT claim names are.
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("Verify accepted claims that are not a JSON object: %q", raw)
	}
	str := func(name string) (string, bool) {
		var s string
		return s, json.Unmarshal(c[name], &s) == nil && c[name] != nil
	}
	num := func(name string) (float64, bool) {
		var n float64
		return n, json.Unmarshal(c[name], &n) == nil && c[name] != nil
	}
	if iss, _ := str("iss"); iss != want.ClientID {
		t.Errorf("Verify accepted iss %s, want %q", c["iss"], want.ClientID)
	}
	if sub, _ := str("sub"); sub != want.ClientID {
		t.Errorf("Verify accepted sub %s, want %q", c["sub"], want.ClientID)
	}
	var auds []string
	if aud, ok := str("aud"); ok {
		auds = []string{aud}
	} else if json.Unmarshal(c["aud"], &auds) != nil {
		t.Errorf("Verify accepted aud %s, neither a string nor an array of strings", c["aud"])
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(want.Audiences, a) }) {
		t.Errorf("Verify accepted aud %s, which names none of %q", c["aud"], want.Audiences)
	}
	// A fraction of a second is dropped by NumericDate: allow one second.
	now := float64(want.Now.Unix())
	exp, ok := num("exp")
	switch {
	case !ok:
		t.Errorf("Verify accepted exp %s, not a number", c["exp"])
	case exp < now-Leeway.Seconds()-1 || exp > now+(MaxLifetime+Leeway).Seconds()+1:
		t.Errorf("Verify accepted exp %v, %v s from now", exp, exp-now)
	case v.Expiry.Sub(want.Now) < -Leeway || v.Expiry.Sub(want.Now) > MaxLifetime+Leeway:
		t.Errorf("Verify returned expiry %v for exp %v", v.Expiry, exp)
	}
	for _, name := range []string{"nbf", "iat"} {
		if c[name] == nil {
			continue
		}
		if n, ok := num(name); !ok || n > now+Leeway.Seconds()+1 {
			t.Errorf("Verify accepted %s %s, %v s ahead", name, c[name], n-now)
		}
	}
	if jti, _ := str("jti"); jti == "" || len(jti) > maxJTI || jti != v.ID {
		t.Errorf("Verify accepted jti %s and returned %q", c["jti"], v.ID)
	}
}

// FuzzParseKeySet (SEC-128): whatever the bytes, ParseKeySet does not
// panic, and a set it accepts holds at least one key, each valid, public,
// for signing and, if RSA, of 2048 bits at least.
func FuzzParseKeySet(f *testing.F) {
	ed, ec := fixedKeys(f)
	k := keysFor(f)
	set := func(keys ...jose.JSONWebKey) []byte { return mustJSON(f, jose.JSONWebKeySet{Keys: keys}) }
	for _, seed := range [][]byte{
		set(public(k.rsa, "r1", "RS256")),
		set(public(k.rsa, "r1", "RS256"), public(ec, "e1", "ES256"), public(k.p384, "e2", ""), jose.JSONWebKey{Key: ed.Public()}),
		set(jose.JSONWebKey{Key: k.rsa, KeyID: "r1"}),
		set(jose.JSONWebKey{Key: ec}),
		set(jose.JSONWebKey{Key: ed}),
		set(jose.JSONWebKey{Key: ed.Public(), Use: "enc"}),
		set(public(k.rsa1024, "r1", "")),
		[]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`),
		[]byte(`{"keys":[]}`),
		[]byte(`{"keys":[{"kty":"XYZ"}]}`),
		[]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`),
		[]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AQ","y":"AQ"}]}`),
		[]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AQ"}]}`),
		[]byte(`null`),
		[]byte(`<html>`),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseKeySet(b)
		if err != nil {
			if set != nil {
				t.Fatalf("ParseKeySet returned a set with its error %q", err)
			}
			if strings.Contains(err.Error(), "go-jose") {
				t.Fatalf("ParseKeySet's error shows the library's text: %q", err)
			}
			return
		}
		if set == nil || len(set.Keys) == 0 {
			t.Fatalf("ParseKeySet accepted %q without a key", b)
		}
		for i, key := range set.Keys {
			switch {
			case !key.Valid():
				t.Errorf("key %d of an accepted set is not valid: %q", i+1, b)
			case !key.IsPublic():
				t.Errorf("key %d of an accepted set is private: %q", i+1, b)
			case key.Use != "" && key.Use != "sig":
				t.Errorf("key %d of an accepted set is for use %q", i+1, key.Use)
			}
			if pub, ok := key.Key.(*rsa.PublicKey); ok && pub.N.BitLen() < minRSABits {
				t.Errorf("key %d of an accepted set is RSA of %d bits", i+1, pub.N.BitLen())
			}
		}
	})
}
