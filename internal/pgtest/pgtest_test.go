package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Each Start is a database of its own, on a server that listens on loopback
// TCP only and does not sync.
func TestStart(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatalf("two Starts gave the same DSN %s, want two databases", a)
	}
	ca, cb := connect(t, a), connect(t, b)
	ctx := t.Context()
	if _, err := ca.Exec(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := cb.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a table created in one database is seen in the other, want them apart")
	}
	for setting, want := range map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": "",
		"fsync":                   "off",
	} {
		var got string
		if err := ca.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", setting, got, want)
		}
	}
	if !strings.HasPrefix(a, "postgres://postgres@127.0.0.1:") {
		t.Errorf("DSN %s, want one on 127.0.0.1", a)
	}
}

// As root, the server runs as the postgres user: PostgreSQL refuses root.
func TestServerNotRoot(t *testing.T) {
	Start(t)
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(srv.cmd.Process.Pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" {
			if f[1] == "0" {
				t.Errorf("postmaster runs as uid 0, want an unprivileged user")
			}
			return
		}
	}
	t.Fatalf("no Uid line in /proc/%d/status", srv.cmd.Process.Pid)
}

// A test's database is dropped at its cleanup.
func TestDroppedAtCleanup(t *testing.T) {
	var dsn string
	t.Run("user", func(t *testing.T) {
		dsn = Start(t)
		connect(t, dsn) // closed by its cleanup, before the drop
	})
	name := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	admin := connect(t, strings.Replace(dsn, "/"+name+"?", "/postgres?", 1))
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after its test ended, want it dropped", name)
	}
}

func fakeBin(t *testing.T, dir string, names ...string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindBinaries(t *testing.T) {
	root := t.TempDir()
	glob := filepath.Join(root, "lib", "*", "bin")
	v13 := filepath.Join(root, "lib", "13", "bin")
	v16 := filepath.Join(root, "lib", "16", "bin")
	v9 := filepath.Join(root, "lib", "9", "bin")
	fakeBin(t, v13, "initdb", "postgres")
	fakeBin(t, v16, "initdb", "postgres")
	fakeBin(t, v9, "initdb", "postgres")
	fakeBin(t, filepath.Join(root, "lib", "17", "bin"), "initdb") // no server: not a candidate

	// A link on the PATH leads to the server's directory.
	linkDir := filepath.Join(root, "local")
	if err := os.MkdirAll(linkDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(v13, "initdb"), filepath.Join(linkDir, "initdb")); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(root, "empty")

	for _, tc := range []struct {
		name, path, glob, want string
	}{
		{"PATH first", empty + string(filepath.ListSeparator) + linkDir, glob, v13},
		{"newest version", empty, glob, v16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := findBinaries(tc.path, tc.glob)
			if err != nil || got != tc.want {
				t.Errorf("findBinaries = %q, %v; want %q", got, err, tc.want)
			}
		})
	}

	// Nothing anywhere: the error names the package to install.
	_, err := findBinaries(empty, filepath.Join(root, "none", "*", "bin"))
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("findBinaries with no server = %v, want an error naming the postgresql package", err)
	}
}
