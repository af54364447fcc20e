package mcpgate_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// SEC-125: failed logins sent as alice from another browser lock her name
// for every browser that never signed in as her, but not for the browser
// she signed in with before; that browser's own failures are throttled as
// the name's are.
func TestSEC125_KnownBrowserNotLockedOutByOthersFailures(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	reg := g.register(nil)

	alice := browser.New(testUser, testPassword)
	if _, _, _, err := alice.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err != nil {
		t.Fatalf("alice's first sign-in: %v", err)
	}
	// Her browser's sign-in session ends (sign-out, expiry): the next
	// authorization shows the login form again.
	base, _ := url.Parse(g.url)
	alice.Client.Jar.SetCookies(base, []*http.Cookie{{Name: "mcpgate_session", Value: "x", Path: "/", MaxAge: -1}})

	// mallory, in her own browser, which signed in as her, types wrong
	// passwords for alice until the name is locked.
	if err := g.local.SetUser(ctx, "mallory", "mallory-password"); err != nil {
		t.Fatal(err)
	}
	mallory := browser.New("mallory", "mallory-password")
	if _, _, _, err := mallory.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err != nil {
		t.Fatalf("mallory's sign-in: %v", err)
	}
	mallory.Client.Jar.SetCookies(base, []*http.Cookie{{Name: "mcpgate_session", Value: "x", Path: "/", MaxAge: -1}})
	mallory.Username, mallory.Password = testUser, "wrong"
	for i := range 6 {
		_, _, _, err := mallory.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI)
		if pe := (*browser.PageError)(nil); !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized {
			t.Fatalf("mallory's failure %d: %v, want the login form again with 401", i+1, err)
		}
	}
	// Even the right password is refused from a browser that never signed
	// in as alice, mallory's (whose device is hers, not alice's) or a new
	// one: the lock still protects alice against guessing.
	mallory.Password = testPassword
	if _, _, _, err := mallory.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err == nil {
		t.Fatal("mallory's browser signed in as alice while her name is locked; want it refused")
	}
	_, _, _, err := browser.New(testUser, testPassword).Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI)
	if pe := (*browser.PageError)(nil); !errors.As(err, &pe) || pe.Status != http.StatusUnauthorized ||
		!strings.HasPrefix(pe.Text, "Too many failed sign-ins under this name. Wait half a minute") {
		// Not "Wrong username or password": her password is right.
		t.Fatalf("a new browser signing in as alice while her name is locked: %v; want it refused, saying to wait", err)
	}

	if _, _, _, err := alice.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err != nil {
		t.Fatalf("alice's own browser, after mallory's failures: %v; want her signed in", err)
	}

	// Her browser's own failures are throttled on their own budget.
	alice.Client.Jar.SetCookies(base, []*http.Cookie{{Name: "mcpgate_session", Value: "x", Path: "/", MaxAge: -1}})
	alice.Password = "wrong"
	for i := range 5 {
		if _, _, _, err := alice.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err == nil {
			t.Fatalf("failure %d from alice's browser signed in", i+1)
		}
	}
	alice.Password = testPassword
	if _, _, _, err := alice.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err == nil {
		t.Fatal("alice's browser signed in right after five failures of its own; want it throttled")
	}
}

// SEC-125: local names are case-sensitive, so "Alice" may be mallory's
// account and "alice" another person's. A device cookie mallory earned as
// "Alice" proves nothing for "alice": her browser stays under alice's lock,
// or every new sign-in as "Alice" would be a fresh budget of guesses.
func TestSEC125_DeviceCookieNotMovedToANameThatDiffersInCase(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	reg := g.register(nil)
	base, _ := url.Parse(g.url)
	if err := g.local.SetUser(ctx, "Alice", "mallory-password"); err != nil {
		t.Fatal(err)
	}

	mallory := browser.New("Alice", "mallory-password")
	if _, _, _, err := mallory.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err != nil {
		t.Fatalf("mallory's sign-in as Alice: %v", err)
	}
	mallory.Client.Jar.SetCookies(base, []*http.Cookie{{Name: "mcpgate_session", Value: "x", Path: "/", MaxAge: -1}})

	// alice's name is locked by failures from a browser that never signed in.
	other := browser.New(testUser, "wrong")
	for i := range 6 {
		if _, _, _, err := other.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err == nil {
			t.Fatalf("failure %d signed in", i+1)
		}
	}
	mallory.Username, mallory.Password = testUser, testPassword
	if _, _, _, err := mallory.Authorize(ctx, g.newAuth(reg.ClientID).URL(), redirectURI); err == nil {
		t.Fatal("mallory's browser, known as Alice's, signed in as alice while her name is locked; want it refused")
	}
}
