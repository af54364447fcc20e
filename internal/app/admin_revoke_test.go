package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
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
	st := openAdminStore(t, &cfg)
	now := time.Now()
	user := identity.User{ID: "local:alice"}
	if err := st.CreateClient(ctx, &store.Client{ID: "c1", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, TokenEndpointAuthMethod: "none", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.PutConsent(ctx, &store.Consent{UserID: user.ID, ClientID: "c1", Resource: "/mcp", Scopes: []string{"mcp"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(ctx, &store.Grant{ID: "g1", ClientID: "c1", User: user, Resource: "/mcp", CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if err := Admin(ctx, &cfg, AdminCommand{Noun: "grants", Verb: "revoke", Arg: "g1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	st = openAdminStore(t, &cfg)
	defer st.Close()
	if g, err := st.GetGrant(ctx, "g1"); err != nil || g.RevokedAt.IsZero() {
		t.Fatalf("the grant after revoke: %+v %v, want revoked", g, err)
	}
	if c, err := st.GetConsent(ctx, user.ID, "c1", "/mcp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the consent after revoke: %+v %v, want it forgotten (ErrNotFound)", c, err)
	}
}

// SEC-93: an account serve's local_users set is refused by users passwd
// even when the command is not given the same settings (serve would put
// the configured password back at its next start); once local_users no
// longer lists it, serve's next start takes the mark off, disables it and
// revokes its grants (SEC-147), and it is the store's to change.
func TestConfiguredAccountRefusedWithoutItsSettings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	serveCfg := config.Defaults()
	serveCfg.DataDir, serveCfg.LocalUsers = dir, []string{"alice:a-configured-password"}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := setConfiguredUsers(ctx, &serveCfg, st, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	bare := config.Defaults()
	bare.DataDir = dir
	passwd := AdminCommand{Noun: "users", Verb: "passwd", Arg: "alice", Password: func() (string, error) { return "a new password here", nil }}
	err = Admin(ctx, &bare, passwd, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "one of the configuration's local_users") {
		t.Fatalf("users passwd of a configured account without serve's settings: %v, want it refused", err)
	}
	var out strings.Builder
	if err := Admin(ctx, &bare, AdminCommand{Noun: "users", Verb: "list"}, &out); err != nil || !strings.Contains(out.String(), "local_users") {
		t.Errorf("users list without serve's settings: %v\n%s\nwant alice FROM local_users", err, out.String())
	}

	serveCfg.LocalUsers = nil // taken out of the file, then a restart
	st, err = sqlite.Open(ctx, filepath.Join(dir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateClient(ctx, &store.Client{ID: "c1", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, TokenEndpointAuthMethod: "none", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateGrant(ctx, &store.Grant{ID: "g1", ClientID: "c1", User: identity.User{ID: "local:alice"}, Resource: "/mcp", CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	if err := setConfiguredUsers(ctx, &serveCfg, st, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	// SEC-147: out of the list, the account is disabled and its grants
	// revoked.
	if u, err := st.GetLocalUser(ctx, "alice"); err != nil || u.DisabledAt.IsZero() || u.Configured {
		t.Errorf("alice once local_users no longer lists her: %+v %v, want disabled and no longer marked", u, err)
	}
	if g, err := st.GetGrant(ctx, "g1"); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("alice's grant once local_users no longer lists her: %+v %v, want revoked", g, err)
	}
	st.Close()
	if err := Admin(ctx, &bare, passwd, io.Discard); err != nil {
		t.Errorf("users passwd once local_users no longer lists the account: %v, want it done", err)
	}
	if err := Admin(ctx, &bare, AdminCommand{Noun: "users", Verb: "enable", Arg: "alice"}, io.Discard); err != nil {
		t.Errorf("users enable once local_users no longer lists the account: %v, want it done", err)
	}
}
