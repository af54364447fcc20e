package mcpgate_test

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/github"
	"github.com/mcpgate/mcpgate/upstream/github/githubtest"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// Several providers at once keep their users apart: GitHub's user 1, the
// OpenID provider's sub 1 as corp and the same provider's sub 1 as oidc
// are three people, github:1, corp:1 and oidc:1, each the choice on the
// consent page leads to, where the chooser offers all three by name.
// Users are <connector>:<subject>, so no provider can name another's user.
func TestProvidersKeepUsersApart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, base := loopback(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/corp", base + "/callback/oidc"}}},
		Users:   []oidctest.User{{Sub: "1", Email: "one@corp.example", EmailVerified: true, Password: "pw"}},
	})
	fake := githubtest.NewServer(t, "gh-client", "gh-secret")
	fake.AddUser(githubtest.User{ID: 1, Login: "one"})
	gh, err := github.New(github.Config{ClientID: "gh-client", ClientSecret: "gh-secret",
		AuthURL: fake.AuthURL(), TokenURL: fake.TokenURL(), APIURL: fake.APIURL(), HTTPClient: fake.Client()})
	if err != nil {
		t.Fatal(err)
	}
	var cons []upstream.Connector
	for _, name := range []string{"corp", "oidc"} {
		display := map[string]string{"corp": "Corp SSO"}[name] // oidc: the issuer's host
		c, err := oidc.New(ctx, oidc.Config{Name: name, DisplayName: display, Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
		if err != nil {
			t.Fatal(err)
		}
		cons = append(cons, c)
	}
	var mu sync.Mutex
	var seen []string
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Connectors = append([]upstream.Connector{gh}, cons...)
		c.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, callerFromContext(r).User.ID)
			mu.Unlock()
			w.WriteHeader(204)
		})
	})
	client := g.register(nil)
	// The chooser on the consent page offers each provider by its name.
	resp, page := g.get(g.newAuth(client.ClientID).URL())
	var offered []string
	for _, m := range regexp.MustCompile(`<option value="([^"]*)">([^<]*)</option>`).FindAllStringSubmatch(string(page), -1) {
		offered = append(offered, m[1]+"="+m[2])
	}
	if want := "github=GitHub,corp=Corp SSO,oidc=127.0.0.1"; resp.StatusCode != 200 || strings.Join(offered, ",") != want {
		t.Fatalf("consent page: %d offering %q; want 200 offering %q", resp.StatusCode, strings.Join(offered, ","), want)
	}
	for _, connector := range []string{"github", "corp", "oidc"} {
		a := g.newAuth(client.ClientID)
		b := browser.New("", "")
		b.Fields = map[string]string{"connector": connector}
		var code string
		if connector == "github" {
			if code, _, _, err = b.Authorize(ctx, a.URL(), a.Redirect); err != nil {
				t.Fatalf("github: %v", err)
			}
		} else {
			toProvider, err := b.Walk(ctx, a.URL(), op.Issuer()+"/")
			if err != nil {
				t.Fatalf("%s: authorize: %v", connector, err)
			}
			done, err := b.Walk(ctx, op.Login(t, b.Client, toProvider.String(), "1").String(), a.Redirect)
			if err != nil {
				t.Fatalf("%s: callback: %v", connector, err)
			}
			code = done.Query().Get("code")
		}
		resp, tok := g.exchange(a, code)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: token: %d %+v", connector, resp.StatusCode, tok)
		}
		if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 {
			t.Fatalf("%s: MCP request: %d, want 204", connector, r.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"github:1", "corp:1", "oidc:1"}; !slices.Equal(seen, want) {
		t.Fatalf("users %v, want %v: each provider's user 1 is a person of their own", seen, want)
	}
}

// namedConnector is a password connector of any name, which refuses
// every login: only its name is under test.
type namedConnector string

func (c namedConnector) ID() string          { return string(c) }
func (c namedConnector) DisplayName() string { return string(c) }
func (c namedConnector) Login(context.Context, string, string) (identity.User, error) {
	return identity.User{}, upstream.ErrInvalidCredentials
}

// SEC-190: a program that embeds the gateway cannot name a connector
// what would make two providers' users one: "corp" and "corp:eng" would
// both give the ID "corp:eng:1" (to corp's "eng:1" and corp:eng's "1"),
// and a name that needs escaping could not be a callback path. Fails
// before: New took any name that was not a duplicate.
func TestSEC190_ConnectorNamesChecked(t *testing.T) {
	for _, name := range []string{"corp:eng", "Corp", "", "corp/eng", "-corp", strings.Repeat("a", 64)} {
		cfg := mcpgate.Config{Store: memory.New(), SecretKey: bytes.Repeat([]byte{7}, 32),
			Connectors: []upstream.Connector{namedConnector("corp"), namedConnector(name)}}
		if gw, err := mcpgate.New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "connector name") {
			if gw != nil {
				gw.Close(context.Background())
			}
			t.Errorf("connector %q: New: %v, want its name refused", name, err)
		}
	}
	cfg := mcpgate.Config{Store: memory.New(), SecretKey: bytes.Repeat([]byte{7}, 32),
		Connectors: []upstream.Connector{namedConnector("corp"), namedConnector("corp-eng")}}
	gw, err := mcpgate.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connectors corp and corp-eng: %v, want both taken", err)
	}
	gw.Close(context.Background())
}
