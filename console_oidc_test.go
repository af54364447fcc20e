package mcpgate_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/store"
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
	g, _, base := adminConsoleThroughOIDC(t, ctx,
		oidctest.User{Sub: "u-ops", Email: "olga@corp.example", EmailVerified: true, Username: "olga", Groups: []string{"ops"}, Password: "olga-pw"},
		oidctest.User{Sub: "admin", Email: "adam@corp.example", EmailVerified: true, Username: "admin", Groups: []string{"devs"}, Password: "adam-pw"},
	)
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
	list, err := g.store.ListGrants(ctx, store.GrantQuery{})
	if err != nil || len(list) != 0 {
		t.Errorf("page logins made grants: %v %d", err, len(list))
	}
}

// SEC-144: the admin console asks for a sign-in of the last hour. Someone
// taken out of an admin group at the provider keeps the console at most
// that long: after it, a page sends them to sign in again, which gives
// them the provider's groups of now, and a form they had open is refused.
func TestSEC144_AdminConsoleAsksForARecentSignIn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	olga := oidctest.User{Sub: "u-ops", Email: "olga@corp.example", EmailVerified: true, Username: "olga", Groups: []string{"ops"}, Password: "olga-pw"}
	g, op, base := adminConsoleThroughOIDC(t, ctx, olga)
	b := browser.New("u-ops", "olga-pw")
	walk := func() {
		t.Helper()
		if loc, err := b.Walk(ctx, base+"/admin/grants", base+"/admin/grants"); err != nil || loc.String() != base+"/admin/grants" {
			t.Fatalf("signing in at /admin/grants through the provider: %v, back at %v", err, loc)
		}
	}
	walk()
	c := *b.Client
	c.CheckRedirect = g.client.CheckRedirect

	olga.Groups = []string{"devs"}
	op.SetUser(t, olga)
	g.clock.Advance(59 * time.Minute)
	resp, body := page(t, &c, "GET", base+"/admin/grants", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("SEC-144: the console 59 minutes after the sign-in: %d, want 200 (the login's groups hold for an hour)", resp.StatusCode)
	}
	form := url.Values{"id": {"no-such-grant"}, "csrf_token": {browser.InputValue(body, "csrf_token")}}

	g.clock.Advance(2 * time.Minute)
	if resp, body := page(t, &c, "POST", base+"/admin/grants/revoke", form); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Sign in again") {
		t.Errorf("SEC-144: a console form posted 61 minutes after the sign-in: %d, want 403 asking to sign in again\n%s", resp.StatusCode, body)
	}
	resp, _ = page(t, &c, "GET", base+"/admin/grants", nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/signin?return=%2Fadmin%2Fgrants" {
		t.Fatalf("SEC-144: the console 61 minutes after the sign-in: %d to %q, want 303 to /signin?return=%%2Fadmin%%2Fgrants", resp.StatusCode, loc)
	}
	if resp, _ := page(t, &c, "GET", base+"/account", nil); resp.StatusCode != 200 {
		t.Errorf("SEC-144: the account page with the same session: %d, want 200 (only the console asks for a recent sign-in)", resp.StatusCode)
	}
	oldSession := sessionCookieOf(t, b.Client, base)
	walk() // signs in again at the provider, which no longer puts olga in ops
	if resp, _ := page(t, &c, "GET", base+"/admin/grants", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("SEC-144: the console after signing in again out of ops: %d, want 403", resp.StatusCode)
	}
	if sessionCookieOf(t, b.Client, base) == oldSession {
		t.Fatal("SEC-144: signing in again kept the session cookie")
	}
	copied := &http.Client{CheckRedirect: g.client.CheckRedirect}
	req, _ := http.NewRequest("GET", base+"/account", nil)
	req.AddCookie(&http.Cookie{Name: "mcpgate_session", Value: oldSession})
	if resp, err := copied.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("SEC-144: a copy of the replaced session's cookie at /account: %v %v, want 303 to sign in (the new session replaces it)", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

// adminConsoleThroughOIDC starts an OpenID provider with users and a
// gateway that logs people in there only, with admin group ops; it
// returns the gateway, the provider and the gateway's base URL.
func adminConsoleThroughOIDC(t *testing.T, ctx context.Context, users ...oidctest.User) (*gw, *oidctest.Provider, string) {
	t.Helper()
	ln, base := loopback(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/oidc"}}},
		Users:   users,
	})
	con, err := oidc.New(ctx, oidc.Config{Name: "oidc", Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Connectors = []upstream.Connector{con}
		c.AdminGroups = []string{"ops"}
	})
	return g, op, base
}

// sessionCookieOf returns the gateway's session cookie in c's jar.
func sessionCookieOf(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, k := range c.Jar.Cookies(u) {
		if k.Name == "mcpgate_session" {
			return k.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}
