package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/identity"
)

// ErrInvalidToken is the only error Verify returns, wrapped with the reason
// for the log (which never contains the token). Every such failure is a 401
// with error="invalid_token" (RFC 6750 §3.1, TOK-2).
var ErrInvalidToken = errors.New("tokens: invalid access token")

// ErrExpired and ErrWrongAudience, wrapped with ErrInvalidToken, tell two
// common refusals from the rest, for the metrics of the token checks; a
// client is answered the same whatever the reason.
var (
	ErrExpired       = errors.New("expired")
	ErrWrongAudience = errors.New("wrong audience")
)

// AudienceError is the error of a token whose signature and issuer are
// good but whose audience is another resource (RES-3): it says, for the
// flow debugger, which resources the token names and whose it is. It
// matches ErrInvalidToken and ErrWrongAudience.
type AudienceError struct {
	Audience []string
	ClientID string
	Subject  string
	GrantID  string
}

func (e *AudienceError) Error() string {
	return ErrInvalidToken.Error() + ": " + ErrWrongAudience.Error()
}

func (e *AudienceError) Unwrap() []error { return []error{ErrInvalidToken, ErrWrongAudience} }

// MaxTokenSize bounds the tokens Verify will parse. Ours are well under 2
// KiB even with many groups.
const MaxTokenSize = 8 << 10

// clockSkew is how far in the future a token's iat (and nbf, if present)
// may be: replicas' clocks differ a little. exp gets none: the gateway
// sets exp itself, and a token is rejected from its exp second on (RFC
// 7519 §4.1.4), so that its lifetime (TOK-5) is exactly what was minted.
const clockSkew = 30 * time.Second

// Verify checks an access token (OAuth 2.1 §5.2, RFC 9068 §4) at time now
// and returns its claims: a compact JWS of at most MaxTokenSize bytes in
// canonical base64url; alg EdDSA (never "none" or HS*) under a kid of the
// keyset; typ at+jwt; a valid signature; iss equal to issuer; aud, a
// string or an array, naming audience (RES-3); exp after now; iat not more
// than clockSkew after now; sub, client_id and jti present.
//
// It uses no database and keeps nothing: every call does the whole check,
// signature included (the resource guard caches what it verified). Audience
// in the returned Claims is the audience that matched. Any failure is
// ErrInvalidToken, wrapped with the reason for the log (which never
// contains the token).
func (k *Keyset) Verify(token, issuer, audience string, now time.Time) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, invalid("longer than %d bytes", MaxTokenSize)
	}
	if issuer == "" || audience == "" {
		return nil, invalid("no expected issuer or audience")
	}
	w, err := k.verifySignature(token)
	if err != nil {
		return nil, err
	}
	switch {
	case w.Issuer == "" || w.Subject == "" || len(w.Audience) == 0 || w.ClientID == "" || w.ID == "":
		return nil, invalid("missing iss, sub, aud, client_id or jti")
	case w.ExpiresAt == 0 || w.IssuedAt == 0:
		return nil, invalid("missing exp or iat")
	case w.GrantID == "":
		// Every access token the gateway mints names its grant, which
		// revocation denies: one without could never be revoked.
		return nil, invalid("missing gid")
	case w.IssuedAt < w.ExpiresAt-int64(MaxLifetime/time.Second):
		// No access token the gateway mints lives longer: one signed with
		// a leaked key for years would outlive any rotation in a cache.
		// (exp - iat could overflow for an iat near the smallest int64.)
		return nil, invalid("lives longer than %v", MaxLifetime)
	case now.Unix() >= w.ExpiresAt:
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, ErrExpired)
	case w.IssuedAt > now.Add(clockSkew).Unix():
		return nil, invalid("issued in the future")
	case w.NotBefore > now.Add(clockSkew).Unix():
		return nil, invalid("not yet valid")
	case w.Issuer != issuer:
		return nil, invalid("wrong issuer")
	case !slices.Contains(w.Audience, audience):
		return nil, &AudienceError{Audience: w.Audience, ClientID: w.ClientID, Subject: w.Subject, GrantID: w.GrantID} // RES-3
	}
	c := w.claims(audience)
	c.KeyID = w.kid
	return c, nil
}

// MaxLifetime is the longest an access token may live, exp − iat: the
// most access_token_ttl may be (TOK-5).
const MaxLifetime = 24 * time.Hour

// Trusts reports whether kid is the ID of a key that verifies tokens now:
// a token verified earlier with a key since dropped must be checked again
// (and is then refused) rather than trusted from a cache.
func (k *Keyset) Trusts(kid string) bool {
	_, ok := k.gen().keys[kid]
	return ok
}

// verifySignature checks the token's form, header and signature, and
// decodes its payload.
func (k *Keyset) verifySignature(token string) (*wireClaims, error) {
	if !canonicalCompact(token) {
		return nil, invalid("not a compact JWS in canonical base64url")
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, invalid("parse: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid("%d signatures", len(jws.Signatures))
	}
	h := jws.Signatures[0].Protected
	if h.Algorithm != algEdDSA {
		return nil, invalid("alg %q", h.Algorithm)
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, typAccessToken) && !strings.EqualFold(typ, "application/"+typAccessToken) {
		return nil, invalid("typ %q", typ) // RFC 9068 §4
	}
	pub, ok := k.gen().keys[h.KeyID]
	if !ok && k.opts.Now != nil {
		pub, ok = k.reloadForUnknownKid(h.KeyID).keys[h.KeyID]
	}
	if !ok {
		return nil, invalid("unknown kid")
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, invalid("signature: %v", err)
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("claims: %v", err)
	}
	w.kid = h.KeyID
	return &w, nil
}

// claims turns verified wire claims into Claims whose Audience is the one
// that matched.
func (w *wireClaims) claims(audience string) *Claims {
	return &Claims{
		Issuer:    w.Issuer,
		Subject:   w.Subject,
		Audience:  audience,
		ClientID:  w.ClientID,
		Scopes:    strings.Fields(w.Scope),
		IssuedAt:  time.Unix(w.IssuedAt, 0).UTC(),
		ExpiresAt: time.Unix(w.ExpiresAt, 0).UTC(),
		ID:        w.ID,
		GrantID:   w.GrantID,
		User: identity.User{
			ID:            w.Subject,
			Upstream:      w.Upstream,
			Username:      w.Username,
			Name:          w.Name,
			Email:         w.Email,
			EmailVerified: w.EmailVerified,
			Picture:       w.Picture,
			Profile:       w.Profile,
			Groups:        w.Groups,
		},
	}
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidToken, fmt.Sprintf(format, args...))
}

// canonicalCompact reports whether token is three dot-separated segments of
// unpadded base64url, each canonical (unused trailing bits zero). The
// decoder that go-jose uses skips CR and LF and ignores trailing bits, so
// without this check many strings would verify as the same token.
func canonicalCompact(token string) bool {
	dots, start := 0, 0
	for i := 0; i <= len(token); i++ {
		if i < len(token) {
			c := token[i]
			switch {
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
				continue
			case c != '.':
				return false
			}
			dots++
		}
		if !canonicalSegment(token[start:i]) {
			return false
		}
		start = i + 1
	}
	return dots == 2
}

func canonicalSegment(s string) bool {
	if len(s) == 0 {
		return false
	}
	last := b64Value(s[len(s)-1])
	switch len(s) % 4 {
	case 1:
		return false
	case 2:
		return last&0x0f == 0
	case 3:
		return last&0x03 == 0
	}
	return true
}

func b64Value(c byte) byte {
	switch {
	case c >= 'A' && c <= 'Z':
		return c - 'A'
	case c >= 'a' && c <= 'z':
		return c - 'a' + 26
	case c >= '0' && c <= '9':
		return c - '0' + 52
	case c == '-':
		return 62
	}
	return 63 // '_'
}

// PeekUnverified reads a token's audience and expiry WITHOUT verifying its
// signature, for choosing what to verify it against: the audience among
// several resources, and, to revoke a token past its expiry, a time at
// which it was still valid. Nothing read here may be trusted until Verify
// accepts the token.
func PeekUnverified(token string) (audience []string, expiry time.Time, ok bool) {
	if len(token) > MaxTokenSize {
		return nil, time.Time{}, false
	}
	t, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, time.Time{}, false
	}
	var c jwt.Claims
	if t.UnsafeClaimsWithoutVerification(&c) != nil || c.Expiry == nil || len(c.Audience) == 0 {
		return nil, time.Time{}, false
	}
	return c.Audience, c.Expiry.Time(), true
}
