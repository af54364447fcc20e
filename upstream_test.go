package mcpgate_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

// The GitHub connector through the whole gateway flow, against the local
// fake of GitHub: consent, then GitHub's authorize, then our callback with
// a single-use state (DEP-6), then a code whose token carries the GitHub
// identity with its verified primary email.
func TestGitHubUpstreamFlow(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 583231, Login: "octocat", Name: "The Octocat", AvatarURL: "https://avatars.example/u/583231",
		Emails: []githubtest.Email{{Email: "old@example.com", Primary: false, Verified: true}, {Email: "octo@example.com", Primary: true, Verified: true}}})
	gh, err := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Connectors = []upstream.Connector{gh}
		c.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u := callerFromContext(r).User
			got = strings.Join([]string{u.ID, u.Username, u.Name, u.Email, boolStr(u.EmailVerified), u.Picture}, "|")
			w.WriteHeader(204)
		})
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	b := browser.New("", "")
	code, state, iss, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil || state != a.State || iss != g.url {
		t.Fatalf("authorize: %v, state %q, iss %q; want state %q and iss %s", err, state, iss, a.State, g.url)
	}
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %+v, want 200", resp.StatusCode, tok)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 {
		t.Fatalf("MCP request: %d, want 204 from the handler", r.StatusCode)
	}
	if want := "github:583231|octocat|The Octocat|octo@example.com|true|https://avatars.example/u/583231"; got != want {
		t.Fatalf("identity %q, want %q", got, want)
	}
	// DEP-6: the callback with the same state again is refused with a page.
	r, err := b.Client.Get(g.url + "/callback/github?state=replayed&code=x")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 400 || r.Header.Get("Location") != "" {
		t.Fatalf("callback with an unknown state: %d, Location %q; want 400 and no redirect", r.StatusCode, r.Header.Get("Location"))
	}
}

// A denial at GitHub ends at a page that says GitHub did not sign the
// person in, whose link takes access_denied back to the client.
func TestGitHubUpstreamDenied(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 1, Login: "u"})
	fake.SetDeny(true)
	gh, _ := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	g := newGateway(t, func(c *mcpgateConfig) { c.Connectors = []upstream.Connector{gh} })
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	pe, body := walkToPage(t, browser.New("", ""), a)
	declinedAt("GitHub").check(t, pe, body, a, g.url)
}

// GitHub out of reach when the gateway redeems the code: a page that says
// to try again, whose link takes temporarily_unavailable to the client.
func TestGitHubUpstreamUnreachable(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 1, Login: "u"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/login/oauth/access_token"
	ln.Close()
	gh, _ := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: closed, APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	g := newGateway(t, func(c *mcpgateConfig) { c.Connectors = []upstream.Connector{gh} })
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	pe, body := walkToPage(t, browser.New("", ""), a)
	unreachable("GitHub").check(t, pe, body, a, g.url)
	if logs := g.logs.String(); !strings.Contains(logs, `msg="upstream login failed" connector=github`) || !strings.Contains(logs, "exchange code") {
		t.Errorf("the log does not say the code exchange failed:\n%s", logs)
	}
}

// walkToPage walks b through a's authorization and returns the page it
// stopped at, with that page's HTML.
func walkToPage(t *testing.T, b *browser.Browser, a *authRequest) (*browser.PageError, string) {
	t.Helper()
	last := recording(b)
	done, err := b.Walk(context.Background(), a.URL(), a.Redirect)
	var pe *browser.PageError
	if !errors.As(err, &pe) {
		t.Fatalf("the walk ended at %v (%v); want a page", done, err)
	}
	last.mu.Lock()
	defer last.mu.Unlock()
	return pe, last.body
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
