package oidc

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/identity"
)

// Whatever claims a provider's token carries (decoded as go-oidc decodes
// them), the mapping never panics, and a user it makes has a printable
// subject of at most 255 bytes without blanks at either end (which HTTP
// would trim from X-Forwarded-User, SEC-191), an address only when it was verified, and
// no empty group; claims it cannot read safely are refused.
func FuzzClaims(f *testing.F) {
	for _, s := range []string{
		`{"sub":"u1","preferred_username":"alice","email":"a@x","email_verified":true,"groups":["devs","sre"]}`,
		`{"sub":31337,"groups":"one","realm_access":{"roles":["admin",7]}}`,
		`{"sub":"u1","email":"a@x","email_verified":"true","groups":[{"x":1}]}`,
		`{"sub":"u1","_claim_names":{"groups":"src1"}}`,
		`{"sub":"u2","email":"b@x","email_verified":false,"mail":"c@x"}`,
		`{"sub":"u\u0007","groups":[1.5]}`,
		`{"sub":"8f3e\t","preferred_username":"admin "}`,
		`{"realm_access.roles":["flat"],"sub":"s","realm_access":3}`,
	} {
		f.Add([]byte(s))
	}
	connectors := []*Connector{
		{name: "corp", claims: Claims{}.withDefaults()},
		{name: "kc", claims: Claims{Subject: "sub", Groups: "realm_access.roles", Email: "mail"}.withDefaults()},
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var claims map[string]any
		if json.Unmarshal(raw, &claims) != nil {
			return
		}
		for _, c := range connectors {
			u, err := c.user(claims)
			if err != nil {
				continue
			}
			sub, ok := strings.CutPrefix(u.ID, c.name+":")
			if !ok || sub == "" || len(sub) > maxSubject || !identity.Printable(sub) || strings.TrimSpace(sub) != sub {
				t.Fatalf("%s: user %q from %s, want a printable subject of 1 to %d bytes without outer blanks (SEC-191)", c.name, u.ID, raw, maxSubject)
			}
			if u.Email != "" && !u.EmailVerified || u.Email == "" && u.EmailVerified {
				t.Fatalf("%s: email %q verified %v from %s", c.name, u.Email, u.EmailVerified, raw)
			}
			if u.Email != "" && !verified(claims, u.Email) {
				t.Fatalf("%s: email %q kept though not verified, from %s", c.name, u.Email, raw)
			}
			for _, g := range u.Groups {
				if g == "" {
					t.Fatalf("%s: an empty group from %s", c.name, raw)
				}
			}
		}
	})
}
