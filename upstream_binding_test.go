package mcpgate_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
)

// countingTransport counts the requests a connector sends.
type countingTransport struct {
	n    *atomic.Int32
	base http.RoundTripper
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// SEC-72: a provider's token kept for a grant's recheck is bound to the
// provider that issued it and to mcpgate's client there. When the
// operator points the connector's name at another provider (or at another
// client of the same one), the old grants' tokens are never sent to the
// new one, and the user the new provider would describe under the same
// ID is never taken for the old one: the grant ends at its next refresh,
// recheck due or not, with invalid_grant, and the user logs in again.
func TestSEC72_RepointedProviderEndsTheUpstreamSession(t *testing.T) {
	mona := githubtest.User{ID: 7, Login: "mona", Emails: []githubtest.Email{{Email: "mona@acme.example", Primary: true, Verified: true}}}
	for _, tc := range []struct {
		name    string
		repoint func(old *githubtest.Server, client *http.Client) github.Config
	}{
		{"another provider under the same name", func(_ *githubtest.Server, client *http.Client) github.Config {
			other := githubtest.NewServer(t, "gh-client", "gh-secret")
			other.AddUser(mona) // the same ID there: on its own no sign of the change
			return github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
				AuthURL: other.AuthURL(), TokenURL: other.TokenURL(), APIURL: other.APIURL(), HTTPClient: client}
		}},
		{"another client at the same provider", func(old *githubtest.Server, client *http.Client) github.Config {
			return github.Config{ClientID: "gh-client-2", ClientSecret: "gh-secret-2",
				AuthURL: old.AuthURL(), TokenURL: old.TokenURL(), APIURL: old.APIURL(), HTTPClient: client}
		}},
	} {
		for _, due := range []bool{false, true} {
			name := tc.name + ", recheck not due"
			if due {
				name = tc.name + ", recheck due"
			}
			t.Run(name, func(t *testing.T) {
				fake := githubtest.NewServer(t, "gh-client", "gh-secret")
				fake.AddUser(mona)
				gh, err := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
					AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
				if err != nil {
					t.Fatal(err)
				}
				g := newGateway(t, func(c *mcpgateConfig) {
					c.Connectors = []upstream.Connector{gh}
					c.UpstreamRecheck = time.Hour
				})
				c := g.register(nil)
				a := g.newAuth(c.ClientID)
				code, _, _, err := browser.New("", "").Authorize(context.Background(), a.URL(), a.Redirect)
				if err != nil {
					t.Fatalf("login: %v; want a code", err)
				}
				resp, tok := g.exchange(a, code)
				if resp.StatusCode != 200 || tok.RefreshToken == "" {
					t.Fatalf("token: %d %+v; want 200 with a refresh token", resp.StatusCode, tok)
				}

				// The same store and secret key, the name github now
				// pointing elsewhere.
				var sent atomic.Int32
				client := &http.Client{Transport: countingTransport{&sent, fake.Client().Transport}}
				repointed, err := github.New(tc.repoint(fake, client))
				if err != nil {
					t.Fatal(err)
				}
				g2 := newGateway(t, func(cfg *mcpgateConfig) {
					cfg.Store = g.store
					cfg.Connectors = []upstream.Connector{repointed}
					cfg.UpstreamRecheck = time.Hour
				})
				if due {
					g2.clock.Advance(2 * time.Hour)
				}
				if resp, body := g2.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || body.Error != "invalid_grant" {
					t.Errorf("refresh after the repoint: %d %q; want 400 invalid_grant", resp.StatusCode, body.Error)
				}
				if n := sent.Load(); n != 0 {
					t.Errorf("the repointed connector sent %d requests; want none: the old provider's token stays with it", n)
				}
			})
		}
	}
}
