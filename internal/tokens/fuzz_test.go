package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzVerify: Verify never panics, fails only with ErrInvalidToken, and
// accepts no token but the one the keyset minted. The keyset is built from
// a fixed key so that every fuzz worker process mints the same token.
func FuzzVerify(f *testing.F) {
	ks := fixedKeyset(f)
	valid := mint(f, ks, testClaims())
	payload, err := json.Marshal(wirePayload())
	if err != nil {
		f.Fatal(err)
	}
	noneHeader := b64([]byte(`{"alg":"none","kid":"test-kid","typ":"at+jwt"}`))
	hsHeader := b64([]byte(`{"alg":"HS256","kid":"test-kid","typ":"at+jwt"}`))
	m := hmac.New(sha256.New, ks.keys[testKid])
	m.Write([]byte(hsHeader + "." + b64(payload)))

	f.Add(valid)
	f.Add("garbage")
	f.Add("a.b.c")
	f.Add("")
	f.Add(noneHeader + "." + b64(payload) + ".")
	f.Add(hsHeader + "." + b64(payload) + "." + b64(m.Sum(nil)))
	f.Add(`{"payload":"e30","protected":"eyJhbGciOiJFZERTQSJ9","signature":""}`)

	cached := NewVerifier(ks, VerifierOptions{Now: fixedNow(t0), CacheSize: 256})
	uncached := NewVerifier(ks, VerifierOptions{Now: fixedNow(t0), CacheSize: -1})
	if _, err := uncached.Verify(valid, issuer, resource); err != nil {
		f.Fatalf("the valid seed does not verify: %v", err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, v := range []*Verifier{uncached, cached} {
			c, err := v.Verify(token, issuer, resource)
			if err != nil {
				if !errors.Is(err, ErrInvalidToken) || c != nil {
					t.Fatalf("error %v, claims %v", err, c)
				}
				continue
			}
			if token != valid {
				t.Fatalf("accepted a token the keyset did not mint: %q", token)
			}
			if c.Subject != "github:583231" || c.Audience != resource {
				t.Fatalf("claims %+v", c)
			}
		}
	})
}
