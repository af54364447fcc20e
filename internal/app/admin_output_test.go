package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// openAdminStore opens the SQLite store in cfg's data directory, as the
// admin commands find it, for a test to fill or read; the caller closes
// it before the command runs.
func openAdminStore(t *testing.T, cfg *config.Config) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(cfg.DataDir, "mcpgate.db"))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// SEC-95, SEC-116: `grants list --json` escapes a provider's username (a
// person's own preferred_username at many providers) where a terminal
// would act on it, as `flows --json` does: encoding/json left its C1
// controls and bidi overrides raw. The data stays exact for a program.
func TestGrantsListJSONEscapesProviderText(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	st := openAdminStore(t, &cfg)
	now := time.Now()
	if err := st.CreateClient(ctx, &store.Client{ID: "c1", RedirectURIs: []string{"http://127.0.0.1:1/cb"}, TokenEndpointAuthMethod: "none", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const name = "mallory\u009b2J\u009b31m\u202eadmin"
	if err := st.CreateGrant(ctx, &store.Grant{ID: "g1", ClientID: "c1", User: identity.User{ID: "oidc:1234", Username: name}, Resource: "/mcp", CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var out bytes.Buffer
	if err := Admin(ctx, &cfg, AdminCommand{Noun: "grants", Verb: "list", JSON: true}, &out); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\u009b\u202e") {
		t.Errorf("grants list --json wrote a C1 control or bidi override raw:\n%q", out.String())
	}
	var grants []struct {
		Username string `json:"username"`
	}
	if err := json.Unmarshal(out.Bytes(), &grants); err != nil || len(grants) != 1 || grants[0].Username != name {
		t.Errorf("grants list --json: %+v, %v; want the username exact once decoded", grants, err)
	}
}

// SEC-130: `users passwd NAME` with the account's password of now is
// refused: kept, the password keeps the account's browser sessions, and
// the command said they had ended, to an operator who had often come to
// end a stolen one.
func TestUsersPasswdRefusesTheSamePassword(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	db := filepath.Join(cfg.DataDir, "mcpgate.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	password := func(pw string) func() (string, error) { return func() (string, error) { return pw, nil } }
	if err := Admin(ctx, &cfg, AdminCommand{Noun: "users", Verb: "add", Arg: "admin", Password: password("the same password")}, io.Discard); err != nil {
		t.Fatal(err)
	}
	session := func() error {
		st, err := sqlite.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = st.GetSession(ctx, bytes.Repeat([]byte{7}, 32), time.Now())
		return err
	}
	st, err = sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.CreateSession(ctx, &store.Session{Hash: bytes.Repeat([]byte{7}, 32), User: identity.User{ID: "local:admin", Username: "admin"}, CreatedAt: now, ExpiresAt: now.Add(12 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var out bytes.Buffer
	err = Admin(ctx, &cfg, AdminCommand{Noun: "users", Verb: "passwd", Arg: "admin", Password: password("the same password")}, &out)
	if err == nil || !strings.Contains(err.Error(), "password already") || strings.Contains(out.String(), "ended") {
		t.Errorf("users passwd with the same password: %v, said %q; want it refused, saying the sign-ins stay", err, out.String())
	}
	if err := session(); err != nil {
		t.Fatalf("the session after the refused passwd: %v, want it live", err)
	}
	out.Reset()
	if err := Admin(ctx, &cfg, AdminCommand{Noun: "users", Verb: "passwd", Arg: "admin", Password: password("another password")}, &out); err != nil || !strings.Contains(out.String(), "have ended") {
		t.Fatalf("users passwd with another password: %v, said %q", err, out.String())
	}
	if err := session(); err == nil {
		t.Error("the session after a new password: live, want it ended (SEC-130)")
	}
}

// `grants list --user NAME` with a name no local account has says so: it
// printed an empty list, as for an account that holds no grant. A known
// account with none, and another provider's user ID, still list.
func TestGrantsListUnknownLocalUser(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	st := openAdminStore(t, &cfg)
	if err := st.PutLocalUser(ctx, &store.LocalUser{Name: "bob", PasswordHash: []byte("x"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	err := Admin(ctx, &cfg, AdminCommand{Noun: "grants", Verb: "list", User: "nosuch"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no local user nosuch") {
		t.Errorf("grants list --user nosuch: %v, want no local user named", err)
	}
	for _, user := range []string{"bob", "github:583231"} {
		if err := Admin(ctx, &cfg, AdminCommand{Noun: "grants", Verb: "list", User: user}, io.Discard); err != nil {
			t.Errorf("grants list --user %s: %v, want an empty list", user, err)
		}
	}
}
