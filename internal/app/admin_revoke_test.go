package app

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// `mcpgate grants revoke ID` forgets the person's approval of the grant's
// client along with the grant: the client must ask them again, rather than
// get a code at once from a browser still signed in (SEC-109, SEC-95).
func TestGrantsRevokeForgetsConsent(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	user := identity.User{ID: "local:alice"}
	if err := st.CreateClient(ctx, &store.Client{ID: "c1", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, TokenEndpointAuthMethod: "none", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutConsent(ctx, &store.Consent{UserID: user.ID, ClientID: "c1", Scopes: []string{"mcp"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(ctx, &store.Grant{ID: "g1", ClientID: "c1", User: user, Resource: "/mcp", CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if err := Admin(ctx, &cfg, AdminCommand{Noun: "grants", Verb: "revoke", Arg: "g1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	st, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if g, err := st.GetGrant(ctx, "g1"); err != nil || g.RevokedAt.IsZero() {
		t.Fatalf("the grant after revoke: %+v %v, want revoked", g, err)
	}
	if c, err := st.GetConsent(ctx, user.ID, "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the consent after revoke: %+v %v, want it forgotten (ErrNotFound)", c, err)
	}
}
