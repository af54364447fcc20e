package tokens

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
)

func TestNewSecretAndID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, id := NewSecret(), NewID()
		if len(s) != 43 || len(id) != 22 {
			t.Fatalf("lengths %d %d, want 43 and 22", len(s), len(id))
		}
		if b, err := base64.RawURLEncoding.DecodeString(s); err != nil || len(b) != 32 {
			t.Fatalf("secret %q: %v, want 32 bytes of base64url", s, err)
		}
		if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("id %q: %v, want 16 bytes of base64url", id, err)
		}
		if seen[s] || seen[id] {
			t.Fatal("repeated value")
		}
		seen[s], seen[id] = true, true
	}
}

func TestHash(t *testing.T) {
	want := sha256.Sum256([]byte("abc"))
	if !bytes.Equal(Hash("abc"), want[:]) {
		t.Fatal("Hash is not SHA-256")
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "", true},
		{"secret", "secret", true},
		{"secret", "secreT", false},
		{"secret", "secret2", false},
		{"secret", "", false},
		{"", "x", false},
		{strings.Repeat("a", 1000), strings.Repeat("a", 1000), true},
	} {
		if got := Equal(tc.a, tc.b); got != tc.want {
			t.Errorf("Equal(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// PKCE-1: RFC 7636 Appendix B.
func TestS256AppendixB(t *testing.T) {
	octets := []byte{116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
		187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83,
		132, 141, 121}
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	if got := base64.RawURLEncoding.EncodeToString(octets); got != verifier {
		t.Fatalf("verifier %q, want %q", got, verifier)
	}
	if got := S256(verifier); got != challenge {
		t.Fatalf("S256 = %q, want %q", got, challenge)
	}
	if !ValidVerifier(verifier) || !ValidChallenge(challenge) {
		t.Fatal("Appendix B values rejected")
	}
}

// RFC 7636 §4.1: 43*128unreserved.
func TestValidVerifier(t *testing.T) {
	ok := []string{
		strings.Repeat("a", 43),
		strings.Repeat("Z", 128),
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
		NewSecret(),
	}
	bad := []string{
		"",
		strings.Repeat("a", 42),
		strings.Repeat("a", 129),
		strings.Repeat("a", 42) + "+",
		strings.Repeat("a", 42) + "/",
		strings.Repeat("a", 42) + "=",
		strings.Repeat("a", 42) + " ",
		strings.Repeat("a", 42) + "é",
	}
	for _, v := range ok {
		if !ValidVerifier(v) {
			t.Errorf("rejected %q, want it accepted", v)
		}
	}
	for _, v := range bad {
		if ValidVerifier(v) {
			t.Errorf("accepted %q, want it refused", v)
		}
	}
}

// PKCE-2: only an S256 challenge shape is accepted (a plain verifier used
// as challenge is rejected unless it happens to be 43 canonical base64url
// characters, which S256 then never matches).
func TestValidChallenge(t *testing.T) {
	if !ValidChallenge(S256(NewSecret())) {
		t.Fatal("rejected a real challenge")
	}
	c := S256("x")
	for _, bad := range []string{
		"",
		c[:42],
		c + "A",
		c + "=",
		strings.Repeat("a", 42) + "~",
		strings.Repeat("a", 42) + "+",
		strings.Repeat("A", 42) + "B", // non-zero unused bits: not canonical
		strings.Repeat("a", 128),
	} {
		if ValidChallenge(bad) {
			t.Errorf("accepted %q, want it refused", bad)
		}
	}
}
