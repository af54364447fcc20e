package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func newStore(t *testing.T) store.Store {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, newStore) }

func TestConcurrency(t *testing.T) { storetest.RunConcurrency(t, newStore) }

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "mcpgate.db")
	s := open(t, path)
	defer s.Close()
	// A write, so that the WAL exists too.
	if err := s.CreateClient(t.Context(), &store.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{
		dir:           0o700 | os.ModeDir,
		path:          0o600,
		path + "-wal": 0o600,
		path + "-shm": 0o600,
	} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%v, want the file to exist", err)
			}
			if fi.Mode() != want {
				t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
			}
		})
	}
	// A parent made for it is searchable, as mkdir -p makes it (SEC-22).
	if fi, err := os.Stat(filepath.Dir(dir)); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm()&0o001 == 0 {
		t.Errorf("the parent made for the data directory: %v, want it searchable by others", fi.Mode())
	}
}

func TestOpenTightensExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	open(t, path).Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// SEC-150: a database opened through a symbolic link, or in a directory every user
// may write to, is refused with the reason: anyone who could write there
// could put a link where the database goes, and have it made, or another
// file's mode changed, elsewhere. The file the link names is untouched.
// Fails before this change: the link was followed, and its target made
// 0600.
func TestOpenRefusesLinkAndOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, []byte("not a database"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "mcpgate.db")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open through a link: %v, want it refused", err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("the link's target after Open: %v %v, want it as it was, 0644", fi.Mode(), err)
	}

	openDir := filepath.Join(dir, "open")
	if err := os.Mkdir(openDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(openDir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), filepath.Join(openDir, "mcpgate.db")); err == nil || !strings.Contains(err.Error(), "every user") {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open in a directory every user may write to: %v, want it refused", err)
	}
}

// SEC-196: a gateway running as root opened a database in a directory
// another user had made, and that user's own file there: its owner could
// read and change it at will (and the key beside it was theirs). Open,
// serve's, refuses both; OpenCurrent, a command's beside the gateway,
// still reads as root the file of the directory's owner (sudo mcpgate
// users list). Fails before: both were opened.
func TestSEC196_ServingStoreIsItsOwnUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test gives files to another user, which only root may: the tests run as root")
	}
	const other = 54321
	theirs := func(t *testing.T, dirToo bool) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "data")
		path := filepath.Join(dir, "mcpgate.db")
		open(t, path).Close()
		paths := []string{path}
		if dirToo {
			paths = append(paths, dir)
		}
		for _, p := range paths {
			if err := os.Chown(p, other, other); err != nil {
				t.Fatal(err)
			}
		}
		return path
	}
	for _, tc := range []struct {
		name   string
		dirToo bool
		want   string
	}{
		{"another user's file", false, "belongs to uid 54321, who could change it"},
		{"another user's directory and file", true, "belongs to uid 54321, who could put files of their own where mcpgate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := theirs(t, tc.dirToo)
			if s, err := Open(t.Context(), path); err == nil || !strings.Contains(err.Error(), tc.want) {
				if err == nil {
					s.Close()
				}
				t.Errorf("Open: %v, want it refused: %q", err, tc.want)
			}
			if fi, err := os.Stat(path); err != nil || fi.Sys().(*syscall.Stat_t).Uid != other {
				t.Errorf("the file after Open: %v, want it still the other user's", err)
			}
		})
	}
	t.Run("nothing made under another user's directory", func(t *testing.T) {
		theirs := filepath.Join(t.TempDir(), "theirs")
		if err := os.Mkdir(theirs, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(theirs, other, other); err != nil {
			t.Fatal(err)
		}
		if s, err := Open(t.Context(), filepath.Join(theirs, "data", "mcpgate.db")); err == nil {
			s.Close()
			t.Fatal("Open under another user's directory: taken, want refused")
		}
		if _, err := os.Lstat(filepath.Join(theirs, "data")); err == nil {
			t.Error("Open made its directory under another user's before refusing it")
		}
	})
	t.Run("a command as root, on the directory owner's file", func(t *testing.T) {
		s, err := OpenCurrent(t.Context(), theirs(t, true))
		if err != nil {
			t.Fatalf("OpenCurrent as root on its directory owner's database: %v, want it opened", err)
		}
		s.Close()
	})
}

// The settings that durability and the single-writer design rest on.
func TestPragmas(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "a b?c#d.db")) // awkward names survive the DSN
	defer s.Close()
	ctx := t.Context()
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := s.w.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("writer %s = %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
	var qo string
	if err := s.r.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil || qo != "1" {
		t.Errorf("reader query_only = %q (%v), want 1", qo, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.path(t)), "a b?c#d.db")); err != nil {
		t.Errorf("database not at the path given: %v, want the file there", err)
	}
}

// path returns the main database file of s as SQLite sees it.
func (s *Store) path(t *testing.T) string {
	t.Helper()
	var seq int
	var name, file string
	if err := s.w.QueryRowContext(t.Context(), "PRAGMA database_list").Scan(&seq, &name, &file); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestPersistence(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	u := identity.User{ID: "local:alice", Upstream: "local", Username: "alice"}

	s := open(t, path)
	steps := []error{
		s.CreateClient(ctx, &store.Client{ID: "c1", Name: "one", RedirectURIs: []string{"https://a.example/cb"}}),
		s.CreateGrant(ctx, &store.Grant{ID: "g1", ClientID: "c1", User: u, CreatedAt: now},
			&store.RefreshToken{Hash: []byte("rt1"), Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}),
		s.CreateCode(ctx, &store.Code{Hash: []byte("code1"), ClientID: "c1", User: u, GrantID: "g2", ExpiresAt: now.Add(time.Minute)}),
		s.PutLocalUser(ctx, &store.LocalUser{Name: "alice", PasswordHash: []byte("bcrypt"), CreatedAt: now}),
		s.CreateSigningKey(ctx, &store.SigningKey{ID: "k1", Algorithm: "EdDSA", Private: []byte("sealed"), Public: []byte("{}"), CreatedAt: now}),
	}
	if err := errors.Join(steps...); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeCode(ctx, []byte("code1"), "", now); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RotateRefresh(ctx, []byte("rt1"), &store.RefreshToken{Hash: []byte("rt2"), ExpiresAt: now.Add(time.Hour)}, nil, now, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	defer s.Close()
	c, err := s.GetClient(ctx, "c1")
	if err != nil || c.Name != "one" || c.RedirectURIs[0] != "https://a.example/cb" {
		t.Errorf("client after reopen: %+v, %v; want c1 named one with its redirect URI", c, err)
	}
	if n, err := s.CountLocalUsers(ctx); err != nil || n != 1 {
		t.Errorf("local users after reopen: %d, %v; want 1", n, err)
	}
	if keys, err := s.ListSigningKeys(ctx); err != nil || len(keys) != 1 || string(keys[0].Private) != "sealed" {
		t.Errorf("signing keys after reopen: %v, %v; want k1 with its sealed private key", keys, err)
	}
	// Single use survives a restart: PKCE-3 and RT-1.
	if _, err := s.ConsumeCode(ctx, []byte("code1"), "", now); !errors.Is(err, store.ErrCodeReused) {
		t.Errorf("code after reopen: %v, want ErrCodeReused", err)
	}
	if _, _, err := s.RotateRefresh(ctx, []byte("rt2"), &store.RefreshToken{Hash: []byte("rt3"), ExpiresAt: now.Add(time.Hour)}, nil, now, 0); err != nil {
		t.Errorf("rotating the token issued before reopen: %v, want success", err)
	}
	if _, _, err := s.RotateRefresh(ctx, []byte("rt1"), &store.RefreshToken{Hash: []byte("rt4")}, nil, now, 0); !errors.Is(err, store.ErrRefreshReused) {
		t.Errorf("token rotated before reopen: %v, want ErrRefreshReused", err)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s := open(t, path)
		var n, maxV int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &maxV); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || maxV != ms[len(ms)-1].version {
			t.Errorf("schema_migrations has %d rows up to %d, want %d up to %d", n, maxV, len(ms), ms[len(ms)-1].version)
		}
		// Migrating an up-to-date database again changes nothing.
		if err := migrate(ctx, s.w, true); err != nil {
			t.Errorf("migrate again: %v, want nothing to do", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s := open(t, path)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer version, want an error")
	}
}

// OpenCurrent, a command's open, applies no migration: a file of an older
// schema, which a gateway of the older version serves on, is refused as
// ErrSchemaBehind and left as it was; a missing file is not made; an
// up-to-date one opens.
func TestOpenCurrentUpgradesNothing(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	if _, err := OpenCurrent(ctx, path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenCurrent on no file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenCurrent made %s: %v", path, err)
	}
	s := open(t, path)
	cur, err := OpenCurrent(ctx, path)
	if err != nil {
		t.Fatalf("OpenCurrent on an up-to-date file: %v", err)
	}
	cur.Close()
	if _, err := s.w.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	var before int
	s.r.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&before)
	s.Close()
	_, err = OpenCurrent(ctx, path)
	if !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("OpenCurrent on an older schema: %v, want ErrSchemaBehind naming the versions", err)
	}
	db, err := sql.Open("sqlite", dsn(path, url.Values{}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var after int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&after); err != nil || after != before {
		t.Errorf("schema_migrations: %d rows after OpenCurrent (%v), %d before; want it to apply none", after, err, before)
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Open(ctx, filepath.Join(t.TempDir(), "mcpgate.db")); err == nil {
		s.Close()
		t.Error("Open with a cancelled context succeeded, want an error")
	}
}

// Two stores on one file stand for two mcpgate processes: their writers are
// separate connections, so BEGIN IMMEDIATE and busy_timeout must keep
// ConsumeCode single-use across them without SQLITE_BUSY.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	a, b := open(t, path), open(t, path)
	defer a.Close()
	defer b.Close()
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	const racers = 16
	for round := range 8 {
		h := []byte{byte(round)}
		if err := a.CreateCode(ctx, &store.Code{Hash: h, GrantID: "g", ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, racers)
		start := make(chan struct{})
		for i := range racers {
			s := a
			if i%2 == 1 {
				s = b
			}
			go func() {
				<-start
				_, err := s.ConsumeCode(ctx, h, "", now)
				errs <- err
			}()
		}
		close(start)
		wins := 0
		for range racers {
			switch err := <-errs; {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrCodeReused):
				t.Fatalf("round %d: %v, want nil or ErrCodeReused", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d winners, want 1", round, wins)
		}
	}
}

// A database written before migration 0003 keeps the successors of its
// rotated tokens in refresh_tokens.successor; after the upgrade they still
// come back, byte for byte, and new rotations use refresh_successors.
func TestUpgradeKeepsSuccessors(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)

	// The schema as migrations 0001 and 0002 left it, with a token
	// rotated then.
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	old, err := sql.Open("sqlite", dsn(path, url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, `CREATE TABLE schema_migrations (
		version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version > 2 {
			continue
		}
		if _, err := old.ExecContext(ctx, m.sql); err != nil {
			t.Fatal(err)
		}
		if _, err := old.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, ?, 0)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	legacy := []byte{0, 'l', 'e', 'g', 'a', 'c', 'y', 0, 0xff}
	for _, q := range []string{
		`INSERT INTO grants (id, client_id, user, resource, scopes, created_at, revoked_at)
			VALUES ('g1', 'c1', '{}', 'https://mcp.example/mcp', '["mcp"]', 1, 0)`,
		`INSERT INTO refresh_tokens (hash, grant_id, generation, scopes, created_at, expires_at, rotated_at, successor)
			VALUES (x'01', 'g1', 1, '["mcp"]', 1, 0, ` + fmt.Sprint(now.UnixNano()) + `, x'006c656761637900ff')`,
		`INSERT INTO refresh_tokens (hash, grant_id, generation, scopes, created_at, expires_at, rotated_at, successor)
			VALUES (x'02', 'g1', 2, '["mcp"]', 1, 0, 0, NULL)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	s := open(t, path)
	defer s.Close()
	tok, _, err := s.GetRefresh(ctx, []byte{1}, now)
	if err != nil {
		t.Fatalf("legacy token after upgrade: %v", err)
	}
	if !bytes.Equal(tok.Successor, legacy) {
		t.Fatalf("legacy successor after upgrade: %x, want %x", tok.Successor, legacy)
	}
	_, prev, err := s.RotateRefresh(ctx, []byte{1}, &store.RefreshToken{Hash: []byte{9}}, []byte("other"), now.Add(time.Second), 30*time.Second)
	if !errors.Is(err, store.ErrRefreshRotated) || prev == nil {
		t.Fatalf("retry of a legacy rotation: %v, old token %v; want ErrRefreshRotated with the old token", err, prev)
	}
	if !bytes.Equal(prev.Successor, legacy) {
		t.Fatalf("retry of a legacy rotation: successor %x, want %x", prev.Successor, legacy)
	}
	// The token that rotation issued rotates the new way.
	fresh := []byte("fresh successor")
	if _, _, err := s.RotateRefresh(ctx, []byte{2}, &store.RefreshToken{Hash: []byte{3}}, fresh, now, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	var inTable, inColumn int
	if err := s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM refresh_successors),
		(SELECT count(*) FROM refresh_tokens WHERE successor IS NOT NULL)`).Scan(&inTable, &inColumn); err != nil {
		t.Fatal(err)
	}
	if inTable != 1 || inColumn != 1 {
		t.Errorf("%d successors in refresh_successors, %d in refresh_tokens; want 1 and 1", inTable, inColumn)
	}
	tok, _, err = s.GetRefresh(ctx, []byte{2}, now)
	if err != nil {
		t.Fatalf("token rotated after the upgrade: %v", err)
	}
	if !bytes.Equal(tok.Successor, fresh) {
		t.Fatalf("new successor: %q, want %q", tok.Successor, fresh)
	}
	// Housekeeping keeps both: their tokens are alive.
	if _, err := s.DeleteExpired(ctx, now, time.Time{}, 1000); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]byte{{1}, {2}} {
		if tok, _, err := s.GetRefresh(ctx, h, now); err != nil || tok.Successor == nil {
			t.Errorf("token %x after housekeeping: %v, %v; want it with its successor", h, tok, err)
		}
	}
}

// Housekeeping removes the successors of the refresh tokens it deletes,
// and only those.
func TestDeleteExpiredSuccessors(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	u := identity.User{ID: "local:alice"}
	for _, g := range []string{"live", "revoked", "expired"} {
		exp := now.Add(time.Hour)
		if g == "expired" {
			exp = now.Add(time.Minute)
		}
		if err := s.CreateGrant(ctx, &store.Grant{ID: g, ClientID: "c", User: u, CreatedAt: now},
			&store.RefreshToken{Hash: []byte(g + "-1"), Generation: 1, CreatedAt: now, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.RotateRefresh(ctx, []byte(g+"-1"), &store.RefreshToken{Hash: []byte(g + "-2"), CreatedAt: now, ExpiresAt: exp},
			[]byte("successor of "+g), now, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeGrant(ctx, "revoked", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, now.Add(30*time.Minute), time.Time{}, 1000); err != nil {
		t.Fatal(err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT successor FROM refresh_successors ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var left []string
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		left = append(left, string(b))
	}
	if len(left) != 1 || left[0] != "successor of live" {
		t.Errorf("successors after housekeeping: %q, want only the live grant's", left)
	}
	tok, _, err := s.GetRefresh(ctx, []byte("live-1"), now)
	if err != nil || string(tok.Successor) != "successor of live" {
		t.Errorf("live token after housekeeping: %v, %v; want it with its successor", tok, err)
	}
}

// SEC-13: Ping fails while the database cannot take a write, as on a
// read-only file or a full disk (here: the write connection made
// query_only, which fails every write as a read-only file does), and
// succeeds again once it can; reads alone would not have noticed.
func TestPingNeedsAWrite(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping on a writable database: %v", err)
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA query_only = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClient(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read on a read-only database: %v, want ErrNotFound", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping on a database that cannot write: nil, want an error")
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA query_only = 0`); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping once writable again: %v", err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM ping`).Scan(&n); err != nil || n != 0 {
		t.Errorf("ping rows left: %d, %v; want none", n, err)
	}
}

// A database named one level below a data directory that does not exist
// yet (data/db/mcpgate.db) makes the data directory as a parent: it is
// searchable for the stdio servers' uids, but nobody else lists what the
// gateway keeps in it (SEC-22).
func TestOpenParentsNotListable(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	s := open(t, filepath.Join(data, "db", "mcpgate.db"))
	defer s.Close()
	fi, err := os.Stat(data)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m&0o044 != 0 || m&0o001 == 0 {
		t.Errorf("the parent made for the database's directory: mode %04o, want searchable by others but not readable (0711)", m)
	}
}

// SEC-134: a database from before approvals named their resource keeps
// its approvals through migration 14, under no resource (”), which no
// request names: each person is asked once more, and nothing is lost.
func TestConsentResourceMigration(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s := open(t, path)
	for _, q := range []string{
		`DROP TABLE consents`,
		`CREATE TABLE consents (user_id TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, created_at INTEGER NOT NULL,
			PRIMARY KEY (user_id, client_id)) STRICT, WITHOUT ROWID`,
		`CREATE INDEX consents_client_id ON consents (client_id)`,
		`INSERT INTO consents VALUES ('github:1', 'c1', '["mcp"]', 7)`,
		`DELETE FROM schema_migrations WHERE version IN (14, 16)`,
	} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = open(t, path)
	defer s.Close()
	if _, err := s.GetConsent(ctx, "github:1", "c1", "https://mcp.example/mcp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an approval from before, for a resource: %v, want ErrNotFound (asked again)", err)
	}
	c, err := s.GetConsent(ctx, "github:1", "c1", "")
	if err != nil || len(c.Scopes) != 1 || c.Scopes[0] != "mcp" {
		t.Errorf("the approval from before, kept under no resource: %+v, %v", c, err)
	}
	if err := s.DeleteConsent(ctx, "github:1", "c1"); err != nil {
		t.Fatal(err)
	}
}
