package identity

import (
	"context"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
)

// User is a person as an upstream identity provider described them.
// ID is "<upstream>:<subject>" (for example "github:583231", "local:alice")
// and is the only field that identifies the user; the others are profile.
type User struct {
	ID            string   `json:"sub"`
	Upstream      string   `json:"upstream,omitempty"`
	Username      string   `json:"preferred_username,omitempty"`
	Name          string   `json:"name,omitempty"`
	Email         string   `json:"email,omitempty"`
	EmailVerified bool     `json:"email_verified,omitempty"`
	Picture       string   `json:"picture,omitempty"`
	Profile       string   `json:"profile,omitempty"`
	Groups        []string `json:"groups,omitempty"`
}

// Caller is the verified identity behind one request to a protected resource.
type Caller struct {
	User      User
	ClientID  string
	Scopes    []string
	Resource  string    // the token's audience
	TokenID   string    // the access token's jti
	ExpiresAt time.Time // when the access token expires
}

type callerKey struct{}

// WithCaller returns a context that carries c.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// TokenInfoKey is the key of the caller in the go-sdk's auth.TokenInfo.Extra,
// where the resource guard puts it.
const TokenInfoKey = "mcpgate.caller"

// FromContext returns the caller that the resource guard verified, or nil
// when the request did not pass through it. The caller is shared by every
// request with the same token: read it, never modify it.
func FromContext(ctx context.Context) *Caller {
	if c, ok := ctx.Value(callerKey{}).(*Caller); ok {
		return c
	}
	if ti := auth.TokenInfoFromContext(ctx); ti != nil {
		c, _ := ti.Extra[TokenInfoKey].(*Caller)
		return c
	}
	return nil
}

// HasScope reports whether the caller's token carries scope s.
func (c *Caller) HasScope(s string) bool {
	for _, have := range c.Scopes {
		if have == s {
			return true
		}
	}
	return false
}

// Printable reports whether v can travel in an HTTP header or an
// environment variable as it is: no control characters but tab.
func Printable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// LowerDomain returns the domain d (of an email address, a hosted domain)
// in lower case, as DNS names compare, and ok false when d holds a byte
// that is not ASCII: Unicode case folding would make another domain
// match an allowed one (strings.ToLower turns "İbm.com" into "ibm.com",
// and a Kelvin sign into "k"; SEC-189).
func LowerDomain(d string) (string, bool) {
	for i := 0; i < len(d); i++ {
		if d[i] >= 0x80 {
			return "", false
		}
	}
	return strings.ToLower(d), true
}

// JoinGroups joins group names with "," for a header or an environment
// variable (X-Forwarded-Groups, MCPGATE_USER_GROUPS). A name is never
// left out (SEC-74: a backend that denies a group would let its holder
// in), nor read as another or as two: "%", ",", control characters and a
// space at either end of a name (which a list parser trims) are
// percent-encoded (%XX, RFC 3986 §2.1), so a reader splits at "," and
// percent-decodes each item. Every other byte stays as it is, so that
// ordinary names ("org/team", "Sales Team", UTF-8) read as written, which
// url.PathEscape would not keep. An empty name, which is none, is left
// out.
func JoinGroups(groups []string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for _, g := range groups {
		if g == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		for i := 0; i < len(g); i++ {
			c := g[i]
			if c == '%' || c == ',' || c < 0x20 || c == 0x7f || c == ' ' && (i == 0 || i == len(g)-1) {
				b.WriteByte('%')
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
				continue
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}
