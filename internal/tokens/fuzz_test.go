package tokens

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"testing"
)

// FuzzVerify: Verify and PeekUnverified never panic, Verify fails only
// with ErrInvalidToken and accepts no token but the one the keyset minted,
// whose audience and expiry PeekUnverified reads. The keyset is built from
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
	m := hmac.New(sha256.New, ks.gen().keys[testKid])
	m.Write([]byte(hsHeader + "." + b64(payload)))

	f.Add(valid)
	f.Add("garbage")
	f.Add("a.b.c")
	f.Add("")
	f.Add(noneHeader + "." + b64(payload) + ".")
	f.Add(hsHeader + "." + b64(payload) + "." + b64(m.Sum(nil)))
	f.Add(`{"payload":"e30","protected":"eyJhbGciOiJFZERTQSJ9","signature":""}`)

	if _, err := ks.Verify(valid, issuer, resource, t0); err != nil {
		f.Fatalf("the valid seed does not verify: %v", err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		aud, exp, peeked := PeekUnverified(token)
		c, err := ks.Verify(token, issuer, resource, t0)
		if err != nil {
			if !errors.Is(err, ErrInvalidToken) || c != nil {
				t.Fatalf("error %v, claims %v", err, c)
			}
			return
		}
		if token != valid {
			t.Fatalf("accepted a token the keyset did not mint: %q", token)
		}
		if c.Subject != "github:583231" || c.Audience != resource {
			t.Fatalf("claims %+v, want subject github:583231 and audience %s", c, resource)
		}
		if !peeked || !slices.Contains(aud, resource) || !exp.Equal(c.ExpiresAt) {
			t.Fatalf("PeekUnverified of a valid token: %v %v %v, want %s and %v", aud, exp, peeked, resource, c.ExpiresAt)
		}
	})
}
