package tokens

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/go-jose/go-jose/v4"
)

// ErrInvalidToken is the only error Verify returns, wrapped with the reason
// for the log (which never contains the token). Every such failure is a 401
// with error="invalid_token" (RFC 6750 §3.1, TOK-2).
var ErrInvalidToken = errors.New("tokens: invalid access token")

// MaxTokenSize bounds the tokens Verify will parse. Ours are well under 2
// KiB even with many groups.
const MaxTokenSize = 8 << 10

const (
	defaultLeeway    = 30 * time.Second
	defaultCacheSize = 10000
)

// VerifierOptions configure a Verifier. The zero value is ready to use.
type VerifierOptions struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Leeway is the clock skew allowed between replicas for iat (and nbf,
	// if present): a token may be issued up to Leeway in the future. Zero
	// means 30 s, negative means none. exp gets no leeway: the gateway sets
	// exp itself, and a token is rejected from its exp second on (RFC 7519
	// §4.1.4), so that its lifetime (TOK-5) is exactly what was minted.
	Leeway time.Duration
	// CacheSize bounds the number of verified tokens kept in memory
	// (rounded up to a multiple of 64). Zero means 10000, negative
	// disables the cache.
	CacheSize int
}

// Verifier checks access tokens minted by a Keyset, without the database.
// It is safe for concurrent use.
//
// Verified tokens are cached, so that a repeated check does no signature
// work. The cache key is the SHA-256 of the token's signature segment, and
// an entry keeps the signing input (header.payload) to compare with the
// token in full: a hit needs the whole token to be equal, yet no bearer
// credential is kept in clear (TOK-4), since header.payload without its
// signature authenticates nothing and the entry holds the decoded claims
// anyway. Hashing 86 characters rather than the whole token keeps a hit at
// a constant ~2 SHA-256 blocks however many claims (groups) a token
// carries. An entry costs about the token's size twice (signing input and
// claims); the number of entries is bounded by CacheSize.
//
// A hit takes a read lock on one of 64 shards, compares the signing input,
// and checks exp, issuer and audience on every call. Only tokens with a
// valid signature of the keyset (and well-formed claims) are cached, so
// forged tokens cannot evict valid ones. A full shard first drops its expired entries, then an
// arbitrary one (Go randomizes map iteration).
type Verifier struct {
	keys   *Keyset
	now    func() time.Time
	leeway time.Duration
	cache  *cache // nil when disabled

	sigChecks atomic.Int64 // signature verifications, for tests
}

// NewVerifier returns a Verifier for the keys of k.
func NewVerifier(k *Keyset, opts VerifierOptions) *Verifier {
	v := &Verifier{keys: k, now: opts.Now, leeway: opts.Leeway}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case v.leeway == 0:
		v.leeway = defaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	switch {
	case opts.CacheSize == 0:
		v.cache = newCache(defaultCacheSize)
	case opts.CacheSize > 0:
		v.cache = newCache(opts.CacheSize)
	}
	return v
}

// Verify checks an access token (OAuth 2.1 §5.2, RFC 9068 §4) and returns
// its claims: a compact JWS of at most MaxTokenSize bytes in canonical
// base64url; alg EdDSA (never "none" or HS*) under a kid of the keyset;
// typ at+jwt; a valid signature; iss equal to issuer; aud, a string or an
// array, naming audience (RES-3); exp in the future; iat not more than the
// leeway in the future; sub, client_id and jti present.
//
// The returned Claims are the caller's to keep and modify; Audience is the
// audience that matched. Any failure is ErrInvalidToken, wrapped.
func (v *Verifier) Verify(token, issuer, audience string) (*Claims, error) {
	if len(token) > MaxTokenSize {
		return nil, invalid("longer than %d bytes", MaxTokenSize)
	}
	if issuer == "" || audience == "" {
		return nil, invalid("no expected issuer or audience")
	}
	now := v.now()
	var (
		key [sha256.Size]byte
		e   *entry
	)
	dot := strings.LastIndexByte(token, '.')
	useCache := v.cache != nil && dot >= 0
	if useCache {
		// The token is only read: no copy of it is needed to hash it.
		sig := token[dot+1:]
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(sig), len(sig)))
		if e = v.cache.get(key); e != nil && e.signed != token[:dot] {
			e = nil // same signature, other header or payload: verify in full
		}
	}
	if e == nil {
		var err error
		if e, err = v.verifySigned(token, now); err != nil {
			return nil, err
		}
		if useCache {
			e.signed = strings.Clone(token[:dot])
			v.cache.put(key, e, now)
		}
	} else if now.Unix() >= e.exp {
		v.cache.remove(key)
	}
	return e.check(now, issuer, audience)
}

// entry is a token whose signature verified. It is never modified after it
// is built, so cache readers share it.
type entry struct {
	signed string // the JWS signing input, header.payload (no signature)
	claims Claims // Audience unset: see aud
	aud    []string
	exp    int64 // unix seconds
}

func (e *entry) check(now time.Time, issuer, audience string) (*Claims, error) {
	if now.Unix() >= e.exp {
		return nil, invalid("expired")
	}
	if e.claims.Issuer != issuer {
		return nil, invalid("wrong issuer")
	}
	if !slices.Contains(e.aud, audience) {
		return nil, invalid("wrong audience") // RES-3
	}
	c := e.claims
	c.Audience = audience
	c.Scopes = slices.Clone(c.Scopes)
	c.User.Groups = slices.Clone(c.User.Groups)
	return &c, nil
}

func (v *Verifier) verifySigned(token string, now time.Time) (*entry, error) {
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
	pub, ok := v.keys.keys[h.KeyID]
	if !ok {
		return nil, invalid("unknown kid")
	}
	v.sigChecks.Add(1)
	payload, err := jws.Verify(pub)
	if err != nil {
		return nil, invalid("signature: %v", err)
	}
	var w wireClaims
	if err := json.Unmarshal(payload, &w); err != nil {
		return nil, invalid("claims: %v", err)
	}
	switch {
	case w.Issuer == "" || w.Subject == "" || len(w.Audience) == 0 || w.ClientID == "" || w.ID == "":
		return nil, invalid("missing iss, sub, aud, client_id or jti")
	case w.ExpiresAt == 0 || w.IssuedAt == 0:
		return nil, invalid("missing exp or iat")
	}
	notAfter := now.Add(v.leeway).Unix()
	if w.IssuedAt > notAfter {
		return nil, invalid("issued in the future")
	}
	if w.NotBefore > notAfter {
		return nil, invalid("not yet valid")
	}
	e := &entry{
		aud: slices.Clip([]string(w.Audience)),
		exp: w.ExpiresAt,
		claims: Claims{
			Issuer:    w.Issuer,
			Subject:   w.Subject,
			ClientID:  w.ClientID,
			Scopes:    strings.Fields(w.Scope),
			IssuedAt:  time.Unix(w.IssuedAt, 0).UTC(),
			ExpiresAt: time.Unix(w.ExpiresAt, 0).UTC(),
			ID:        w.ID,
			GrantID:   w.GrantID,
		},
	}
	e.claims.User.ID = w.Subject
	e.claims.User.Upstream = w.Upstream
	e.claims.User.Username = w.Username
	e.claims.User.Name = w.Name
	e.claims.User.Email = w.Email
	e.claims.User.EmailVerified = w.EmailVerified
	e.claims.User.Picture = w.Picture
	e.claims.User.Profile = w.Profile
	e.claims.User.Groups = w.Groups
	return e, nil
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
