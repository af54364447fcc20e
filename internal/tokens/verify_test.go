package tokens

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func wantInvalid(t *testing.T, c *Claims, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("token accepted: %+v, want ErrInvalidToken", c)
	}
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("error %v, want ErrInvalidToken", err)
	}
	if c != nil {
		t.Fatalf("claims returned with error %v, want none", err)
	}
}

func TestMintVerifyRoundTrip(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0.Add(time.Minute))
	in := testClaims()
	tok := mint(t, ks, in)

	header, _, _ := segments(t, tok)
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	if h["alg"] != "EdDSA" || h["typ"] != "at+jwt" || h["kid"] != ks.gen().kid {
		t.Fatalf("header = %s, want alg EdDSA, typ at+jwt, kid %s", header, ks.gen().kid)
	}

	for i := range 2 { // the same answer twice
		got, err := v.Verify(tok, issuer, resource)
		if err != nil {
			t.Fatal(err)
		}
		want := *in
		want.KeyID = ks.gen().kid // the key that verified it
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("pass %d: claims differ\n got %+v\nwant %+v", i, got, &want)
		}
	}
}

func TestMintTruncatesToSeconds(t *testing.T) {
	ks, _ := newTestKeyset(t)
	c := testClaims()
	c.IssuedAt = t0.Add(700 * time.Millisecond)
	c.ExpiresAt = c.IssuedAt.Add(time.Hour)
	got, err := at(ks, t0).Verify(mint(t, ks, c), issuer, resource)
	if err != nil {
		t.Fatal(err)
	}
	if !got.IssuedAt.Equal(t0) || !got.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("iat %v exp %v, want %v and %v (whole seconds)", got.IssuedAt, got.ExpiresAt, t0, t0.Add(time.Hour))
	}
}

func TestMintRejectsIncompleteClaims(t *testing.T) {
	ks, _ := newTestKeyset(t)
	for name, edit := range map[string]func(*Claims){
		"no issuer":     func(c *Claims) { c.Issuer = "" },
		"no subject":    func(c *Claims) { c.Subject, c.User.ID = "", "" },
		"no audience":   func(c *Claims) { c.Audience = "" },
		"no client":     func(c *Claims) { c.ClientID = "" },
		"no jti":        func(c *Claims) { c.ID = "" },
		"sub mismatch":  func(c *Claims) { c.User.ID = "local:mallory" },
		"exp not after": func(c *Claims) { c.ExpiresAt = c.IssuedAt },
		"scope space":   func(c *Claims) { c.Scopes = []string{"a b"} },
	} {
		c := testClaims()
		edit(c)
		if _, err := ks.Mint(c); err == nil {
			t.Errorf("%s: minted, want an error", name)
		}
	}
	c := testClaims()
	c.Subject = "" // taken from User.ID
	if _, err := ks.Mint(c); err != nil {
		t.Fatal(err)
	}
}

// RES-3: a token for another resource is rejected.
func TestVerifyWrongAudience(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	tok := mint(t, ks, testClaims())
	for _, aud := range []string{"https://other.example/mcp", resource + "/", "https://gateway.example", ""} {
		t.Run(aud, func(t *testing.T) {
			c, err := v.Verify(tok, issuer, aud)
			wantInvalid(t, c, err)
		})
	}
}

// RES-3: aud may be an array; it must contain the resource.
func TestVerifyAudienceArray(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	p := wirePayload()
	p["aud"] = []string{"https://a.example", resource}
	tok := signRaw(t, ks, p, typAccessToken)
	c, err := v.Verify(tok, issuer, resource)
	if err != nil {
		t.Fatal(err)
	}
	if c.Audience != resource {
		t.Fatalf("Audience = %q, want %q", c.Audience, resource)
	}
	c, err = v.Verify(tok, issuer, "https://b.example")
	wantInvalid(t, c, err)

	p["aud"] = []string{}
	c, err = v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
	wantInvalid(t, c, err)
}

func TestVerifyWrongIssuer(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	tok := mint(t, ks, testClaims())
	for _, iss := range []string{"https://evil.example", issuer + "/", ""} {
		t.Run(iss, func(t *testing.T) {
			c, err := v.Verify(tok, iss, resource)
			wantInvalid(t, c, err)
		})
	}
}

func TestVerifyExpired(t *testing.T) {
	ks, _ := newTestKeyset(t)
	tok := mint(t, ks, testClaims()) // exp = t0 + 1h
	exp := t0.Add(time.Hour)
	for _, tc := range []struct {
		now time.Time
		ok  bool
	}{
		{exp.Add(-time.Second), true},
		{exp.Add(-time.Nanosecond), true},
		{exp, false}, // RFC 7519 §4.1.4: on or after exp
		{exp.Add(time.Hour), false},
	} {
		t.Run(fmt.Sprintf("exp%+v", tc.now.Sub(exp)), func(t *testing.T) {
			c, err := at(ks, tc.now).Verify(tok, issuer, resource)
			if tc.ok && err != nil {
				t.Errorf("got %v, want the token accepted", err)
			}
			if !tc.ok {
				wantInvalid(t, c, err)
			}
		})
	}
}

func TestVerifyIssuedInTheFuture(t *testing.T) {
	ks, _ := newTestKeyset(t)
	tok := mint(t, ks, testClaims()) // iat = t0
	if _, err := at(ks, t0.Add(-30*time.Second)).Verify(tok, issuer, resource); err != nil {
		t.Fatalf("within the default leeway: %v", err)
	}
	c, err := at(ks, t0.Add(-31*time.Second)).Verify(tok, issuer, resource)
	wantInvalid(t, c, err)

	p := wirePayload()
	p["nbf"] = t0.Add(time.Minute).Unix()
	c, err = at(ks, t0).Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
	wantInvalid(t, c, err)
}

func TestVerifyRequiredClaims(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	if _, err := v.Verify(signRaw(t, ks, wirePayload(), typAccessToken), issuer, resource); err != nil {
		t.Fatalf("baseline: %v", err)
	}
	for _, claim := range []string{"iss", "sub", "aud", "client_id", "jti", "iat", "exp", "gid"} {
		t.Run("no "+claim, func(t *testing.T) {
			p := wirePayload()
			delete(p, claim)
			c, err := v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
			wantInvalid(t, c, err)
		})
	}
	p := wirePayload()
	p["exp"] = "tomorrow"
	c, err := v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
	wantInvalid(t, c, err)
}

// RFC 9068 §4: typ must be at+jwt (an ID token or other JWT of ours is not
// an access token).
func TestVerifyType(t *testing.T) {
	ks := fixedKeyset(t)
	v := at(ks, t0)
	if _, err := v.Verify(signRaw(t, ks, wirePayload(), "application/at+jwt"), issuer, resource); err != nil {
		t.Fatalf("application/at+jwt: %v", err)
	}
	for _, typ := range []string{"JWT", "jwt", "at+jwt2", ""} {
		t.Run("typ "+typ, func(t *testing.T) {
			c, err := v.Verify(signRaw(t, ks, wirePayload(), typ), issuer, resource)
			wantInvalid(t, c, err)
		})
	}
}

func TestVerifyOtherKeyset(t *testing.T) {
	ks := fixedKeyset(t)
	v := at(ks, t0)

	other, _ := newTestKeyset(t) // another key and kid
	c, err := v.Verify(mint(t, other, testClaims()), issuer, resource)
	wantInvalid(t, c, err)

	// Another key under our kid: the signature check, not the kid lookup,
	// must reject it.
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	impostor := keysetFromKey(t, priv, testKid)
	c, err = v.Verify(mint(t, impostor, testClaims()), issuer, resource)
	wantInvalid(t, c, err)
	if !strings.Contains(err.Error(), "signature") {
		t.Fatalf("rejected for %v, want a signature failure", err)
	}
}

func TestVerifyAlgNoneAndHMAC(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	payload, err := json.Marshal(wirePayload())
	if err != nil {
		t.Fatal(err)
	}
	header := func(alg string) string {
		return b64(fmt.Appendf(nil, `{"alg":%q,"kid":%q,"typ":"at+jwt"}`, alg, ks.gen().kid))
	}
	none := header("none") + "." + b64(payload) + "."
	c, err := v.Verify(none, issuer, resource)
	wantInvalid(t, c, err)
	c, err = v.Verify(header("none")+"."+b64(payload)+".AA", issuer, resource)
	wantInvalid(t, c, err)

	// The classic confusion: HMAC keyed with the public key.
	for _, alg := range []string{"HS256", "EdDSA"} {
		t.Run(alg+" keyed with the public key", func(t *testing.T) {
			input := header(alg) + "." + b64(payload)
			m := hmac.New(sha256.New, ks.gen().keys[ks.gen().kid])
			m.Write([]byte(input))
			c, err := v.Verify(input+"."+b64(m.Sum(nil)), issuer, resource)
			wantInvalid(t, c, err)
		})
	}
	m := hmac.New(sha256.New, []byte(ks.JWKS()))
	m.Write([]byte(header("HS256") + "." + b64(payload)))
	c, err = v.Verify(header("HS256")+"."+b64(payload)+"."+b64(m.Sum(nil)), issuer, resource)
	wantInvalid(t, c, err)
}

func TestVerifyTampered(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	tok := mint(t, ks, testClaims())
	header, payload, sig := segments(t, tok)
	if _, err := v.Verify(tok, issuer, resource); err != nil {
		t.Fatal(err)
	}

	for name, edit := range map[string]func(string) string{
		"subject":  func(p string) string { return strings.Replace(p, "github:583231", "github:000001", 2) },
		"audience": func(p string) string { return strings.Replace(p, resource, "https://other.example/mcp", 1) },
		"scope": func(p string) string {
			return strings.Replace(p, `"scope":"mcp:tools mcp:resources"`, `"scope":"admin"`, 1)
		},
		"trailing space": func(p string) string { return p + " " },
	} {
		t.Run(name, func(t *testing.T) {
			p := edit(string(payload))
			if p == string(payload) {
				t.Fatal("edit did not apply")
			}
			c, err := v.Verify(b64(header)+"."+b64([]byte(p))+"."+sig, issuer, resource)
			wantInvalid(t, c, err)
		})
	}
	// A flipped bit in the signature, and another header under the same
	// signature.
	flipped := []byte(sig)
	if flipped[5] == 'A' {
		flipped[5] = 'B'
	} else {
		flipped[5] = 'A'
	}
	c, err := v.Verify(b64(header)+"."+b64(payload)+"."+string(flipped), issuer, resource)
	wantInvalid(t, c, err)
	h2 := strings.Replace(string(header), `"typ":"at+jwt"`, `"typ":"application/at+jwt"`, 1)
	c, err = v.Verify(b64([]byte(h2))+"."+b64(payload)+"."+sig, issuer, resource)
	wantInvalid(t, c, err)
	if _, err := v.Verify(tok, issuer, resource); err != nil {
		t.Fatal(err)
	}
}

// One token has one spelling: the base64url decoder skips CR/LF and ignores
// unused trailing bits, and such variants must not verify.
func TestVerifyNonCanonical(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	tok := mint(t, ks, testClaims())
	if _, err := v.Verify(tok, issuer, resource); err != nil {
		t.Fatal(err)
	}
	// The 64-byte signature is 86 characters: the last carries 4 unused bits.
	last := tok[len(tok)-1]
	alt := b64Alphabet[strings.IndexByte(b64Alphabet, last)|1]
	variants := []string{
		tok[:len(tok)-1] + string(alt),
		tok[:20] + "\n" + tok[20:],
		tok[:20] + "\r" + tok[20:],
		" " + tok,
		tok + "=",
		tok + ".",
		strings.Replace(tok, ".", "..", 1),
	}
	for i, bad := range variants {
		c, err := v.Verify(bad, issuer, resource)
		if err == nil {
			t.Errorf("variant %d accepted, want it refused", i)
			continue
		}
		wantInvalid(t, c, err)
	}
}

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestVerifyTooLong(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	// Signed past Mint, which refuses to make it (SEC-192).
	p := wirePayload()
	p["groups"] = []string{strings.Repeat("g", MaxTokenSize)}
	c2, err := v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
	wantInvalid(t, c2, err)
	c2, err = v.Verify(strings.Repeat("A", MaxTokenSize+1), issuer, resource)
	wantInvalid(t, c2, err)
}

func TestVerifyResultIsACopy(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	tok := mint(t, ks, testClaims())
	c, err := v.Verify(tok, issuer, resource)
	if err != nil {
		t.Fatal(err)
	}
	c.Scopes[0] = "admin"
	c.User.Groups[0] = "root"
	c.Subject = "local:mallory"
	c, err = v.Verify(tok, issuer, resource)
	if err != nil {
		t.Fatal(err)
	}
	if c.Scopes[0] != "mcp:tools" || c.User.Groups[0] != "github-org/admins" || c.Subject != "github:583231" {
		t.Fatalf("a result was modified through an earlier one: %+v", c)
	}
}

// The keyset is shared by every request: Verify is safe for concurrent use.
func TestVerifyConcurrent(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	toks := make([]string, 200)
	c := testClaims()
	for i := range toks {
		c.ID = fmt.Sprint("jti-", i)
		toks[i] = mint(t, ks, c)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				tok := toks[(i*7+g)%len(toks)]
				aud := resource
				if i%5 == 0 {
					aud = "https://other.example"
				}
				c, err := v.Verify(tok, issuer, aud)
				if (err == nil) != (aud == resource) {
					t.Errorf("aud %s: %v, want acceptance only for %s", aud, err, resource)
					return
				}
				if err == nil && c.Audience != resource {
					t.Errorf("Audience %q, want %q", c.Audience, resource)
					return
				}
			}
		})
	}
	wg.Wait()
}

// PeekUnverified reads aud and exp of any well-formed JWS, signed by us or
// not: the caller verifies afterwards.
func TestPeekUnverified(t *testing.T) {
	ks, _ := newTestKeyset(t)
	other, _ := newTestKeyset(t)
	for _, k := range []*Keyset{ks, other} {
		aud, exp, ok := PeekUnverified(mint(t, k, testClaims()))
		if !ok || len(aud) != 1 || aud[0] != resource || !exp.Equal(t0.Add(time.Hour)) {
			t.Fatalf("got %v %v %v, want [%s] %v true", aud, exp, ok, resource, t0.Add(time.Hour))
		}
	}
	p := wirePayload()
	delete(p, "exp")
	for name, tok := range map[string]string{
		"no exp":    signRaw(t, ks, p, typAccessToken),
		"garbage":   "a.b.c",
		"not a JWS": "opaque-refresh-token",
		"too long":  mint(t, ks, testClaims()) + strings.Repeat("A", MaxTokenSize),
	} {
		t.Run(name, func(t *testing.T) {
			if aud, _, ok := PeekUnverified(tok); ok {
				t.Fatalf("peeked %v, want a refusal", aud)
			}
		})
	}
}

// A token that lives longer than any the gateway mints (MaxLifetime, the
// most access_token_ttl may be) is refused: one signed with a leaked key
// for years would outlive the key's rotation in a cache of verified
// tokens.
func TestVerifyLifetimeBounded(t *testing.T) {
	ks, _ := newTestKeyset(t)
	v := at(ks, t0)
	p := wirePayload()
	p["exp"] = t0.Add(MaxLifetime).Unix()
	if _, err := v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource); err != nil {
		t.Fatalf("a token of the longest lifetime: %v", err)
	}
	p["exp"] = t0.Add(MaxLifetime + time.Second).Unix()
	c, err := v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
	wantInvalid(t, c, err)
	// exp - iat must not overflow into a short lifetime: an iat near the
	// smallest int64 and an exp a century ahead. Accepted before.
	p["iat"], p["exp"] = int64(math.MinInt64+1), t0.AddDate(100, 0, 0).Unix()
	c, err = v.Verify(signRaw(t, ks, p, typAccessToken), issuer, resource)
	wantInvalid(t, c, err)
}

// SEC-192: Mint refuses to sign a token the guard would refuse for its
// size (a user in many long groups), rather than hand a client tokens
// every request answers 401. Signed before.
func TestMintRefusesATokenTooLargeToVerify(t *testing.T) {
	ks, _ := newTestKeyset(t)
	c := testClaims()
	for i := range 40 {
		c.User.Groups = append(c.User.Groups, fmt.Sprintf("%03d%s", i, strings.Repeat("g", 197)))
	}
	if tok, err := ks.Mint(c); err == nil || !strings.Contains(err.Error(), "over the 8192") {
		t.Fatalf("Mint of claims with 8 KB of groups: a token of %d bytes, %v; want it refused for its size", len(tok), err)
	}
}
