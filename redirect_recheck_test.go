package mcpgate_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	appRedirect   = "https://app.example/cb"
	localhostWarn = "only sends you back to your own"
)

// wantNoLongerUsable fails unless the answer is a page saying the request
// cannot be used, with no redirect and no localhost reassurance.
func wantNoLongerUsable(t *testing.T, what string, resp *http.Response, page string) {
	t.Helper()
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(page, "no longer lists") ||
		strings.Contains(page, localhostWarn) {
		t.Fatalf("SEC-6: %s after the document dropped the request's redirect URI: %d, Location %q, want 400, no redirect, a page saying so:\n%s",
			what, resp.StatusCode, resp.Header.Get("Location"), page)
	}
}

// SEC-6, REDIR-2: a metadata document changed after /authorize no longer
// lists the request's https redirect URI, only a localhost one. No later
// step sends a code to the stored URI, and none tells the person that the
// application only sends them back to their own computer: the restart
// page, the login form, its post and the consent post of a logged-in
// browser each end with an error page, never a redirect.
func TestSEC6_RedirectURIRecheckedAfterAuthorize(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	id := docs.put("/app.json", map[string]any{"client_name": "Docs App", "redirect_uris": []string{appRedirect},
		"token_endpoint_auth_method": "none"})
	consentPage := func(b *jarBrowser) string {
		a := g.newAuth(id)
		a.Redirect = appRedirect
		resp, page := b.get(a.URL())
		if resp.StatusCode != 200 || strings.Contains(page, localhostWarn) {
			t.Fatalf("consent page for %s: %d, want 200 without the localhost reassurance:\n%s", appRedirect, resp.StatusCode, page)
		}
		return page
	}
	// Flows that reached each step while the document listed the URI.
	consenter := newJarBrowser(t)
	link := g.url + consenter.allow(g, consentPage(consenter), "local").Header.Get("Location")
	signer := newJarBrowser(t)
	_, login := signer.get(g.url + signer.allow(g, consentPage(signer), "local").Header.Get("Location"))
	if !strings.Contains(login, `name="password"`) {
		t.Fatalf("no login form:\n%s", login)
	}
	loggedInB := loggedIn(t, g)
	consent := consentPage(loggedInB)

	docs.put("/app.json", map[string]any{"client_name": "Docs App", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "none", "client_id": id})
	g.clock.Advance(301 * time.Second) // past the document's max-age, within the request's lifetime

	resp, page := newJarBrowser(t).get(link)
	wantNoLongerUsable(t, "the login link in another browser (the restart page)", resp, page)
	resp, page = consenter.get(link)
	wantNoLongerUsable(t, "the login link in the browser that consented", resp, page)
	resp = signer.signIn(g, login, testUser, testPassword)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 400 || loc != "" {
		t.Fatalf("SEC-6: signing in after the document dropped the redirect URI: %d, Location %q, want 400 and no redirect", resp.StatusCode, loc)
	}
	for _, decision := range []string{"allow", "deny"} {
		resp, page = loggedInB.post(g.url+"/consent", url.Values{"request_id": {between(consent, `name="request_id" value="`, `"`)},
			"csrf_token": {between(consent, `name="csrf_token" value="`, `"`)}, "decision": {decision}})
		wantNoLongerUsable(t, decision+" on the consent page of a logged-in browser", resp, page)
	}
	if docs.hits < 2 {
		t.Fatalf("the document was fetched %d times, want a fetch after the change", docs.hits)
	}
}

// SEC-6, CIMD-11: the localhost warning describes where this request's
// code goes, not the client's whole list: a client that registers both a
// localhost and an https redirect URI gets it for the localhost one only.
func TestSEC6_LocalhostWarningFollowsTheRequest(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	id := docs.put("/both.json", map[string]any{"client_name": "Both App", "redirect_uris": []string{appRedirect, redirectURI},
		"token_endpoint_auth_method": "none"})
	for _, tc := range []struct {
		redirect string
		warn     bool
	}{{redirectURI, true}, {appRedirect, false}} {
		a := g.newAuth(id)
		a.Redirect = tc.redirect
		b := newJarBrowser(t)
		resp, page := b.get(a.URL())
		if resp.StatusCode != 200 || strings.Contains(page, localhostWarn) != tc.warn {
			t.Fatalf("SEC-6: consent page for %s: %d, localhost warning %v, want %v:\n%s", tc.redirect, resp.StatusCode, !tc.warn, tc.warn, page)
		}
		_, login := b.get(g.url + b.allow(g, page, "local").Header.Get("Location"))
		if strings.Contains(login, localhostWarn) != tc.warn {
			t.Fatalf("SEC-6: login page for %s: localhost warning %v, want %v:\n%s", tc.redirect, !tc.warn, tc.warn, login)
		}
	}
}
