package app

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/mcpgate/mcpgate/internal/config"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// SEC-178: the commands run beside a gateway (users, clients, grants,
// flows, keys rotate, check) never upgrade the store's schema: a gateway
// of the older version serving on it would fail its writes, and could not
// start again. Each refuses, or check says what serve will do, and the
// schema stays as it was. Fails before: every one of them migrated it.
func TestSEC178_CommandsLeaveAnOlderSchema(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	db := filepath.Join(cfg.DataDir, "mcpgate.db")
	if _, err := tokens.LoadOrCreateKeyFile(filepath.Join(cfg.DataDir, "secret.key")); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// The schema of the version before: its last migration not applied
	// (only its record is taken out: what matters is what a command does).
	raw, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	applied := func() (n int) {
		t.Helper()
		if err := raw.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := applied()

	for _, cmd := range []AdminCommand{{Noun: "users", Verb: "list"}, {Noun: "grants", Verb: "list"}, {Noun: "clients", Verb: "list"}} {
		err := Admin(ctx, &cfg, cmd, io.Discard)
		if !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), "stop the older gateways") {
			t.Errorf("%s %s: %v, want ErrSchemaBehind with what to do", cmd.Noun, cmd.Verb, err)
		}
	}
	if err := Flows(ctx, &cfg, FlowsCommand{}, io.Discard); !errors.Is(err, store.ErrSchemaBehind) {
		t.Errorf("flows: %v, want ErrSchemaBehind", err)
	}
	if err := RotateKeys(ctx, &cfg, io.Discard); !errors.Is(err, store.ErrSchemaBehind) {
		t.Errorf("keys rotate: %v, want ErrSchemaBehind", err)
	}
	var out bytes.Buffer
	Check(ctx, &cfg, &out)
	if !strings.Contains(out.String(), "upgrades it at its start") || !strings.Contains(out.String(), "skip key") {
		t.Errorf("check says:\n%s\nwant the store's line to say serve upgrades it, and the key not checked", out.String())
	}
	if n := applied(); n != before {
		t.Fatalf("schema_migrations: %d rows after the commands, %d before: a command upgraded the schema", n, before)
	}
}

// SEC-95 for keys rotate: a mistyped --data-dir is refused, not made a new
// store whose rotation the command reports done. Fails before: it made
// DIR/mcpgate.db and said every gateway signs with the new key.
func TestKeysRotateNeverMakesAStore(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(t.TempDir(), "typo")
	cfg.SecretKeyFile = filepath.Join(t.TempDir(), "secret.key")
	if _, err := tokens.LoadOrCreateKeyFile(cfg.SecretKeyFile); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := RotateKeys(context.Background(), &cfg, &out)
	if err == nil || !strings.Contains(err.Error(), "no store at") {
		t.Errorf("keys rotate in a missing directory: %v (said %q), want no store at …", err, out.String())
	}
	if _, err := os.Stat(cfg.DataDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("keys rotate made %s: %v", cfg.DataDir, err)
	}
	cfg.Store, cfg.SecretKeyFile = "memory", ""
	if err := RotateKeys(context.Background(), &cfg, &out); err == nil || !strings.Contains(err.Error(), "memory store lives inside one mcpgate serve") {
		t.Errorf("keys rotate on the memory store: %v, want it said that there is nothing to rotate from outside", err)
	}
}

// On a new PostgreSQL database, as the README's set-up has it before the
// first serve: check says serve makes the tables (not that older gateways
// serve on it) and checks the key; an account made before the first
// serve is made, with the tables. Fails before: check spoke of older
// gateways and skipped the key, users add refused.
func TestNewPostgresBeforeTheFirstServe(t *testing.T) {
	ctx := context.Background()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Store = pgtest.Start(t)
	var out bytes.Buffer
	if !Check(ctx, &cfg, &out) || !strings.Contains(out.String(), "a new database: mcpgate serve makes its tables") ||
		!strings.Contains(out.String(), "ok   key") || strings.Contains(out.String(), "older") {
		t.Errorf("check on a new database says:\n%s\nwant it new, and the key checked", out.String())
	}
	pw := func() (string, error) { return "a password of bob", nil }
	if err := Admin(ctx, &cfg, AdminCommand{Noun: "users", Verb: "add", Arg: "bob", Password: pw}, io.Discard); err != nil {
		t.Fatalf("users add before the first serve: %v", err)
	}
	out.Reset()
	if err := Admin(ctx, &cfg, AdminCommand{Noun: "users", Verb: "list"}, &out); err != nil || !strings.Contains(out.String(), "bob") {
		t.Fatalf("users list: %v\n%s", err, out.String())
	}
}

// check, as serve does, names a MCPGATE_ variable mcpgate does not read
// (MCPGATE_LOCAL_USER for MCPGATE_LOCAL_USERS), and fails: the setting it
// was meant for is not applied. Fails before: check said all was ok.
func TestCheckNamesUnknownVariables(t *testing.T) {
	t.Setenv("MCPGATE_LOCAL_USER", "alice:password-of-alice")
	cfg := config.Defaults()
	cfg.Store, cfg.DataDir = "memory", t.TempDir()
	var out bytes.Buffer
	if Check(context.Background(), &cfg, &out) || !strings.Contains(out.String(), "FAIL config   MCPGATE_LOCAL_USER is no setting of mcpgate, and serve ignores it: did you mean MCPGATE_LOCAL_USERS?") ||
		strings.Contains(out.String(), "ok   config") {
		t.Errorf("check with MCPGATE_LOCAL_USER set says:\n%s\nwant it named with the variable meant, check failed, and no config line that says ok", out.String())
	}
}

// SEC-196: check says what serve would refuse: a data directory under a
// directory every user may write to. Fails before: check said ok, and
// serve refused to start.
func TestCheckRefusesAPathOthersMayChange(t *testing.T) {
	open := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir = filepath.Join(open, "mcpgate-data")
	var out bytes.Buffer
	if Check(context.Background(), &cfg, &out) || !strings.Contains(out.String(), "FAIL store    mcpgate serve would refuse it: the directory "+open+" may be written by every user") {
		t.Errorf("check with the data directory under a directory all may write to:\n%s\nwant it failed, as serve would refuse it", out.String())
	}
	if _, err := os.Stat(cfg.DataDir); err == nil {
		t.Error("check made the data directory")
	}
}

// check says what serve warns of at start, without failing: a warning
// does not stop serve. Fails before: check said nothing of it.
func TestCheckSaysWhatServeWarnsOf(t *testing.T) {
	cfg := config.Defaults()
	cfg.Store, cfg.DataDir = "memory", t.TempDir()
	cfg.LocalUsers = []string{"alice:short"}
	var out bytes.Buffer
	if !Check(context.Background(), &cfg, &out) || !strings.Contains(out.String(), "warn config   local user alice has a password of 5 characters") {
		t.Errorf("check with a short local password:\n%s\nwant it passed, with serve's warning", out.String())
	}
}

// SEC-196, SEC-221: check fails where serve would refuse to start: a data
// directory that is itself a sticky directory every user may write to,
// and an audit log in a missing directory or behind a link. Fails before:
// check said all was well, and serve refused to start.
func TestCheckRefusesWhatServeRefuses(t *testing.T) {
	sticky := filepath.Join(t.TempDir(), "sticky")
	if err := os.Mkdir(sticky, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o1777); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "audit.log")
	if err := os.Symlink(filepath.Join(t.TempDir(), "elsewhere"), link); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		set  func(*config.Config)
		want string
	}{
		"a sticky data directory all may write to": {func(c *config.Config) { c.DataDir = sticky }, "FAIL store    mcpgate serve would refuse it"},
		"an audit log in a missing directory":      {func(c *config.Config) { c.AuditLog = "/nonexistent/dir/audit.log" }, "FAIL audit    mcpgate serve would refuse it"},
		"an audit log that is a link":              {func(c *config.Config) { c.AuditLog = link }, "FAIL audit    mcpgate serve would refuse it"},
	} {
		cfg := config.Defaults()
		cfg.DataDir = t.TempDir()
		tc.set(&cfg)
		var out bytes.Buffer
		if Check(context.Background(), &cfg, &out) || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%s:\n%s\nwant %q, check failed", name, out.String(), tc.want)
		}
	}
}
