package mcpgate_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

const (
	attackerRedirect = "https://attacker.example/cb"
	victimUser       = "bob"
	victimPassword   = "bob's own password"
)

// jarBrowser is one browser: its own cookies, redirects seen one by one.
type jarBrowser struct {
	t  *testing.T
	hc *http.Client
}

func newJarBrowser(t *testing.T) *jarBrowser {
	jar, _ := cookiejar.New(nil)
	return &jarBrowser{t: t, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *jarBrowser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *jarBrowser) post(u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.PostForm(u, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// allow clicks Allow on a consent page with the given connector.
func (b *jarBrowser) allow(g *gw, page, connector string) *http.Response {
	b.t.Helper()
	resp, body := b.post(g.url+"/consent", url.Values{"request_id": {between(page, `name="request_id" value="`, `"`)},
		"csrf_token": {between(page, `name="csrf_token" value="`, `"`)}, "decision": {"allow"}, "connector": {connector}})
	if resp.StatusCode != 302 {
		b.t.Fatalf("consent: %d, want 302:\n%s", resp.StatusCode, body)
	}
	return resp
}

// signIn submits a login page as a person does: the page's own hidden
// fields, then a name and a password.
func (b *jarBrowser) signIn(g *gw, page, username, password string) *http.Response {
	b.t.Helper()
	resp, _ := b.post(g.url+"/login/local", url.Values{"state": {between(page, `name="state" value="`, `"`)},
		"csrf_token": {between(page, `name="csrf_token" value="`, `"`)}, "username": {username}, "password": {password}})
	return resp
}

// attackerFlow registers the attacker's client with their own https
// redirect URI, approves the request in the attacker's browser and
// returns the link consent sent that browser to (the login page of a
// password connector, the provider's page of a callback connector).
func attackerFlow(t *testing.T, g *gw, connector string) (registered, *authRequest, string) {
	t.Helper()
	c := g.register(map[string]any{"client_name": "Attacker App", "redirect_uris": []string{attackerRedirect}, "application_type": "web"})
	a := g.newAuth(c.ClientID)
	a.Redirect = attackerRedirect
	attacker := newJarBrowser(t)
	_, page := attacker.get(a.URL())
	loc := attacker.allow(g, page, connector).Header.Get("Location")
	if loc == "" {
		t.Fatal("consent: no Location")
	}
	if strings.HasPrefix(loc, "/") {
		loc = g.url + loc
	}
	return c, a, loc
}

// noConsentFor fails the test when consent for clientID is recorded under userID.
func noConsentFor(t *testing.T, g *gw, userID, clientID string) {
	t.Helper()
	if c, err := g.store.GetConsent(t.Context(), userID, clientID, g.url+"/mcp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SEC-2: consent recorded under %s for the attacker's client: %+v, %v; want none", userID, c, err)
	}
}

// wantConsentPage fails unless page is the consent page of the attacker's client.
func wantConsentPage(t *testing.T, resp *http.Response, page string) {
	t.Helper()
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/consent"`) || strings.Contains(page, `name="password"`) {
		t.Fatalf("SEC-1: the link in another browser: %d, Location %q, want 200 and the consent page:\n%s",
			resp.StatusCode, resp.Header.Get("Location"), page)
	}
	for _, want := range []string{"Attacker App", "attacker.example", "started in another browser"} {
		if !strings.Contains(page, want) {
			t.Errorf("SEC-1: the consent page shown instead does not name %q:\n%s", want, page)
		}
	}
}

// SEC-1, SEC-2: a login link made by approving one's own request, opened
// in another person's browser, does not log that person in for the
// attacker: the browser is shown the consent page for the attacker's
// application; no code and no consent come out of a sign-in there. Once
// the person allows, the flow is theirs and the old link is dead.
func TestSEC1_LoginLinkInAnotherBrowser(t *testing.T) {
	g := newGateway(t)
	if err := g.local.SetUser(t.Context(), victimUser, victimPassword); err != nil {
		t.Fatal(err)
	}
	c, _, link := attackerFlow(t, g, "local")

	victim := newJarBrowser(t)
	resp, page := victim.get(link)
	if strings.Contains(page, `name="password"`) { // what a person does with a sign-in form
		resp = victim.signIn(g, page, victimUser, victimPassword)
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, attackerRedirect) {
			noConsentFor(t, g, "local:"+victimUser, c.ClientID)
			t.Fatalf("SEC-1: the victim's sign-in on the attacker's link sent the browser to the attacker: %s", loc)
		}
		t.Fatalf("SEC-1: the attacker's link gave the victim a login form; the sign-in answered %d", resp.StatusCode)
	}
	wantConsentPage(t, resp, page)
	noConsentFor(t, g, "local:"+victimUser, c.ClientID)

	// Allowing in this browser continues the flow here, under a new state.
	next := g.url + victim.allow(g, page, "local").Header.Get("Location")
	if !strings.HasPrefix(next, g.url+"/login/local?state=") || next == link {
		t.Fatalf("allow after the restart: Location %q, want a new /login/local link", next)
	}
	if r, _ := newJarBrowser(t).get(link); r.StatusCode != 400 {
		t.Fatalf("SEC-1: the attacker's link after the victim allowed: %d, want 400 (no longer valid)", r.StatusCode)
	}
	if r, _ := victim.get(link); r.StatusCode != 400 {
		t.Fatalf("SEC-1: the old link in the victim's browser: %d, want 400", r.StatusCode)
	}
	_, login := victim.get(next)
	resp = victim.signIn(g, login, victimUser, victimPassword)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, attackerRedirect) || !strings.Contains(loc, "code=") {
		t.Fatalf("sign-in after allowing: %d, Location %q, want a code for the client the person allowed", resp.StatusCode, loc)
	}
	if _, err := g.store.GetConsent(t.Context(), "local:"+victimUser, c.ClientID, g.url+"/mcp"); err != nil {
		t.Fatalf("SEC-2: the person who allowed and signed in has no consent recorded: %v", err)
	}
}

// SEC-1, SEC-2: the same attack through a callback connector: the
// provider's page, opened by the victim, comes back to our callback in the
// victim's browser; that callback neither finishes the attacker's flow nor
// spends the victim's login on it.
func TestSEC1_CallbackInAnotherBrowser(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 4242, Login: "victim"})
	gh, err := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, func(c *mcpgateConfig) { c.Connectors = []upstream.Connector{gh} })
	c, _, link := attackerFlow(t, g, "github")

	victim := newJarBrowser(t)
	resp, _ := victim.get(link) // the victim at GitHub: approved at once
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, g.url+"/callback/github?") {
		t.Fatalf("GitHub sent the victim to %q, want our callback", callback)
	}
	resp, page := victim.get(callback)
	if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, attackerRedirect) {
		noConsentFor(t, g, "github:4242", c.ClientID)
		t.Fatalf("SEC-1: the callback in the victim's browser sent it to the attacker: %s", loc)
	}
	wantConsentPage(t, resp, page)
	noConsentFor(t, g, "github:4242", c.ClientID)

	// Allowing here starts a new login at GitHub; the first state is dead.
	resp = victim.allow(g, page, "github")
	again := resp.Header.Get("Location")
	if !strings.HasPrefix(again, fake.AuthURL()) || again == link {
		t.Fatalf("allow after the restart: Location %q, want a new login at GitHub", again)
	}
	if r, _ := victim.get(callback); r.StatusCode != 400 {
		t.Fatalf("SEC-1: the first callback after the victim allowed: %d, want 400 (no longer valid)", r.StatusCode)
	}
	resp, _ = victim.get(again)
	resp, _ = victim.get(resp.Header.Get("Location"))
	if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, attackerRedirect) || !strings.Contains(loc, "code=") {
		t.Fatalf("callback after allowing: %d, Location %q, want a code for the client the person allowed", resp.StatusCode, loc)
	}
}

// SEC-1, SEC-3: a client that connects two servers runs two flows in one
// browser at once: each login page names its own application, and both
// finish, in either order.
func TestSEC1_TwoFlowsInOneBrowser(t *testing.T) {
	g := newGateway(t)
	b := newJarBrowser(t)
	var auths []*authRequest
	var consentPages, logins []string
	for _, name := range []string{"First App", "Second App"} {
		c := g.register(map[string]any{"client_name": name})
		a := g.newAuth(c.ClientID)
		_, page := b.get(a.URL())
		if strings.Contains(page, "started in another browser") {
			t.Fatalf("the consent page of a flow started in this browser warns that it was started in another:\n%s", page)
		}
		auths, consentPages = append(auths, a), append(consentPages, page)
	}
	for _, page := range consentPages {
		_, login := b.get(g.url + b.allow(g, page, "local").Header.Get("Location"))
		logins = append(logins, login)
	}
	for i, name := range []string{"First App", "Second App"} {
		if !strings.Contains(logins[i], name) || !strings.Contains(logins[i], `name="password"`) {
			t.Fatalf("SEC-3: login page %d does not name %q or has no password field:\n%s", i, name, logins[i])
		}
	}
	for _, i := range []int{1, 0} {
		resp := b.signIn(g, logins[i], testUser, testPassword)
		loc := resp.Header.Get("Location")
		if resp.StatusCode != 302 || !strings.HasPrefix(loc, redirectURI) {
			t.Fatalf("flow %d: %d, Location %q, want a redirect to the client", i, resp.StatusCode, loc)
		}
		q := redirectQuery(t, loc)
		if q.Get("state") != auths[i].State {
			t.Fatalf("flow %d: state %q, want %q", i, q.Get("state"), auths[i].State)
		}
		if r, tok := g.exchange(auths[i], q.Get("code")); r.StatusCode != 200 || tok.AccessToken == "" {
			t.Fatalf("flow %d: token %d %+v, want 200", i, r.StatusCode, tok)
		}
	}
}

// SEC-3: the login page names the application and where the code will
// go, as the consent page does, and the publisher of a CIMD client.
func TestSEC3_LoginPageNamesApplication(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	c := g.register(map[string]any{"client_name": "Acme <b>Agent</b>"})
	cimdID := docs.put("/acme.json", map[string]any{"client_name": "Acme Published", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "none"})
	for _, tc := range []struct{ clientID, name, host string }{
		{c.ClientID, "Acme &lt;b&gt;Agent&lt;/b&gt;", ""},
		{cimdID, "Acme Published", strings.TrimPrefix(docs.srv.URL, "https://")},
	} {
		b := newJarBrowser(t)
		_, page := b.get(g.newAuth(tc.clientID).URL())
		_, login := b.get(g.url + b.allow(g, page, "local").Header.Get("Location"))
		for _, want := range []string{tc.name, "127.0.0.1:33418", tc.host, `name="password"`} {
			if !strings.Contains(login, want) {
				t.Errorf("SEC-3: the login page for %s lacks %q:\n%s", tc.clientID, want, login)
			}
		}
	}
}
