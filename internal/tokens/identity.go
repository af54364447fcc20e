package tokens

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// TypIdentityToken is the JWS "typ" of the identity tokens the gateway
// sends to backends. It differs from an access token's typ, so that an
// identity token a backend leaks cannot be used as an access token at the
// gateway (the verifier accepts only at+jwt, RFC 8725 §3.11), and its
// audience (the backend) is not a resource either.
const TypIdentityToken = "mcpgate-identity+jwt"

// IdentityTokenTTL is how long an identity token is valid: long enough for
// clock skew, short enough that a leaked one is soon worthless.
const IdentityTokenTTL = 60 * time.Second

// identityClaims is the payload of an identity token.
type identityClaims struct {
	Issuer        string   `json:"iss"`
	Subject       string   `json:"sub"`
	Audience      string   `json:"aud"`
	ClientID      string   `json:"client_id"`
	Scope         string   `json:"scope,omitempty"`
	IssuedAt      int64    `json:"iat"`
	ExpiresAt     int64    `json:"exp"`
	ID            string   `json:"jti"`
	Upstream      string   `json:"upstream,omitempty"`
	Username      string   `json:"preferred_username,omitempty"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// IdentityMinter signs short-lived identity tokens that tell one backend
// who the verified caller is. A backend checks them with the gateway's JWKS
// ({issuer}/jwks.json): signature, typ, iss, aud (its own URL) and exp.
// Tokens are reused for half their lifetime per access token, so that the
// signature (tens of µs) is not paid on every request.
type IdentityMinter struct {
	keys     *Keyset // signs with its signing key of the moment
	audience string
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]mintedIdentity // access token jti → token
}

type mintedIdentity struct {
	token string
	renew time.Time
	// for: the caller it names, which a caller of the same token id must
	// be for the token to be reused.
	user, client string
	scopes       []string
}

func (e *mintedIdentity) names(c *identity.Caller) bool {
	return e.user == c.User.ID && e.client == c.ClientID && slices.Equal(e.scopes, c.Scopes)
}

// maxIdentityCache bounds the cache; past it the cache starts over.
const maxIdentityCache = 10_000

// NewIdentityMinter signs with the keyset's signing key (after a
// rotation, the new one) for audience, the
// backend's URL. now may be nil.
func NewIdentityMinter(k *Keyset, audience string, now func() time.Time) (*IdentityMinter, error) {
	if audience == "" {
		return nil, errors.New("tokens: identity tokens need an audience")
	}
	if now == nil {
		now = time.Now
	}
	return &IdentityMinter{keys: k, audience: audience, now: now, cache: map[string]mintedIdentity{}}, nil
}

// Token returns an identity token for c. The issuer is the origin of the
// resource c's access token was issued for.
func (m *IdentityMinter) Token(c *identity.Caller) (string, error) {
	now := m.now()
	key := c.TokenID
	if key != "" {
		m.mu.Lock()
		e, ok := m.cache[key]
		m.mu.Unlock()
		if ok && now.Before(e.renew) && e.names(c) {
			return e.token, nil
		}
	}
	iss, err := issuerOf(c.Resource)
	if err != nil {
		return "", err
	}
	exp := now.Add(IdentityTokenTTL)
	if !c.ExpiresAt.IsZero() && c.ExpiresAt.Before(exp) {
		exp = c.ExpiresAt // never outlive the access token
	}
	if !exp.After(now) {
		return "", errors.New("tokens: identity token: the access token has expired")
	}
	u := &c.User
	var email string
	if u.EmailVerified {
		email = u.Email
	}
	tok, err := signJSON(m.keys.gen().idSigner, &identityClaims{
		Issuer: iss, Subject: u.ID, Audience: m.audience, ClientID: c.ClientID,
		Scope: strings.Join(c.Scopes, " "), IssuedAt: now.Unix(), ExpiresAt: exp.Unix(), ID: NewID(),
		Upstream: u.Upstream, Username: u.Username, Name: u.Name, Email: email, EmailVerified: u.EmailVerified && email != "",
		Groups: u.Groups,
	})
	if err != nil {
		return "", fmt.Errorf("tokens: identity token: %w", err)
	}
	if key != "" {
		m.mu.Lock()
		if len(m.cache) >= maxIdentityCache {
			clear(m.cache)
		}
		m.cache[key] = mintedIdentity{token: tok, renew: now.Add(exp.Sub(now) / 2),
			user: u.ID, client: c.ClientID, scopes: slices.Clone(c.Scopes)}
		m.mu.Unlock()
	}
	return tok, nil
}

// issuerOf is the origin of a resource URL, which is the issuer: the
// gateway's resources live under its issuer.
func issuerOf(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", errors.New("tokens: identity token: the caller has no resource URL")
	}
	return u.Scheme + "://" + u.Host, nil
}
