package mcpgate_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// redirectsOnly follows b's redirects from start, in b's cookie jar, until
// one leads to a URL that starts with stop, which it returns unrequested,
// with every URL it requested. Every answer on the way must be a redirect:
// a page (a login form, a consent page, an error) fails the test, which is
// how a round trip is shown to need nobody.
func redirectsOnly(t *testing.T, ctx context.Context, b *browser.Browser, start, stop string) (*url.URL, []string) {
	t.Helper()
	c := &http.Client{Jar: b.Client.Jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next, err := url.Parse(start)
	if err != nil {
		t.Fatal(err)
	}
	var visited []string
	for range 20 {
		if strings.HasPrefix(next.String(), stop) {
			return next, visited
		}
		if strings.HasPrefix(next.String(), redirectURI) { // the client's, never served
			t.Fatalf("sent to the client at %s through %v; want %s", next, visited, stop)
		}
		visited = append(visited, next.String())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", next, err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode/100 != 3 || loc == "" {
			t.Fatalf("GET %s: %d, a page where only redirects were expected (after %v): %s", next, resp.StatusCode, visited, body)
		}
		if next, err = next.Parse(loc); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("no redirect to %s within 20 steps: %v", stop, visited)
	return nil, nil
}

// RT-3: every grant of a user who logged in through an OpenID provider
// stands on a login of its own at the provider, whose refresh token is
// kept with that grant and rechecked there. A second authorization from
// the browser that logged in (another client, or the same one again) is
// not issued from the gateway's browser session, which would keep the
// login's groups for the grant's life: removed from the only group that
// is let in, the user loses every grant at its next refresh after
// upstream_recheck, not only the first.
func TestRT3_EveryGrantIsRecheckedAtTheProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, first := newRecheckGateway(t, ctx, func(c *mcpgateConfig) { c.Access.Groups = []string{"admins"} })
	b := g.browser

	grants := map[string]tokenResponse{"first": first}
	other := g.register(nil)
	for name, clientID := range map[string]string{"another client": other.ClientID, "the same client again": g.client.ClientID} {
		a := g.newAuth(clientID)
		code, _, _, err := b.Authorize(ctx, a.URL(), a.Redirect)
		if err != nil {
			t.Fatalf("%s: authorize from the logged-in browser: %v", name, err)
		}
		resp, tok := g.exchange(a, code)
		if resp.StatusCode != 200 || tok.RefreshToken == "" {
			t.Fatalf("%s: token: %d %+v, want 200 with a refresh token", name, resp.StatusCode, tok)
		}
		grants[name] = tok
	}

	g.alice.Groups = []string{"devs"}
	g.op.SetUser(t, g.alice)
	g.clock.Advance(2 * time.Hour)
	for name, tok := range grants {
		resp, tr := g.refresh(clientOf(g, other, name), tok.RefreshToken, nil)
		if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
			t.Errorf("%s grant: refresh after leaving the allowed group upstream: %d %q, want 400 invalid_grant", name, resp.StatusCode, tr.Error)
		}
		if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
			t.Errorf("%s grant: access token of the ended family: %d, want 401", name, r.StatusCode)
		}
	}
}

func clientOf(g *recheckGateway, other registered, name string) string {
	if name == "another client" {
		return other.ClientID
	}
	return g.client.ClientID
}

// RT-3: the second authorization's login at the provider costs the person
// nothing: the provider's own session sends the browser straight back.
// The same client again (consent remembered, DEP-2) goes from /authorize
// to the provider and back with a code, through redirects only; another
// client first gets the gateway's consent page, as before, then the same
// silent round trip. Each login gets a refresh token of its own from the
// provider (they rotate, so grants cannot share one).
func TestRT3_SecondAuthorizationIsASilentRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	b := g.browser
	throughProvider := func(visited []string) bool {
		return slices.ContainsFunc(visited, func(u string) bool { return strings.HasPrefix(u, g.op.Issuer()+"/") })
	}

	a := g.newAuth(g.client.ClientID)
	done, visited := redirectsOnly(t, ctx, b, a.URL(), a.Redirect)
	if !throughProvider(visited) || done.Query().Get("code") == "" || done.Query().Get("state") != a.State {
		t.Fatalf("the same client again: ended at %s through %v; want a code, through the provider", done, visited)
	}
	if resp, tok := g.exchange(a, done.Query().Get("code")); resp.StatusCode != 200 {
		t.Fatalf("the same client again: token: %d %+v", resp.StatusCode, tok)
	}

	other := g.register(nil)
	a = g.newAuth(other.ClientID)
	b.Decision = "allow"
	toProvider, err := b.Walk(ctx, a.URL(), "")
	if err != nil {
		t.Fatalf("another client: consent: %v", err)
	}
	if !strings.HasPrefix(toProvider.String(), g.op.Issuer()+"/") {
		t.Fatalf("another client: allowed on the consent page, sent to %s; want the provider", toProvider)
	}
	done, _ = redirectsOnly(t, ctx, b, toProvider.String(), a.Redirect)
	if resp, tok := g.exchange(a, done.Query().Get("code")); resp.StatusCode != 200 {
		t.Fatalf("another client: token: %d %+v", resp.StatusCode, tok)
	}

	g.calls.mu.Lock()
	issued := slices.Clone(g.calls.issued)
	g.calls.mu.Unlock()
	slices.Sort(issued)
	if len(issued) != 3 || len(slices.Compact(issued)) != 3 {
		t.Fatalf("the provider issued %d refresh tokens (%d distinct) for three logins; want three distinct", len(issued), len(slices.Compact(issued)))
	}
}

// prompt=none forbids any page, and the provider may need one (its session
// may be over): a browser logged in through an OpenID provider gets
// login_required rather than a grant the provider never vouched for. Before
// the client approved, consent_required as before.
func TestRT3_PromptNoneNeedsALogin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	for _, tc := range []struct {
		name, clientID, want string
	}{
		{"approved client", g.client.ClientID, "login_required"},
		{"new client", g.register(nil).ClientID, "consent_required"},
	} {
		a := g.newAuth(tc.clientID)
		done, visited := redirectsOnly(t, ctx, g.browser, a.URL()+"&prompt=none", a.Redirect)
		q := done.Query()
		if len(visited) != 1 || q.Get("error") != tc.want || q.Get("code") != "" || q.Get("state") != a.State || q.Get("iss") != g.url {
			t.Errorf("%s: prompt=none ended at %s through %v; want error=%s with state and iss, at once", tc.name, done, visited, tc.want)
		}
	}
}

// SEC-2 with the round trip: the provider may send back another user than
// the one logged in at the gateway (the person switched accounts there).
// The consent alice gave is not bob's: bob gets the consent page, signed
// in as himself, and his code only after he allows.
func TestRT3_AnotherUserBackFromTheProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	bob := oidctest.User{Sub: "bob", Email: "bob@corp.example", EmailVerified: true, Username: "bob", Password: "bob-pw"}
	g.op.SetUser(t, bob)
	// Signed out at the provider only: the gateway's cookies stay.
	b := g.browser
	jar := b.Client.Jar
	fresh := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var err error
	if fresh.Jar, err = cookiejar.New(nil); err != nil {
		t.Fatal(err)
	}
	gwURL, _ := url.Parse(g.url)
	var kept []*http.Cookie
	for _, c := range jar.Cookies(gwURL) {
		if strings.HasPrefix(c.Name, "mcpgate_") {
			kept = append(kept, &http.Cookie{Name: c.Name, Value: c.Value, Path: "/"})
		}
	}
	if len(kept) != 2 {
		t.Fatalf("gateway cookies %v, want the session and CSRF cookies", kept)
	}
	fresh.Jar.SetCookies(gwURL, kept)
	b.Client = fresh

	a := g.newAuth(g.client.ClientID)
	toProvider, visited := redirectsOnly(t, ctx, b, a.URL(), g.op.Issuer()+"/")
	if len(visited) != 1 {
		t.Fatalf("approved client: %v then %s; want /authorize to send the browser to the provider at once", visited, toProvider)
	}
	callback := g.op.Login(t, b.Client, toProvider.String(), "bob")
	resp, body := getIn(t, ctx, b, callback.String())
	if resp.StatusCode != 200 || !strings.Contains(body, "Signed in as <strong>bob</strong>") {
		t.Fatalf("bob back from the provider: %d %s; want the consent page, signed in as bob", resp.StatusCode, body)
	}
	form := url.Values{"decision": {"allow"}}
	for _, name := range []string{"request_id", "csrf_token"} {
		m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("consent page without %s: %s", name, body)
		}
		form.Set(name, html.UnescapeString(m[1]))
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url+"/consent", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.url)
	resp, err = b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done, visited := redirectsOnly(t, ctx, b, resp.Header.Get("Location"), a.Redirect)
	if !strings.HasPrefix(visited[0], g.op.Issuer()+"/") || done.Query().Get("code") == "" {
		t.Fatalf("bob allowed: %v then %s; want a silent round trip through the provider and a code", visited, done)
	}
	tr, tok := g.exchange(a, done.Query().Get("code"))
	if tr.StatusCode != 200 {
		t.Fatalf("bob's token: %d %+v", tr.StatusCode, tok)
	}
	g.mcpInitialize(g.url, tok.AccessToken)
	g.mu.Lock()
	defer g.mu.Unlock()
	if got := g.seen[len(g.seen)-1].ID; got != "oidc:bob" {
		t.Fatalf("the code is %s's, want oidc:bob's", got)
	}
}

// getIn requests u in b's cookie jar without following a redirect.
func getIn(t *testing.T, ctx context.Context, b *browser.Browser, u string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := b.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// With upstream_recheck off no grant is rechecked, and the browser's
// session issues codes at once, as for local accounts and GitHub.
func TestRT3_RecheckOffIssuesFromTheSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, func(c *mcpgateConfig) { c.UpstreamRecheck = -1 })
	a := g.newAuth(g.client.ClientID)
	done, visited := redirectsOnly(t, ctx, g.browser, a.URL(), a.Redirect)
	if len(visited) != 1 || done.Query().Get("code") == "" {
		t.Fatalf("the same client again, recheck off: ended at %s through %v; want a code from /authorize at once", done, visited)
	}
}

// A browser session from a provider the gateway no longer has (removed
// from the configuration, with the grants it made: they can no longer be
// checked there) logs nobody in: the browser is asked to choose a login
// again rather than given a code for a user of a provider that is gone.
func TestRT3_SessionOfAProviderNoLongerConfigured(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, _ := newRecheckGateway(t, ctx, nil)
	without := newGateway(t, func(c *mcpgateConfig) { c.Store = g.st }) // the local connector only
	a := without.newAuth(g.client.ClientID)
	resp, body := getIn(t, ctx, g.browser, a.URL())
	if resp.StatusCode != 200 || !strings.Contains(body, `action="/consent"`) || strings.Contains(body, "Signed in as") {
		t.Fatalf("authorize after the provider was removed: %d %s %s; want the consent page of a browser logged in as nobody",
			resp.StatusCode, resp.Header.Get("Location"), body)
	}
}
