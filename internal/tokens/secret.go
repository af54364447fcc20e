package tokens

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// NewSecret returns 256 random bits, base64url without padding (43
// characters): an authorization code, a refresh token, a session cookie.
// Store only Hash(secret).
func NewSecret() string { return randomString(32) }

// NewID returns 128 random bits, base64url without padding (22
// characters): grant ids, authorization request ids, jti, kid.
func NewID() string { return randomString(16) }

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (Go 1.24+: crypto/rand crashes the program instead)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Hash is the SHA-256 of a bearer secret: what the store keeps in its place
// (OAuth 2.1 §7.1, TOK-4).
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Equal compares two secrets in time that does not depend on their content.
// Both sides are hashed first, so unequal lengths take no early exit either
// (only the lengths themselves can show in timing).
func Equal(a, b string) bool {
	ha := sha256.Sum256([]byte(a))
	hb := sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// S256 is the PKCE code challenge of verifier, RFC 7636 §4.2:
// BASE64URL-ENCODE(SHA256(ASCII(code_verifier))).
func S256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// ValidVerifier reports whether v is a code_verifier as RFC 7636 §4.1
// defines it: 43 to 128 characters of [A-Za-z0-9-._~].
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~':
		default:
			return false
		}
	}
	return true
}

// ValidChallenge reports whether c can be an S256 code_challenge (RFC 7636
// §4.2): the canonical unpadded base64url encoding of 32 octets, 43
// characters. Anything else can never match a verifier, so the
// authorization endpoint rejects it up front.
func ValidChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	var buf [32]byte
	n, err := base64.RawURLEncoding.Strict().Decode(buf[:], []byte(c))
	return err == nil && n == 32
}
