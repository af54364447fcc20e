package mcpgate_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// SEC-148: a provider's display name holding U+0000 is stored with the NUL shown
// as U+FFFD: PostgreSQL's jsonb refuses a NUL, and with one stored every
// query that reads users' JSON failed (users disable, the account pages,
// a start that disables an account) for as long as the person's grant
// lived. Fails before this change: the grant kept the NUL and
// DisableLocalUser failed.
func TestProviderProfileStoredWithoutNUL(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := postgres.Open(ctx, pgtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ln, base := loopback(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/oidc"}}},
		Users:   []oidctest.User{{Sub: "bob", Name: "Bob\x00", Email: "bob@corp.example", EmailVerified: true}},
	})
	con, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Store = st
		c.Connectors = []upstream.Connector{con}
	})
	a := g.newAuth(g.register(nil).ClientID)
	if resp, tok := g.exchange(a, codeAtProvider(t, ctx, op, a, "bob")); resp.StatusCode != 200 {
		t.Fatalf("bob's token: %d %+v", resp.StatusCode, tok)
	}
	grants, err := st.ListGrants(ctx, store.GrantQuery{})
	if err != nil || len(grants) != 1 || grants[0].User.Name != "Bob\uFFFD" {
		t.Fatalf("grants: %+v %v, want bob's, named Bob\\uFFFD", grants, err)
	}
	if err := st.PutLocalUser(ctx, &store.LocalUser{Name: "carol", PasswordHash: []byte(hashed(testPassword)), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DisableLocalUser(ctx, "carol", time.Now()); err != nil {
		t.Errorf("users disable with bob's grant stored: %v", err)
	}
}

// SEC-208: a provider's profile too long to travel in a token (a display
// name of 9,000 bytes, a username, address or picture URL past any real
// one) does not make every /token of the person fail: the name is cut,
// the others left out. Fails before: the code was issued and /token
// answered server_error, since the access token passed the 8 KiB the
// guard takes.
func TestSEC208_LongProfileFitsInTheToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, base := loopback(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/oidc"}}},
		Users: []oidctest.User{
			{Sub: "bob", Name: strings.Repeat("é", 4500), Username: "bob" + strings.Repeat("b", 3000), Email: strings.Repeat("b", 3000) + "@corp.example", EmailVerified: true,
				Extra: map[string]any{"picture": "https://pics.example/" + strings.Repeat("p", 3000)}},
			// Within the bounds as written, but <, > and & take six bytes each in a token's JSON.
			{Sub: "carol", Name: strings.Repeat("<", 256), Username: strings.Repeat("<", 250), Email: strings.Repeat("&", 200) + "@corp.example", EmailVerified: true,
				Extra: map[string]any{"picture": "https://pics.example/?" + strings.Repeat("&", 480)}},
		},
	})
	con, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) { c.Connectors = []upstream.Connector{con} })
	for _, user := range []string{"bob", "carol"} {
		a := g.newAuth(g.register(nil).ClientID)
		resp, tok := g.exchange(a, codeAtProvider(t, ctx, op, a, user))
		if resp.StatusCode != 200 {
			t.Fatalf("the token of %s, with a long profile: %d %+v; want 200", user, resp.StatusCode, tok)
		}
		if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 200 {
			t.Errorf("%s's access token at /mcp: %d, want 200", user, resp.StatusCode)
		}
	}
}
