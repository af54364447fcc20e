package mcpgate_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// SEC-162 (OpenID Connect Core §3.1.2.1): prompt=login asks the person to
// sign in again. A browser signed in as alice, whose client she approved,
// gets the consent page instead of a code, and its form sends her to sign
// in, where she may choose another account; the code is that account's,
// and the browser's session becomes that account's.
func TestSEC162_PromptLoginSignsInAgain(t *testing.T) {
	var seen string
	g := newGateway(t, whoami(&seen))
	if err := g.local.SetUser(context.Background(), "bob", hashed(bobPassword)); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	_, b := g.login(g.newAuth(c.ClientID)) // alice, approved, signed in

	// Without prompt=login, the signed-in browser gets alice's code at once.
	b.Username, b.Password = "bob", bobPassword
	a := g.newAuth(c.ClientID)
	code, _, _, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	_, tok := g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:"+testUser {
		t.Fatalf("without prompt=login: %d as %q, want the signed-in %s", r.StatusCode, seen, testUser)
	}

	a = g.newAuth(c.ClientID)
	code, _, _, err = b.Authorize(context.Background(), a.URL()+"&prompt=login", a.Redirect)
	if err != nil {
		t.Fatalf("prompt=login: %v, want a code after a sign-in", err)
	}
	_, tok = g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:bob" {
		t.Fatalf("prompt=login, signed in as bob: %d as %q, want local:bob", r.StatusCode, seen)
	}

	// The browser is bob's now: without prompt, a code at once, bob's
	// (he approved the client when he signed in).
	a = g.newAuth(c.ClientID)
	b.Username, b.Password = "nobody", "wrong-password"
	code, _, _, err = b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	_, tok = g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:bob" {
		t.Errorf("after the sign-in again: %d as %q, want local:bob's session", r.StatusCode, seen)
	}
}

// SEC-162: the request to sign in again is the stored request's, not the
// form's: a consent form posted without anything but its decision still
// sends the signed-in person to sign in, and no code comes at once.
func TestSEC162_SignInAgainIsTheRequests(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	_, b := g.login(g.newAuth(c.ClientID)) // alice, approved, signed in
	client := *b.Client
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	a := g.newAuth(c.ClientID)
	resp, body := page(t, &client, "GET", a.URL()+"&prompt=login", nil)
	if resp.StatusCode != 200 || browser.InputValue(body, "request_id") == "" {
		t.Fatalf("prompt=login in a signed-in browser: %d %s, want the consent page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = page(t, &client, "POST", g.url+"/consent", url.Values{"request_id": {browser.InputValue(body, "request_id")},
		"csrf_token": {browser.InputValue(body, "csrf_token")}, "decision": {"allow"}})
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "/login/") {
		t.Errorf("allowing with prompt=login: %d, Location %q; want the login page, not a code", resp.StatusCode, loc)
	}
}
