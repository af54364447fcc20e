package mcpgate_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// RT-1, RT-3 across replicas: a client sends one refresh token twice at
// once (Claude.ai does; the grace window is for it), the two land on two
// replicas, and the grant's upstream recheck is due. The provider rotates
// its refresh tokens and takes a reused one for a theft (oidc-provider
// does, for a public client). One replica only rechecks at the provider:
// both refreshes are answered, and the grant lives. Fails before this
// change: both replicas sent the provider the same token, the provider
// ended the session, and the grant was revoked (answers 400 and 503).
func TestRT3_DuplicateRefreshAcrossReplicasRechecksOnce(t *testing.T) {
	for attempt := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		dsn := pgtest.Start(t)
		ln, public := loopback(t)
		op := oidctest.Start(t, oidctest.Options{
			Clients: []oidctest.Client{{ID: "mcpgate-pub", RedirectURIs: []string{public + "/callback/oidc"}}},
			Users:   []oidctest.User{{Sub: "alice", Email: "alice@corp.example", EmailVerified: true, Groups: []string{"devs"}}},
		})
		gws := make([]*gw, 2)
		for i := range gws {
			st, err := postgres.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			con, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate-pub"})
			if err != nil {
				t.Fatal(err)
			}
			var on net.Listener
			if i == 0 {
				on = ln
			}
			gws[i] = newGatewayOn(t, on, func(c *mcpgateConfig) {
				c.Store = st
				c.PublicURL = public
				c.Connectors = []upstream.Connector{con}
				c.UpstreamRecheck = time.Hour
			})
		}
		gws[1].clock.Set(gws[0].clock.Now())
		client := gws[0].register(nil)
		a := gws[0].newAuth(client.ClientID)
		resp, tok := gws[0].exchange(a, codeAtProvider(t, ctx, op, a, "alice"))
		if resp.StatusCode != 200 || tok.RefreshToken == "" {
			t.Fatalf("token: %d %+v", resp.StatusCode, tok)
		}
		for _, g := range gws {
			g.clock.Advance(61 * time.Minute) // the recheck is due
		}
		results := refreshAcross(gws, client.ClientID, tok.RefreshToken, 2)
		_, grant, err := gws[1].store.GetRefresh(ctx, tokens.Hash(tok.RefreshToken), gws[1].clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if !grant.RevokedAt.IsZero() || results[0].status != 200 || results[1].status != 200 {
			t.Fatalf("attempt %d: the same refresh on two replicas with the recheck due: answers %d %s, %d %s; grant revoked at %v; want both 200 and the grant alive",
				attempt, results[0].status, results[0].body, results[1].status, results[1].body, grant.RevokedAt)
		}
	}
}
