package assertion

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Type is the client_assertion_type of a JWT assertion (RFC 7523 §2.2).
const Type = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Method is the token_endpoint_auth_method of a client that authenticates
// with such assertions (RFC 7591 §2).
const Method = "private_key_jwt"

// Algorithms are the JWS algorithms an assertion may be signed with.
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// AlgorithmNames are Algorithms as the strings metadata lists.
func AlgorithmNames() []string {
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return names
}

// Supported reports whether alg is one of Algorithms.
func Supported(alg string) bool {
	return slices.Contains(Algorithms, jose.SignatureAlgorithm(alg))
}

const (
	// MaxLifetime is the furthest ahead an assertion's exp may be.
	MaxLifetime = 10 * time.Minute
	// Leeway allows for clocks that differ, on exp, nbf and iat.
	Leeway = time.Minute
	// MaxKeys bounds the keys one verification tries: of the costly kinds
	// (RSA over 2048 bits, P-384, P-521), fewer.
	MaxKeys = 16
	// minRSABits is the smallest RSA key accepted (RFC 7518 §3.3).
	minRSABits = 2048
	// maxRSAExponent bounds, with go-jose's 4096 bits, what verifying
	// with a key of a client's own choosing costs: up to 2^31-1 (what Go
	// verifies with), each verification takes 2.6 times as long, for no
	// key anyone makes.
	maxRSAExponent = 65537
	maxJTI         = 256
)

// ErrNoKey says that no key of the set verified the assertion. The client
// may have rotated its keys: a caller that fetched the set may fetch it
// again and retry once.
var ErrNoKey = errors.New("no key of the client's key set verifies the client assertion")

// errClaims: the claims are not a JSON object go-jose decodes (RFC 7519
// §4.1 types; it refuses a member named twice).
var errClaims = errors.New("the client assertion's claims are not valid: a JSON object with each claim once, " +
	"iss, sub and jti strings, aud a string or an array of strings, exp, nbf and iat numbers")

// ParseKeySet reads a client's JWK Set of public signing keys. As RFC 7517
// §5 asks, it leaves out the keys it cannot use: an unknown kty, a key that
// does not parse or is invalid, one for another use than "sig", an RSA key
// under 2048 bits (or over the 4096 go-jose reads) or whose exponent is over
// 65537. A set that publishes
// private or symmetric key material is refused whole: that key is a secret
// no more, and whoever read the set could sign as the client. A set left
// with no key is refused.
func ParseKeySet(b []byte) (*jose.JSONWebKeySet, error) {
	notSet := errors.New("the key set is not a valid JWK Set")
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, notSet
	}
	var set jose.JSONWebKeySet
	for i, r := range raw.Keys {
		var members map[string]json.RawMessage
		if json.Unmarshal(r, &members) != nil {
			return nil, notSet
		}
		if secretMaterial(members) {
			return nil, fmt.Errorf("key %d of the key set is private or symmetric key material, which must never be published", i+1)
		}
		var k jose.JSONWebKey
		if k.UnmarshalJSON(r) != nil || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		if pub, ok := k.Key.(*rsa.PublicKey); ok && (pub.N.BitLen() < minRSABits || pub.E > maxRSAExponent) {
			continue
		}
		// Nothing checks x5c: its certificates, five times the bytes once
		// parsed, would only fill the cache of sets.
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: k.Algorithm, Use: k.Use})
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("the key set has no key to verify signatures with (RSA of 2048 to 4096 bits, EC P-256, P-384 or P-521, or Ed25519; for use sig)")
	}
	return &set, nil
}

// secretMaterial reports whether a JWK holds what must stay private: a
// symmetric key (kty oct, its k), or the private part of an RSA, EC or OKP
// key (d, and RSA's p, q, dp, dq, qi, oth).
func secretMaterial(members map[string]json.RawMessage) bool {
	if string(members["kty"]) == `"oct"` {
		return true
	}
	for _, m := range []string{"k", "d", "p", "q", "dp", "dq", "qi", "oth"} {
		if _, ok := members[m]; ok {
			return true
		}
	}
	return false
}

// Issuer returns the iss claim of an assertion without verifying anything,
// to find its client when the request names none (RFC 7521 §4.2). Nothing
// else may be read from it before Verify.
func Issuer(token string) (string, error) {
	tok, err := jwt.ParseSigned(token, Algorithms)
	if err != nil {
		return "", errMalformed(token)
	}
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return "", errClaims
	}
	return c.Issuer, nil
}

// Expected is what Verify requires of an assertion.
type Expected struct {
	ClientID  string
	Audiences []string // aud must hold at least one; Audiences[0] is the issuer
	Alg       string   // the one algorithm the client signs with; "" for any of Algorithms
	Now       time.Time
}

// ExplicitType is the typ of a client assertion made under
// draft-ietf-oauth-rfc7523bis: its aud must be the authorization server's
// issuer, alone. The token endpoint's URL, which RFC 7523 allowed, is what
// a malicious authorization server's metadata can point at another's, so
// that a client sends it an assertion good at the other (SEC-163).
const ExplicitType = "client-authentication+jwt"

// Verified is what a checked assertion says.
type Verified struct {
	ID     string // jti
	Expiry time.Time
}

// Verify checks token against keys as the package documentation says.
// An error says what is wrong, for the client's developer; ErrNoKey is
// wrapped when no key verified the signature.
func Verify(token string, keys *jose.JSONWebKeySet, want Expected) (*Verified, error) {
	tok, err := jwt.ParseSigned(token, Algorithms)
	if err != nil {
		return nil, errMalformed(token)
	}
	hdr := tok.Headers[0]
	if want.Alg != "" && hdr.Algorithm != want.Alg {
		return nil, fmt.Errorf("the client assertion is signed with %s; the client's metadata names %s", hdr.Algorithm, want.Alg)
	}
	verified := false
	for _, k := range candidates(keys, hdr) {
		if tok.Claims(k.Key) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, ErrNoKey
	}
	// Decoded apart from the signature, so that signed claims that do not
	// decode are not taken for a key the set lacks; the payload is the one
	// just verified.
	var c jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&c); err != nil {
		return nil, errClaims
	}
	if err := checkClaims(&c, want); err != nil {
		return nil, err
	}
	// In any case, and with the "application/" that RFC 7515 §4.1.9 lets
	// a typ leave out, written or not.
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); (strings.EqualFold(typ, ExplicitType) || strings.EqualFold(typ, "application/"+ExplicitType)) &&
		(len(c.Audience) != 1 || len(want.Audiences) == 0 || c.Audience[0] != want.Audiences[0]) {
		return nil, errors.New("a client assertion of typ " + ExplicitType + " must name the issuer alone as its aud")
	}
	return &Verified{ID: c.ID, Expiry: c.Expiry.Time()}, nil
}

// errMalformed says why a token did not parse: an algorithm refused (its
// header is read for that alone), or not a compact JWS at all.
func errMalformed(token string) error {
	head, _, _ := strings.Cut(token, ".")
	var h struct {
		Alg string `json:"alg"`
	}
	if b, err := base64.RawURLEncoding.DecodeString(head); err == nil && json.Unmarshal(b, &h) == nil && h.Alg != "" && !Supported(h.Alg) {
		return fmt.Errorf("the client assertion must be signed with one of %v, not %.20q", AlgorithmNames(), h.Alg)
	}
	return errors.New("the client assertion is not a signed JWT in compact form")
}

// candidates are the keys of set that may have signed a JWS with hdr: the
// ones its kid names (or, if none, those without a kid), or all when hdr
// has no kid; of the algorithm's key type, and of the same alg when the
// key names one. Their verifications cost at most those of MaxKeys keys of
// the cheapest kinds.
func candidates(set *jose.JSONWebKeySet, hdr jose.Header) []jose.JSONWebKey {
	keys := set.Keys
	if hdr.KeyID != "" {
		if keys = set.Key(hdr.KeyID); len(keys) == 0 {
			// A kid the set does not hold: its keys that name none, as a
			// signer may name a key its published set leaves unnamed.
			keys = set.Key("")
		}
	}
	var out []jose.JSONWebKey
	spent := 0
	for _, k := range keys {
		if (k.Algorithm == "" || k.Algorithm == hdr.Algorithm) && fits(k.Key, hdr.Algorithm) {
			if spent += cost(k.Key); spent > MaxKeys {
				break
			}
			out = append(out, k)
		}
	}
	return out
}

// cost is what a verification with key takes, in those with Ed25519,
// P-256 or RSA up to 2048 bits. A set is of the client's choosing and an
// assertion without a valid signature costs nothing to make: a P-521
// verification takes some 30 times a P-256 one, P-384 some 6, RSA-4096
// some 3; rounded so that any kind allows two keys, for a rotation.
func cost(key any) int {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() > 2048 {
			return 2
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return 4
		case elliptic.P521():
			return MaxKeys / 2
		}
	}
	return 1
}

// fits reports whether key is of the type and curve alg signs with.
func fits(key any, alg string) bool {
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		_, ok := key.(*rsa.PublicKey)
		return ok
	case jose.ES256, jose.ES384, jose.ES512:
		k, ok := key.(*ecdsa.PublicKey)
		return ok && k.Curve == curveOf(jose.SignatureAlgorithm(alg))
	case jose.EdDSA:
		_, ok := key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// curveOf is the curve an ECDSA algorithm signs on.
func curveOf(alg jose.SignatureAlgorithm) elliptic.Curve {
	switch alg {
	case jose.ES384:
		return elliptic.P384()
	case jose.ES512:
		return elliptic.P521()
	}
	return elliptic.P256()
}

func checkClaims(c *jwt.Claims, want Expected) error {
	now := want.Now
	switch {
	case want.ClientID == "":
		return errors.New("the client is unknown")
	case c.Issuer != want.ClientID:
		return errors.New("the client assertion's iss is not the client_id")
	case c.Subject != want.ClientID:
		return errors.New("the client assertion's sub is not the client_id")
	case !slices.ContainsFunc(want.Audiences, c.Audience.Contains):
		return errors.New("the client assertion's aud does not name this authorization server (its issuer or token endpoint)")
	case c.Expiry == nil:
		return errors.New("the client assertion has no exp")
	case !now.Before(c.Expiry.Time().Add(Leeway)):
		return errors.New("the client assertion has expired")
	case c.Expiry.Time().After(now.Add(MaxLifetime + Leeway)):
		return fmt.Errorf("the client assertion's exp is more than %v ahead", MaxLifetime)
	case c.NotBefore != nil && now.Add(Leeway).Before(c.NotBefore.Time()):
		return errors.New("the client assertion is not valid yet (nbf)")
	case c.IssuedAt != nil && now.Add(Leeway).Before(c.IssuedAt.Time()):
		return errors.New("the client assertion's iat is in the future")
	case c.ID == "":
		return errors.New("the client assertion has no jti")
	case len(c.ID) > maxJTI:
		return fmt.Errorf("the client assertion's jti is over %d bytes", maxJTI)
	}
	return nil
}
