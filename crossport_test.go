package mcpgate_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// On a loopback gateway over plain http, a page served from another port
// of the same machine shares the gateway's cookies: browsers separate
// cookies by host, not by port, and same-site rules ignore ports too. These
// tests plant cookies as such a page can, through the jar of the browser
// under attack at another port's URL (Go's jar, like browsers, ignores it).

// otherPort is a page on the gateway's host at another port.
func otherPort(g *gw) string {
	u, _ := url.Parse(g.url)
	port := "1"
	if u.Port() == "1" {
		port = "2"
	}
	return "http://" + u.Hostname() + ":" + port
}

// plant sets a cookie in b as a page on another port of the gateway's host can.
func (b *jarBrowser) plant(g *gw, name, value, path string) {
	u, _ := url.Parse(otherPort(g) + path)
	b.hc.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: path}})
}

// cookie returns the value of b's cookie name sent to path at the gateway.
func (b *jarBrowser) cookie(g *gw, path, name string) string {
	u, _ := url.Parse(g.url + path)
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	b.t.Fatalf("no cookie %s for %s", name, path)
	return ""
}

// send sends one request with b's cookies and the given headers, as a
// browser would from a page that set them.
func (b *jarBrowser) send(method, u string, form url.Values, hdr map[string]string) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp, string(page)
}

// loggedIn returns a browser in which testUser has signed in.
func loggedIn(t *testing.T, g *gw) *jarBrowser {
	t.Helper()
	b := newJarBrowser(t)
	_, page := b.get(g.newAuth(g.register(nil).ClientID).URL())
	_, login := b.get(g.url + b.allow(g, page, "local").Header.Get("Location"))
	if resp := b.signIn(g, login, testUser, testPassword); resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "code=") {
		t.Fatalf("signing in: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return b
}

// attackerLinkUnder approves the attacker's request in the attacker's
// browser and returns the client, the attacker's CSRF cookie X (which a
// page on another port can plant) and the login link bound to X.
func attackerLinkUnder(t *testing.T, g *gw) (registered, string, string) {
	t.Helper()
	c := g.register(map[string]any{"client_name": "Attacker App", "redirect_uris": []string{attackerRedirect}, "application_type": "web"})
	a := g.newAuth(c.ClientID)
	a.Redirect = attackerRedirect
	attacker := newJarBrowser(t)
	_, page := attacker.get(a.URL())
	x := attacker.cookie(g, "/consent", "mcpgate_csrf")
	return c, x, g.url + attacker.allow(g, page, "local").Header.Get("Location")
}

// wantRefused fails unless the answer is the "Request refused" page.
func wantRefused(t *testing.T, what string, resp *http.Response, page string) {
	t.Helper()
	if resp.StatusCode != 403 || !strings.Contains(page, "Request refused") || resp.Header.Get("Location") != "" {
		t.Fatalf("SEC-5: %s: %d, Location %q, want 403 and the Request refused page:\n%s",
			what, resp.StatusCode, resp.Header.Get("Location"), page)
	}
}

// SEC-5: a page on another loopback port makes a signed-in person's
// browser post the attacker's consent form (a request the attacker opened
// under their own CSRF cookie X, which the page planted): the post carries
// the person's session, but it does not come from the gateway's own page,
// so no code is issued and no consent recorded.
func TestSEC5_CrossOriginConsentPostRefused(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"client_name": "Attacker App", "redirect_uris": []string{attackerRedirect}, "application_type": "web"})
	a := g.newAuth(c.ClientID)
	a.Redirect = attackerRedirect
	attacker := newJarBrowser(t)
	_, page := attacker.get(a.URL())
	x := attacker.cookie(g, "/consent", "mcpgate_csrf")
	form := url.Values{"request_id": {between(page, `name="request_id" value="`, `"`)},
		"csrf_token": {between(page, `name="csrf_token" value="`, `"`)}, "decision": {"allow"}}

	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"Origin of another port", map[string]string{"Origin": otherPort(g), "Sec-Fetch-Site": "same-site"}},
		{"Origin null", map[string]string{"Origin": "null"}},
		{"Sec-Fetch-Site same-site without Origin", map[string]string{"Sec-Fetch-Site": "same-site"}},
		{"Sec-Fetch-Site cross-site", map[string]string{"Origin": g.url, "Sec-Fetch-Site": "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := loggedIn(t, g.on(t))
			// A server on the other port replaces the person's cookie
			// with X (same name, host and path): one CSRF cookie.
			victim.plant(g, "mcpgate_csrf", x, "/")
			resp, body := victim.send("POST", g.url+"/consent", form, tc.hdr)
			wantRefused(t, "a consent post from "+tc.name, resp, body)
			noConsentFor(t, g, "local:"+testUser, c.ClientID)
		})
	}

	// The page plants X under a longer path, so that it is sent first,
	// and posts with the gateway's Origin (as if it could): the person's
	// own cookie goes along, and two CSRF cookies are refused.
	victim := loggedIn(t, g)
	victim.plant(g, "mcpgate_csrf", x, "/consent")
	resp, body := victim.send("POST", g.url+"/consent", form, map[string]string{"Origin": g.url, "Sec-Fetch-Site": "same-origin"})
	wantRefused(t, "a consent post with two CSRF cookies", resp, body)
	noConsentFor(t, g, "local:"+testUser, c.ClientID)

	// The same post from the gateway's own page, with one cookie, is the
	// person allowing: a code. (This is why the refusals above are the
	// origin and cookie rules, not something else in the forged form.)
	victim = loggedIn(t, g)
	victim.plant(g, "mcpgate_csrf", x, "/")
	resp, _ = victim.send("POST", g.url+"/consent", form, map[string]string{"Origin": g.url, "Sec-Fetch-Site": "same-origin"})
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, attackerRedirect+"?code=") {
		t.Fatalf("the form from the gateway's own page: %d, Location %q, want a code", resp.StatusCode, loc)
	}
}

// SEC-5: the login form's post, too, is refused unless it comes from the
// gateway's own page.
func TestSEC5_CrossOriginLoginPostRefused(t *testing.T) {
	g := newGateway(t)
	b := newJarBrowser(t)
	_, page := b.get(g.newAuth(g.register(nil).ClientID).URL())
	resp, login := b.get(g.url + b.allow(g, page, "local").Header.Get("Location"))
	// Browsers send "Origin: null" with a form posted from a page whose
	// policy is no-referrer, which the check would refuse.
	if rp := resp.Header.Get("Referrer-Policy"); rp != "same-origin" {
		t.Fatalf("SEC-5: the login page's Referrer-Policy is %q, want same-origin (no Referer to other origins, the Origin kept for its own form)", rp)
	}
	form := url.Values{"state": {between(login, `name="state" value="`, `"`)},
		"csrf_token": {between(login, `name="csrf_token" value="`, `"`)}, "username": {testUser}, "password": {testPassword}}
	resp, body := b.send("POST", g.url+"/login/local", form, map[string]string{"Origin": otherPort(g)})
	wantRefused(t, "a login post from another port", resp, body)
	resp, body = b.send("POST", g.url+"/login/local", form, map[string]string{"Sec-Fetch-Site": "same-site"})
	wantRefused(t, "a login post with Sec-Fetch-Site same-site", resp, body)
	resp, _ = b.send("POST", g.url+"/login/local", form, map[string]string{"Origin": g.url, "Sec-Fetch-Site": "same-origin"})
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, redirectURI+"?code=") {
		t.Fatalf("the login form from the gateway's own page: %d, Location %q, want a code", resp.StatusCode, loc)
	}
}

// SEC-5: a browser that carries a planted CSRF cookie beside its own
// (the planter chose a longer path, so that its cookie is read first)
// opens the attacker's login link: refused, rather than shown a login
// form bound to the planted cookie, or the consent page, whose form the
// planted cookie would bind too and whose post the browser would send
// without it.
func TestSEC5_TwoCSRFCookiesRefused(t *testing.T) {
	g := newGateway(t)
	if err := g.local.SetUser(t.Context(), victimUser, victimPassword); err != nil {
		t.Fatal(err)
	}
	c, x, link := attackerLinkUnder(t, g)

	victim := newJarBrowser(t)
	_, _ = victim.get(g.newAuth(g.register(nil).ClientID).URL()) // the victim's own CSRF cookie
	victim.plant(g, "mcpgate_csrf", x, "/login/")
	resp, body := victim.send("GET", link, nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if strings.Contains(body, `name="password"`) {
		resp = victim.signIn(g, body, victimUser, victimPassword)
		t.Fatalf("SEC-5: the link with a planted cookie gave a login form; signing in answered %d, Location %q",
			resp.StatusCode, resp.Header.Get("Location"))
	}
	wantRefused(t, "the login link with two CSRF cookies", resp, body)
	// The refusal drops both cookies, so that the next try starts clean:
	// the link then asks this browser for consent.
	u, _ := url.Parse(link)
	for _, c := range victim.hc.Jar.Cookies(u) {
		if c.Name == "mcpgate_csrf" {
			t.Fatalf("SEC-5: after the refusal the browser still sends mcpgate_csrf=%s to the login link", c.Value)
		}
	}
	resp, body = victim.send("GET", link, nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	wantConsentPage(t, resp, body)

	victim.plant(g, "mcpgate_csrf", x, "/login/")
	lu, _ := url.Parse(link)
	form := url.Values{"state": {lu.Query().Get("state")}, "csrf_token": {"x"},
		"username": {victimUser}, "password": {victimPassword}}
	resp, body = victim.send("POST", g.url+"/login/local", form, map[string]string{"Origin": g.url})
	wantRefused(t, "a login post with two CSRF cookies", resp, body)
	noConsentFor(t, g, "local:"+victimUser, c.ClientID)
}

// SEC-5: a person who never used the gateway has no cookie of their own,
// so a planted one is the only one: then the login link the attacker made
// under it is opened by a navigation that did not come from the gateway's
// own consent page, and that browser is asked for consent instead of
// being shown the login form.
func TestSEC5_PlantedCookieFirstTimeVictim(t *testing.T) {
	g := newGateway(t)
	_, x, link := attackerLinkUnder(t, g)

	for _, tc := range []struct {
		name, link, site string
	}{
		{"from a page on another port", link, "same-site"},
		{"from another site", link, "cross-site"},
		{"from a mail application", link, "none"},
		// A gateway page that redirects to a client's redirect URI adds
		// iss (and code or error), which a login link never has: a
		// client that registered the login URL as its redirect URI gets
		// no same-origin navigation to it.
		{"through a client redirect", link + "&error=access_denied&iss=" + url.QueryEscape(g.url), "same-origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			victim := newJarBrowser(t)
			victim.plant(g, "mcpgate_csrf", x, "/")
			resp, body := victim.send("GET", tc.link, nil, map[string]string{"Sec-Fetch-Site": tc.site})
			if strings.Contains(body, `name="password"`) {
				t.Fatalf("SEC-5: the attacker's link %s, in a browser holding the attacker's planted cookie, shows the login form", tc.name)
			}
			wantConsentPage(t, resp, body)
		})
	}
	// The login link reached from the gateway's own consent page (the
	// redirect after Allow) is the login form.
	attacker := newJarBrowser(t)
	attacker.plant(g, "mcpgate_csrf", x, "/")
	resp, body := attacker.send("GET", link, nil, map[string]string{"Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("the login link after the consent page: %d, want the login form:\n%s", resp.StatusCode, body)
	}
}
