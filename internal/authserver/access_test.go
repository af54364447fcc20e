package authserver

import (
	"testing"

	"github.com/mcpgate/mcpgate/identity"
)

// Each rule of Access on its own, and what must not match: a username
// where an ID is listed, an unverified email, a sub-domain, an empty
// group.
func TestAccessAllows(t *testing.T) {
	a := Access{Users: []string{"github:583231"}, EmailDomains: []string{"example.com", "ibm.com", "kpmg.com"}, Groups: []string{"staff"}}
	for _, tt := range []struct {
		name string
		user identity.User
		want bool
	}{
		{"listed ID", identity.User{ID: "github:583231"}, true},
		{"username of a listed ID's number", identity.User{ID: "local:583231", Username: "583231"}, false},
		{"same username at another provider", identity.User{ID: "oidc:x", Username: "github:583231"}, false},
		{"verified email", identity.User{ID: "oidc:a", Email: "a@Example.COM", EmailVerified: true}, true},
		{"unverified email", identity.User{ID: "oidc:b", Email: "b@example.com"}, false},
		// SEC-189: Unicode case folding is no match ("İ" and the Kelvin
		// sign lower to "i" and "k"); ASCII case is.
		{"dotted capital I", identity.User{ID: "oidc:i", Email: "m@\u0130bm.com", EmailVerified: true}, false},
		{"Kelvin sign", identity.User{ID: "oidc:k", Email: "m@\u212apmg.com", EmailVerified: true}, false},
		{"ASCII capitals", identity.User{ID: "oidc:K", Email: "m@KPMG.com", EmailVerified: true}, true},
		{"sub-domain", identity.User{ID: "oidc:c", Email: "c@eng.example.com", EmailVerified: true}, false},
		{"domain as a suffix", identity.User{ID: "oidc:d", Email: "d@badexample.com", EmailVerified: true}, false},
		{"group", identity.User{ID: "oidc:e", Groups: []string{"devs", "staff"}}, true},
		{"other groups", identity.User{ID: "oidc:f", Groups: []string{"devs", "Staff", ""}}, false},
		{"nothing", identity.User{ID: "local:g"}, false},
	} {
		if got := a.Allows(tt.user); got != tt.want {
			t.Errorf("%s: Allows(%+v) = %v, want %v", tt.name, tt.user, got, tt.want)
		}
	}
	if !(Access{}).Allows(identity.User{ID: "local:anyone"}) {
		t.Error("the zero Access refuses someone; want everyone let in")
	}
}

func TestAccessValidate(t *testing.T) {
	if err := (Access{Users: []string{"local:alice", "github:1"}, EmailDomains: []string{"example.com", "xn--bcher-kva.example"}, Groups: []string{"org/team"}}).Validate(); err != nil {
		t.Errorf("valid rules refused: %v", err)
	}
	for _, bad := range []Access{{Users: []string{"alice"}}, {Users: []string{"local:"}}, {EmailDomains: []string{"a@example.com"}},
		{EmailDomains: []string{"Example.com"}}, {EmailDomains: []string{".example.com"}}, {EmailDomains: []string{""}}, {Groups: []string{" "}}} {
		if (bad).Validate() == nil {
			t.Errorf("%+v accepted, want refused", bad)
		}
	}
}
