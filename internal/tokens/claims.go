package tokens

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// typAccessToken is the JWS "typ" of an access token, RFC 9068 §2.1.
const typAccessToken = "at+jwt"

// Claims are the contents of an access token (RFC 9068 §2.2). Times are
// whole seconds on the wire.
type Claims struct {
	Issuer   string // iss
	Subject  string // sub, the same as User.ID
	Audience string // aud: the resource the token is for (RFC 8707)
	ClientID string // client_id
	Scopes   []string
	// IssuedAt and ExpiresAt are iat and exp.
	IssuedAt, ExpiresAt time.Time
	ID                  string // jti
	// GrantID is the private claim "gid": the grant the token was issued
	// under, so that revoking the grant can deny its access tokens.
	GrantID string
	// KeyID is the kid of the key that verified the token (Verify sets
	// it; Mint ignores it): a cache of verified tokens asks Trusts of it.
	KeyID string
	// User carries the profile claims: preferred_username, name, email,
	// email_verified, picture, profile, groups, upstream. User.ID is sub.
	User identity.User
}

// wireClaims is the JSON payload of an access token.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud"`
	ClientID  string   `json:"client_id"`
	Scope     string   `json:"scope,omitempty"`
	IssuedAt  int64    `json:"iat"`
	ExpiresAt int64    `json:"exp"`
	NotBefore int64    `json:"nbf,omitempty"` // never minted; honoured if present
	ID        string   `json:"jti"`
	GrantID   string   `json:"gid,omitempty"`

	Upstream      string   `json:"upstream,omitempty"`
	Username      string   `json:"preferred_username,omitempty"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Picture       string   `json:"picture,omitempty"`
	Profile       string   `json:"profile,omitempty"`
	Groups        []string `json:"groups,omitempty"`
	kid           string   // the header's, set by verifySignature
}

// audience is "aud": a string or an array of strings (RFC 7519 §4.1.3).
// It is written as a string when it has one member.
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// Mint signs c as a compact JWS with the keyset's newest key (header alg
// EdDSA, typ at+jwt, kid). Issuer, Subject (or User.ID; they must agree
// when both are set), Audience, ClientID, ID, IssuedAt and ExpiresAt are
// required, and ExpiresAt must be after IssuedAt. Times are truncated to
// whole seconds.
func (k *Keyset) Mint(c *Claims) (string, error) {
	sub := c.Subject
	if sub == "" {
		sub = c.User.ID
	}
	switch {
	case c.Issuer == "", sub == "", c.Audience == "", c.ClientID == "", c.ID == "":
		return "", errors.New("tokens: mint: iss, sub, aud, client_id and jti are required")
	case c.User.ID != "" && c.User.ID != sub:
		return "", errors.New("tokens: mint: Subject and User.ID differ")
	case c.IssuedAt.IsZero() || !c.ExpiresAt.After(c.IssuedAt):
		return "", errors.New("tokens: mint: need IssuedAt and a later ExpiresAt")
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\n\r") {
			return "", fmt.Errorf("tokens: mint: invalid scope %q", s)
		}
	}
	u := &c.User
	tok, err := signJSON(k.gen().signer, &wireClaims{
		Issuer:        c.Issuer,
		Subject:       sub,
		Audience:      audience{c.Audience},
		ClientID:      c.ClientID,
		Scope:         strings.Join(c.Scopes, " "),
		IssuedAt:      c.IssuedAt.Unix(),
		ExpiresAt:     c.ExpiresAt.Unix(),
		ID:            c.ID,
		GrantID:       c.GrantID,
		Upstream:      u.Upstream,
		Username:      u.Username,
		Name:          u.Name,
		Email:         u.Email,
		EmailVerified: u.EmailVerified,
		Picture:       u.Picture,
		Profile:       u.Profile,
		Groups:        u.Groups,
	})
	if err != nil {
		return "", fmt.Errorf("tokens: mint: %w", err)
	}
	if len(tok) > MaxTokenSize {
		// Verify would refuse it: a client would get a token that every
		// request answers 401, and refresh into another (SEC-192).
		return "", fmt.Errorf("tokens: mint: the token is %d bytes, over the %d the guard takes (the user's claims are too large)", len(tok), MaxTokenSize)
	}
	return tok, nil
}
