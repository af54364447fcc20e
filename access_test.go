package mcpgate_test

import (
	"bytes"
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
	"github.com/mcpgate/mcpgate/upstream/local"
)

const bobPassword = "bob's own passphrase"

// lastBody keeps the body of the last response a browser received, which
// a walk that stops at an error page reports only in part.
type lastBody struct {
	mu   sync.Mutex
	body string
}

func (l *lastBody) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	l.mu.Lock()
	l.body = string(b)
	l.mu.Unlock()
	return resp, nil
}

// recording makes b keep its last response's body.
func recording(b *browser.Browser) *lastBody {
	l := &lastBody{}
	b.Client.Transport = l
	return l
}

// refused walks b through a's authorization and expects the page that
// says the account may not enter: 403, naming the account and its
// provider (wants). Its link back to the application carries
// access_denied with the request's state and iss, which it returns.
func refused(t *testing.T, g *gw, b *browser.Browser, a *authRequest, wants ...string) {
	t.Helper()
	last := recording(b)
	_, _, _, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	var pe *browser.PageError
	if !errors.As(err, &pe) || pe.Status != http.StatusForbidden {
		t.Fatalf("authorize: %v; want the 403 page that says the account may not enter", err)
	}
	for _, w := range wants {
		if !strings.Contains(pe.Text, w) {
			t.Errorf("the page says %q; want it to name %q", pe.Text, w)
		}
	}
	back, err := url.Parse(html.UnescapeString(between(last.body, `id="back" href="`, `"`)))
	if err != nil || !strings.HasPrefix(back.String(), a.Redirect+"?") {
		t.Fatalf("the page's link back %q (%v); want one to %s", back, err, a.Redirect)
	}
	if q := back.Query(); q.Get("error") != "access_denied" || q.Get("state") != a.State || q.Get("iss") != a.base || q.Has("code") {
		t.Fatalf("the client gets %v; want access_denied with state %q and iss %s, and no code", q, a.State, a.base)
	}
}

// whoami serves the caller's user ID at every resource.
func whoami(seen *string) func(*mcpgateConfig) {
	return func(c *mcpgateConfig) {
		c.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*seen = callerFromContext(r).User.ID
			w.WriteHeader(204)
		})
	}
}

// Who may log in, by user ID: someone else who logs in gets a page naming
// the account they used, the client gets access_denied, the log names the
// rule; no browser session starts, so the same browser can go back and
// log in with another account, which is let in.
func TestAccessLoginByUserID(t *testing.T) {
	var seen string
	g := newGateway(t, whoami(&seen), func(c *mcpgateConfig) { c.Access = mcpgate.Access{Users: []string{"local:bob"}} })
	if err := g.local.SetUser(context.Background(), "bob", hashed(bobPassword)); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	b := browser.New(testUser, testPassword)
	refused(t, g, b, a, testUser, "Local account")
	if logs := g.logs.String(); !strings.Contains(logs, "rule=access") || !strings.Contains(logs, "user=local:alice") || strings.Contains(logs, testPassword) {
		t.Errorf("the log does not say that rule access refused local:alice (or holds the password):\n%s", logs)
	}

	b.Username, b.Password = "bob", bobPassword
	a = g.newAuth(c.ClientID)
	code, _, _, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatalf("bob in the browser alice was refused in: %v; want a code (no session was started for alice)", err)
	}
	_, tok := g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 || seen != "local:bob" {
		t.Fatalf("MCP request: %d as %q; want 204 as local:bob", r.StatusCode, seen)
	}
}

// Who may log in, by the domain of a verified email, through GitHub: an
// address of the domain that GitHub has not verified lets no one in.
func TestAccessLoginByVerifiedEmailDomain(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 1, Login: "verified", Emails: []githubtest.Email{{Email: "v@Example.com", Primary: true, Verified: true}}})
	fake.AddUser(githubtest.User{ID: 2, Login: "unverified", PublicEmail: "u@example.com",
		Emails: []githubtest.Email{{Email: "u@example.com", Primary: true, Verified: false}}})
	gh, err := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Connectors = []upstream.Connector{gh}
		c.Access = mcpgate.Access{EmailDomains: []string{"example.com"}}
	})
	c := g.register(nil)

	fake.SetCurrentUser(2)
	refused(t, g, browser.New("", ""), g.newAuth(c.ClientID), "unverified", "GitHub")

	fake.SetCurrentUser(1)
	a := g.newAuth(c.ClientID)
	code, _, _, err := browser.New("", "").Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatalf("a verified address at example.com: %v; want a code", err)
	}
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 {
		t.Fatalf("token: %d %+v, want 200", resp.StatusCode, tok)
	}
}

// groupsConnector is the local connector with groups given to its users,
// as a provider that reports groups does.
type groupsConnector struct {
	*local.Connector
	groups map[string][]string
}

func (c groupsConnector) Login(ctx context.Context, username, password string) (identity.User, error) {
	u, err := c.Connector.Login(ctx, username, password)
	u.Groups = c.groups[u.ID]
	return u, err
}

// Who may log in, by group: a member is let in, someone in other groups
// is not.
func TestAccessLoginByGroup(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		lc := c.Connectors[0].(*local.Connector)
		c.Connectors = []upstream.Connector{groupsConnector{lc, map[string][]string{"local:alice": {"devs", "staff"}, "local:bob": {"devs"}}}}
		c.Access = mcpgate.Access{Groups: []string{"staff"}}
	})
	if err := g.local.SetUser(context.Background(), "bob", hashed(bobPassword)); err != nil {
		t.Fatal(err)
	}
	g.fullFlow() // alice, in staff
	c := g.register(nil)
	refused(t, g, browser.New("bob", bobPassword), g.newAuth(c.ClientID), "bob", "Local account")
}

// Who may get a token for one resource: the same person is let in at
// another, and refused there both when logging in and when a logged-in
// browser asks (the consent remembered does not bypass the rule).
func TestAccessPerResource(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{
			{Path: "/mcp"},
			{Path: "/admin/mcp", Access: mcpgate.Access{Users: []string{"local:bob"}}},
		}
	})
	c := g.register(nil)
	admin := g.newAuth(c.ClientID)
	admin.Resource = g.url + "/admin/mcp"
	refused(t, g, browser.New(testUser, testPassword), admin, testUser, "Local account")
	if !strings.Contains(g.logs.String(), "rule=resources[/admin/mcp].access") {
		t.Errorf("the log does not name the resource's rule:\n%s", g.logs.String())
	}

	a := g.newAuth(c.ClientID)
	_, b := g.login(a) // /mcp: let in, and the browser is logged in
	admin = g.newAuth(c.ClientID)
	admin.Resource = g.url + "/admin/mcp"
	refused(t, g, b, admin, testUser)

	// prompt=none shows no page. The approval of /mcp is not one of
	// /admin/mcp (SEC-134): consent_required.
	admin = g.newAuth(c.ClientID)
	admin.Resource = g.url + "/admin/mcp"
	b.Client.Transport = nil
	_, _, _, err := b.Authorize(context.Background(), admin.URL()+"&prompt=none", admin.Redirect)
	var ae *browser.AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "consent_required" || ae.State != admin.State {
		t.Fatalf("prompt=none for a resource the user never approved: %v; want consent_required with state", err)
	}
	// An approval of /admin/mcp itself (the rule came after it) does not
	// bypass the rule either: access_denied goes to the client at once.
	if err := g.store.PutConsent(context.Background(), &store.Consent{UserID: "local:" + testUser, ClientID: c.ClientID,
		Resource: g.url + "/admin/mcp", Scopes: []string{"mcp"}, RedirectURIs: []string{redirectURI}, CreatedAt: g.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	admin = g.newAuth(c.ClientID)
	admin.Resource = g.url + "/admin/mcp"
	_, _, _, err = b.Authorize(context.Background(), admin.URL()+"&prompt=none", admin.Redirect)
	if !errors.As(err, &ae) || ae.Code != "access_denied" || ae.State != admin.State || ae.Issuer != g.url {
		t.Fatalf("prompt=none for a resource the user may not use: %v; want access_denied with state and iss", err)
	}
}

// RT-3: the rules are checked again at every refresh. After a restart on
// the same store with a rule that no longer lets the user in, the refresh
// fails with invalid_grant and ends the grant: a later restart that lets
// the user in again does not bring that refresh token back.
func TestRT3_RefreshCheckedAgainstAccess(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	onStore := func(a mcpgate.Access, rs ...mcpgate.Resource) func(*mcpgateConfig) {
		return func(c *mcpgateConfig) { c.Store, c.Access, c.Resources = st, a, rs }
	}
	first := newGateway(t, onStore(mcpgate.Access{Users: []string{"local:alice"}}))
	c, _, tok := first.fullFlow()
	resp, tok := first.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh while allowed: %d %+v, want 200", resp.StatusCode, tok)
	}

	narrower := newGateway(t, onStore(mcpgate.Access{Users: []string{"local:bob"}}))
	if resp, got := narrower.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || got.Error != "invalid_grant" {
		t.Fatalf("refresh after alice left access.users: %d %+v, want 400 invalid_grant", resp.StatusCode, got)
	}
	if !strings.Contains(narrower.logs.String(), "rule=access") {
		t.Errorf("the log does not say which rule refused the refresh:\n%s", narrower.logs.String())
	}
	open := newGateway(t, onStore(mcpgate.Access{}))
	if resp, got := open.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || got.Error != "invalid_grant" {
		t.Fatalf("refresh of the ended grant once alice is let in again: %d %+v, want 400 invalid_grant", resp.StatusCode, got)
	}

	// A resource's own rule is checked at refresh too.
	c, _, tok = open.fullFlow()
	closed := newGateway(t, onStore(mcpgate.Access{}, mcpgate.Resource{Path: "/mcp", Access: mcpgate.Access{Groups: []string{"admins"}}}))
	if resp, got := closed.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || got.Error != "invalid_grant" {
		t.Fatalf("refresh after /mcp's access narrowed: %d %+v, want 400 invalid_grant", resp.StatusCode, got)
	}
	if !strings.Contains(closed.logs.String(), "rule=resources[/mcp].access") {
		t.Errorf("the log does not name the resource's rule:\n%s", closed.logs.String())
	}
}

// A library user's malformed rule is refused by New, naming its place.
func TestAccessValidatedByNew(t *testing.T) {
	for _, tt := range []struct {
		cfg  mcpgate.Config
		want string
	}{
		{mcpgate.Config{Access: mcpgate.Access{Users: []string{"alice"}}}, `access: users: "alice" is not a user ID`},
		{mcpgate.Config{Resources: []mcpgate.Resource{{Path: "/mcp", Access: mcpgate.Access{EmailDomains: []string{"@example.com"}}}}},
			`resource /mcp: access: email_domains: "@example.com"`},
	} {
		if _, err := mcpgate.New(context.Background(), withStore(tt.cfg)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New: %v, want an error saying %q", err, tt.want)
		}
	}
}
