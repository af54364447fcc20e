package mcpgate_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// SEC-130: a local account's new password, or its removal from a group,
// ends its browser sessions: a console session opened with a stolen admin
// password no longer opens /admin once the operator sets a new one, a
// person taken out of admin_groups no longer sees the console, and a
// browser signed in before a password change must sign in again to
// approve a client. The same password set again, as the configuration's
// accounts are at every start, keeps the sessions. Fails before this
// change: the old sessions worked for their whole 12 hours.
func TestSEC130_CredentialChangeEndsSessions(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.AdminGroups = []string{"ops"} })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := func(name, password string, groups ...string) {
		t.Helper()
		if err := g.local.SetUser(ctx, name, password, groups...); err != nil {
			t.Fatal(err)
		}
	}
	console := func(c *http.Client) int {
		t.Helper()
		resp, _ := page(t, c, "GET", g.url+"/admin/users", nil)
		return resp.StatusCode
	}
	set("admin", testPassword)
	set("carol", testPassword, "ops")
	thief := g.pageLogin("admin", testPassword, "/admin")
	carol := g.pageLogin("carol", testPassword, "/admin")

	set("admin", testPassword) // the same password, as at a restart
	set("carol", testPassword, "ops")
	if s := console(thief); s != 200 {
		t.Fatalf("/admin after the same password is set again: %d, want 200 (the session kept)", s)
	}
	if s := console(carol); s != 200 {
		t.Fatalf("carol's /admin after her account is set again unchanged: %d, want 200", s)
	}

	set("admin", "a-completely-new-password-42")
	if s := console(thief); s != http.StatusSeeOther {
		t.Errorf("/admin with the session opened before the new password: %d, want 303 to sign in", s)
	}
	set("carol", testPassword) // out of ops
	if s := console(carol); s != http.StatusSeeOther {
		t.Errorf("carol's /admin once out of ops: %d, want 303 to sign in (and then 403)", s)
	}

	// A browser signed in to approve a client must sign in again.
	reg := g.register(nil)
	b := browser.New(testUser, testPassword)
	if _, _, _, err := b.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err != nil {
		t.Fatal(err)
	}
	set(testUser, "a-completely-new-password-42")
	b.Password = testPassword // what a thief who no longer has the password tries
	if _, _, _, err := b.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err == nil {
		t.Errorf("a code for a browser signed in before the new password, with the old password: want the login to fail")
	}
}

// raceAtSession changes a local account the moment a login stores its
// session: after the login's last check of the account, before the
// session exists, which the change's ending of sessions then misses.
type raceAtSession struct {
	store.Store
	change func(ctx context.Context)
}

func (s *raceAtSession) CreateSession(ctx context.Context, sess *store.Session) error {
	if s.change != nil {
		s.change(ctx)
		s.change = nil
	}
	return s.Store.CreateSession(ctx, sess)
}

// SEC-93, SEC-130: a login whose last check of the account comes just
// before the account is disabled, or taken out of a group, stores a
// session that the change did not find to end; it signs no one in, and is
// ended at its first use, so that enabling the account again does not
// revive it. Fails before: a disabled administrator opened the console
// with it, and enabled her own account again.
func TestSEC93_SessionStoredAfterDisableSignsNoOneIn(t *testing.T) {
	for name, change := range map[string]func(ctx context.Context, g *gw) error{
		"disabled": func(ctx context.Context, g *gw) error {
			_, err := g.store.DisableLocalUser(ctx, "carol", g.clock.Now())
			return err
		},
		"out of the admin group": func(ctx context.Context, g *gw) error { return g.local.SetUser(ctx, "carol", testPassword) },
	} {
		t.Run(name, func(t *testing.T) {
			race := &raceAtSession{}
			g := newGateway(t, func(c *mcpgateConfig) { c.AdminGroups = []string{"ops"}; race.Store = c.Store; c.Store = race })
			ctx := context.Background()
			if err := g.local.SetUser(ctx, "carol", testPassword, "ops"); err != nil {
				t.Fatal(err)
			}
			race.change = func(ctx context.Context) {
				if err := change(ctx, g); err != nil {
					t.Error(err)
				}
			}
			carol := g.pageLogin("carol", testPassword, "/admin")
			if resp, _ := page(t, carol, "GET", g.url+"/admin/users", nil); resp.StatusCode == http.StatusOK {
				t.Errorf("/admin/users with the session stored after carol was %s: 200, want the sign-in again", name)
			}
			if err := g.store.EnableLocalUser(ctx, "carol"); err != nil {
				t.Fatal(err)
			}
			if err := g.local.SetUser(ctx, "carol", testPassword, "ops"); err != nil {
				t.Fatal(err)
			}
			if resp, _ := page(t, carol, "GET", g.url+"/admin/users", nil); resp.StatusCode == http.StatusOK {
				t.Errorf("/admin/users with that session once carol is as she was: 200, want it ended for good")
			}
		})
	}
}

// The session check asks the local connector, whose accounts may live in
// a store of their own (local.New takes any UserStore): a browser signed
// in through it stays signed in. Fails with a check of the gateway's
// store: every second authorization showed the login form again.
func TestLocalSessionWithTheConnectorsOwnStore(t *testing.T) {
	accounts := memory.New()
	lc := local.New(accounts, local.Options{})
	if err := lc.SetUser(context.Background(), "dave", hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, func(c *mcpgateConfig) { c.Connectors = []upstream.Connector{lc} })
	reg := g.register(nil)
	b := browser.New("dave", testPassword)
	if _, _, _, err := b.Authorize(context.Background(), g.newAuth(reg.ClientID).URL(), redirectURI); err != nil {
		t.Fatal(err)
	}
	b.Password = "not-the-password" // the second one must need no login
	if _, _, _, err := b.Authorize(context.Background(), g.newAuth(reg.ClientID).URL()+"&prompt=none", redirectURI); err != nil {
		t.Errorf("prompt=none from the browser signed in as dave: %v, want a code", err)
	}
}
