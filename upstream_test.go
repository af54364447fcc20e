package mcpgate_test

import (
	"context"
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

// A denial at GitHub goes back to the client as access_denied.
func TestGitHubUpstreamDenied(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 1, Login: "u"})
	fake.SetDeny(true)
	gh, _ := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	g := newGateway(t, func(c *mcpgateConfig) { c.Connectors = []upstream.Connector{gh} })
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	_, _, _, err := browser.New("", "").Authorize(context.Background(), a.URL(), a.Redirect)
	var ae *browser.AuthorizationError
	if !asAuthErr(err, &ae) || ae.Code != "access_denied" || ae.Issuer != g.url {
		t.Fatalf("got %v, want access_denied with iss %s", err, g.url)
	}
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
