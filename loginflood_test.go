package mcpgate_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// SEC-157: one address fails at most 20 password checks a minute, a new
// name each time included (the per-name limits of SEC-125 do nothing
// against that, and each check is a bcrypt): the 21st is refused before
// its password is checked. A browser that signed in under the name before
// (its device cookie) is not held back by its address's failures, and a
// minute later the address may try again.
func TestSEC157_FailedLoginsBoundedPerAddress(t *testing.T) {
	g := newGateway(t)
	// The person's own browser, signed in before the spray.
	a := g.newAuth(g.register(nil).ClientID)
	_, own := g.login(a)

	c := &http.Client{Jar: newJar(t), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, body := page(t, c, "GET", g.url+"/signin?return=/account", nil)
	resp, _ := page(t, c, "POST", g.url+"/signin", url.Values{"return": {"/account"}, "connector": {"local"}, "csrf_token": {browser.InputValue(body, "csrf_token")}})
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/login/local?state=") {
		t.Fatalf("POST /signin: %d %q, want the login page", resp.StatusCode, loc)
	}
	_, form := page(t, c, "GET", g.url+loc, nil)
	try := func(name, password string) (int, string) {
		resp, body := page(t, c, "POST", g.url+"/login/local", url.Values{"state": {browser.InputValue(form, "state")},
			"csrf_token": {browser.InputValue(form, "csrf_token")}, "username": {name}, "password": {password}})
		return resp.StatusCode, body
	}
	for i := range 25 {
		status, body := try(fmt.Sprintf("user%04d", i), "Password1")
		want := http.StatusUnauthorized
		if i >= 20 {
			want = http.StatusTooManyRequests
		}
		if status != want {
			t.Fatalf("failed login %d from one address: %d, want %d:\n%s", i+1, status, want, body)
		}
		if i >= 20 && !strings.Contains(body, "Too many failed sign-ins from your network") {
			t.Fatalf("failed login %d: the page does not say why:\n%s", i+1, body)
		}
	}
	if n := strings.Count(g.logs.String(), `msg="login failed"`); n != 20 {
		t.Errorf("%d passwords checked, want 20: the refused ones must cost no bcrypt", n)
	}
	if status, _ := try(testUser, testPassword); status != http.StatusTooManyRequests {
		t.Errorf("the right password from the address, in a browser that never signed in: %d, want 429", status)
	}

	// The person's browser, session gone but device cookie kept, signs in.
	own.Client.Jar = deviceCookieOnly(t, own.Client.Jar, g.url)
	a = g.newAuth(g.register(nil).ClientID)
	if _, _, _, err := own.Authorize(t.Context(), a.URL(), a.Redirect); err != nil {
		t.Errorf("the person's own browser during the spray: %v, want a code", err)
	}

	g.clock.Advance(time.Minute)
	if status, _ := try(testUser, testPassword); status != http.StatusSeeOther {
		t.Errorf("the right password a minute later: %d, want 303", status)
	}
}

// deviceCookieOnly is a jar holding only jar's device cookie for base: a
// browser whose session ended.
func deviceCookieOnly(t *testing.T, jar http.CookieJar, base string) http.CookieJar {
	t.Helper()
	u, _ := url.Parse(base)
	kept := newJar(t)
	for _, ck := range jar.Cookies(u) {
		if strings.HasSuffix(ck.Name, "mcpgate_device") {
			kept.SetCookies(u, []*http.Cookie{ck})
			return kept
		}
	}
	t.Fatal("the browser has no device cookie")
	return nil
}
