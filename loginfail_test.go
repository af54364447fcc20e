package mcpgate_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// signInFailure is the page a login that failed at a provider ends at:
// its status, title, message, and the OAuth error its link takes back to
// the application.
type signInFailure struct {
	status         int
	title, message string
	code, desc     string
}

// The three pages, for a provider shown as name.
func declinedAt(name string) signInFailure {
	return signInFailure{403, name + " did not sign you in",
		"The sign-in at " + name + " was cancelled or refused, so you are not signed in. To try again, or to use another account, go back to the application and connect again.",
		"access_denied", "the user was not signed in at the identity provider"}
}

func unreachable(name string) signInFailure {
	return signInFailure{502, name + " could not be reached",
		name + " did not answer, or failed, while signing you in. Wait a moment, then go back to the application and connect again.",
		"temporarily_unavailable", "the identity provider could not be reached"}
}

func unverifiedAt(name string) signInFailure {
	return signInFailure{403, "The sign-in could not be verified",
		"The answer from " + name + " could not be verified, so you are not signed in. Trying again will likely fail the same way: tell your administrator, who will find the reason in mcpgate's log.",
		"access_denied", "the identity provider's answer could not be verified"}
}

// check asserts that the walk stopped at want's page (pe, with body the
// page's HTML) and that its link back carries want's error to a's
// redirect URI with the request's state and the issuer, never a code.
func (want signInFailure) check(t *testing.T, pe *browser.PageError, body string, a *authRequest, issuer string) {
	t.Helper()
	if pe == nil {
		t.Fatalf("the walk went on to the client; want the page %q", want.title)
	}
	if pe.Status != want.status || !strings.Contains(pe.Text, want.title) || !strings.Contains(pe.Text, want.message) {
		t.Fatalf("page %d %q; want %d titled %q, saying %q", pe.Status, pe.Text, want.status, want.title, want.message)
	}
	back, err := url.Parse(html.UnescapeString(between(body, `id="back" href="`, `"`)))
	if err != nil || !strings.HasPrefix(back.String(), a.Redirect+"?") || !strings.Contains(body, ">Back to the application</a>") {
		t.Fatalf("the page's link back %q (%v); want \"Back to the application\" to %s", back, err, a.Redirect)
	}
	if q := back.Query(); q.Get("error") != want.code || q.Get("error_description") != want.desc ||
		q.Get("state") != a.State || q.Get("iss") != issuer || q.Has("code") {
		t.Fatalf("the link back gives the client %v; want %s (%q) with state %q and iss %s, no code", q, want.code, want.desc, a.State, issuer)
	}
}

// A login that meets a store it cannot read gets 503 and "Try again",
// with no internal text, not the page of an expired request: the request
// is still there, and the same login goes through once the store is back.
func TestLoginStoreFailureIsTryAgain(t *testing.T) {
	g := newGateway(t, withFaultyStore)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	g.faulty().failTake.Store(true)
	_, _, _, err := browser.New(testUser, testPassword).Authorize(context.Background(), a.URL(), redirectURI)
	pe, ok := err.(*browser.PageError)
	if !ok || pe.Status != http.StatusServiceUnavailable || !strings.Contains(pe.Text, "Try again") || strings.Contains(pe.Text, "disk") {
		t.Fatalf("login with the store failing: %v; want the 503 page \"Try again\" without the store's error", err)
	}
	g.faulty().failTake.Store(false)
	if code, _ := g.login(g.newAuth(c.ClientID)); code == "" {
		t.Fatal("a login once the store is back: no code")
	}
}
