package mcpgate_test

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// SEC-77: a grant of a rechecked provider's user made while
// upstream_recheck was off holds no upstream session. Once the recheck is
// on (the gateway restarted with it), such a grant cannot be checked at
// the provider, and is not taken for a checked one: at its first refresh
// after upstream_recheck it ends with invalid_grant, as a login without a
// refresh token does (RT-3), instead of keeping the login's groups for its
// life; within upstream_recheck it still refreshes.
func TestSEC77_GrantMadeWithTheRecheckOffEndsAtTheRecheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, tok := newRecheckGateway(t, ctx, func(c *mcpgateConfig) {
		c.UpstreamRecheck = -1
		c.Access.Groups = []string{"admins"}
	})
	con, err := oidc.New(ctx, oidc.Config{Issuer: g.op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// The same store and secret key, the recheck on: a restart.
	on := newGateway(t, func(c *mcpgateConfig) {
		c.Store = g.st
		c.Connectors = []upstream.Connector{con}
		c.UpstreamRecheck = time.Hour
		c.Access.Groups = []string{"admins"}
	})
	g.alice.Groups = []string{"devs"}
	g.op.SetUser(t, g.alice)

	resp, tr := on.refresh(g.client.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh within upstream_recheck of the grant: %d %+v, want 200", resp.StatusCode, tr)
	}
	on.clock.Advance(2 * time.Hour)
	resp, tr = on.refresh(g.client.ClientID, tr.RefreshToken, nil)
	if resp.StatusCode != 400 || tr.Error != "invalid_grant" {
		t.Fatalf("refresh after upstream_recheck of a grant never checked, its user out of admins upstream: %d %+v, want 400 invalid_grant", resp.StatusCode, tr)
	}
}
