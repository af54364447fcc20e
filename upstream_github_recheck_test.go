package mcpgate_test

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

// SEC-68 through the gateway: access.groups names a GitHub organization;
// a member who leaves it keeps their grant until the recheck is due, and
// loses it at the first refresh after (RT-3), as with an OpenID provider.
func TestSEC68_LeavingTheGitHubOrganizationEndsTheGrant(t *testing.T) {
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	member := githubtest.User{ID: 7, Login: "mona", Orgs: []string{"acme"},
		Emails: []githubtest.Email{{Email: "mona@acme.example", Primary: true, Verified: true}}}
	fake.AddUser(member)
	gh, err := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret", Groups: true,
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	if err != nil {
		t.Fatal(err)
	}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Connectors = []upstream.Connector{gh}
		c.Access = mcpgate.Access{Groups: []string{"acme"}}
		c.UpstreamRecheck = time.Hour
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _, _, err := browser.New("", "").Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatalf("a member of acme: %v; want a code", err)
	}
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || tok.RefreshToken == "" {
		t.Fatalf("token: %d %+v; want 200 with a refresh token", resp.StatusCode, tok)
	}

	member.Orgs = nil
	fake.AddUser(member)
	if resp, next := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Fatalf("refresh before the recheck is due: %d; want 200", resp.StatusCode)
	} else {
		tok = next
	}
	g.clock.Advance(2 * time.Hour)
	if resp, body := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || body.Error != "invalid_grant" {
		t.Fatalf("refresh after leaving acme, recheck due: %d %+v; want 400 invalid_grant", resp.StatusCode, body)
	}
}
