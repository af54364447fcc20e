package oidc

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/upstream"
)

// maxSubject bounds the subject; OpenID Connect Core §2 says 255 ASCII
// characters.
const maxSubject = 255

// user maps verified claims to a user.
func (c *Connector) user(claims map[string]any) (identity.User, error) {
	sub := str(claims, c.claims.Subject)
	if sub == "" || len(sub) > maxSubject || !identity.Printable(sub) || strings.TrimSpace(sub) != sub {
		return identity.User{}, fmt.Errorf("%s: claim %q is missing, too long, not printable or has outer blanks", c.name, c.claims.Subject)
	}
	if err := c.groupsElsewhere(claims); err != nil {
		return identity.User{}, err
	}
	groups, err := groupNames(claims, c.claims.Groups)
	if err != nil {
		return identity.User{}, fmt.Errorf("%s: the %q claim: %w: %w", c.name, c.claims.Groups, err, upstream.ErrSessionEnded)
	}
	u := identity.User{
		ID:       c.name + ":" + sub,
		Upstream: c.name,
		Username: str(claims, c.claims.Username),
		Name:     str(claims, "name"),
		Picture:  str(claims, "picture"),
		Profile:  str(claims, "profile"),
		Groups:   groups,
	}
	// Never an unverified address: downstream may trust it. Nor as the
	// username (SEC-188): it would reach backends as the preferred
	// username all the same.
	email := str(claims, c.claims.Email)
	if email != "" && verified(claims, email) {
		u.Email, u.EmailVerified = email, true
	}
	if c.unverifiedUsername(claims, u.Username) {
		u.Username = ""
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	return u, nil
}

// groupsElsewhere refuses claims whose groups claim is absent because the
// provider put it at another source (OpenID Connect Core §5.6.2
// distributed claims, named in _claim_names): Entra ID's groups overage,
// for a user in more groups than fit in its token. mcpgate does not fetch
// it (Microsoft Graph), and a user let in without their groups would get
// past a rule that denies one (SEC-70). It is an ended session, so that a
// refresh that meets it ends the grant, and the next login is refused too.
func (c *Connector) groupsElsewhere(claims map[string]any) error {
	if _, ok := lookup(claims, c.claims.Groups); ok {
		return nil
	}
	names, _ := claims["_claim_names"].(map[string]any)
	if _, ok := names[c.claims.Groups]; !ok {
		return nil
	}
	return fmt.Errorf("%s: the %q claim is not in the token but at another source (_claim_names; Entra ID's groups overage: the user is in more groups than fit), which is not read: %w",
		c.name, c.claims.Groups, upstream.ErrSessionEnded)
}

// unverifiedUsername reports whether username is an address the provider
// did not verify (SEC-188): it comes from an email claim (the configured
// one, or the standard one, of which email_verified speaks) whose address
// is not verified, as with the google preset's mapping; or it is such an
// address that the provider said it did not verify. Entra sends its UPN,
// often the same address, with no verdict at all: a name the tenant owns,
// kept.
func (c *Connector) unverifiedUsername(claims map[string]any, username string) bool {
	for _, claim := range []string{c.claims.Email, "email"} {
		addr := str(claims, claim)
		if addr != "" && verified(claims, addr) {
			continue
		}
		if c.claims.Username == claim || (addr != "" && strings.EqualFold(username, addr) && saidUnverified(claims)) {
			return true
		}
	}
	return false
}

// saidUnverified reports whether the claims hold an email_verified that
// is not true (false, or "false"), rather than none.
func saidUnverified(claims map[string]any) bool {
	v, ok := claims["email_verified"]
	return ok && v != true && v != "true"
}

// verified reads email_verified, which some providers send as a string,
// for email. The claim speaks of the email claim (OpenID Connect Core
// §5.1): an address from another claim is verified by it only when the
// token has no email claim, or the same address there (SEC-61).
func verified(claims map[string]any, email string) bool {
	if std, ok := claims["email"]; ok && std != any(email) {
		return false
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// lookup finds a claim by its name at the top level, else by walking the
// dots of the name through nested objects.
func lookup(claims map[string]any, name string) (any, bool) {
	if v, ok := claims[name]; ok {
		return v, true
	}
	var cur any = claims
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// str reads a string claim; an integral number (some providers' numeric
// IDs) is formatted, anything else is absent.
func str(claims map[string]any, name string) string {
	v, _ := lookup(claims, name)
	switch v := v.(type) {
	case string:
		return v
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10)
		}
	}
	return ""
}

// groupNames reads the groups claim: a list, or one value as a list of
// one. A string is a name (empty ones are skipped: no rule can name
// them); an integral number, a provider's numeric group ID, is its
// decimal text, as a numeric subject is. Any other entry is an error
// rather than skipped (SEC-74), and a string with a control character is
// kept for the gateway to refuse (SEC-71): dropping either would let the
// user in past a rule that denies that group.
func groupNames(claims map[string]any, name string) ([]string, error) {
	v, _ := lookup(claims, name)
	list, ok := v.([]any)
	switch {
	case v == nil:
		return nil, nil
	case !ok:
		list = []any{v}
	}
	var out []string
	for i, e := range list {
		switch e := e.(type) {
		case string:
			if e != "" {
				out = append(out, e)
			}
		case float64:
			if e != math.Trunc(e) || math.Abs(e) >= 1<<53 {
				return nil, fmt.Errorf("entry %d is a number that is not a whole group ID", i)
			}
			out = append(out, strconv.FormatInt(int64(e), 10))
		default:
			return nil, fmt.Errorf("entry %d is a %s, not a group name", i, jsonType(e))
		}
	}
	return out, nil
}

// jsonType names the JSON type of a decoded value, for an error.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "list"
	}
	return fmt.Sprintf("%T", v)
}
