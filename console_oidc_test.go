package mcpgate_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// SEC-107, SEC-111 through an OpenID provider: /admin signs in at the
// provider (its callback finishes the page login, no client involved)
// and comes back; a member of an admin group gets the console, another
// user of the same provider 403, and the local rule names no one when
// the local connector is not configured.
func TestSEC111_AdminGroupsThroughOIDC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, base := loopback(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/oidc"}}},
		Users: []oidctest.User{
			{Sub: "u-ops", Email: "olga@corp.example", EmailVerified: true, Username: "olga", Groups: []string{"ops"}, Password: "olga-pw"},
			{Sub: "admin", Email: "adam@corp.example", EmailVerified: true, Username: "admin", Groups: []string{"devs"}, Password: "adam-pw"},
		},
	})
	con, err := oidc.New(ctx, oidc.Config{Name: "oidc", Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Connectors = []upstream.Connector{con}
		c.AdminGroups = []string{"ops"}
	})
	signIn := func(sub, pw string) *http.Client {
		t.Helper()
		b := browser.New(sub, pw)
		loc, err := b.Walk(ctx, base+"/admin/grants", base+"/admin/grants")
		if err != nil || loc.String() != base+"/admin/grants" {
			t.Fatalf("SEC-107: %s signing in at /admin/grants through the provider: %v, back at %v", sub, err, loc)
		}
		c := *b.Client
		c.CheckRedirect = g.client.CheckRedirect
		return &c
	}
	if resp, body := page(t, signIn("u-ops", "olga-pw"), "GET", base+"/admin/grants", nil); resp.StatusCode != 200 {
		t.Errorf("SEC-111: a member of ops at /admin/grants: %d, want 200\n%s", resp.StatusCode, body)
	}
	if resp, _ := page(t, signIn("admin", "adam-pw"), "GET", base+"/admin/grants", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("SEC-111: oidc:admin, in no admin group, at /admin/grants: %d, want 403", resp.StatusCode)
	}
	list, err := g.store.ListGrants(ctx, "")
	if err != nil || len(list) != 0 {
		t.Errorf("page logins made grants: %v %d", err, len(list))
	}
}
