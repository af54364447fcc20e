package postgres

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newStore(t *testing.T) store.Store { return open(t, pgtest.Start(t)) }

func TestConformance(t *testing.T) { storetest.Run(t, newStore) }

func TestRefreshSession(t *testing.T) { storetest.RunRefreshSession(t, newStore) }

func TestConcurrency(t *testing.T) { storetest.RunConcurrency(t, newStore) }

// Replicas starting at once on a new database: every Open succeeds and each
// migration is applied once (the advisory lock queues them).
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.Start(t)
	const n = 8
	errs := make([]error, n)
	stores := make([]*Store, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Open: %v, want every replica to start", i, err)
			continue
		}
		stores[i].Close()
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	s := open(t, dsn)
	rows, err := s.pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.version)
	}
	if !slices.Equal(got, want) {
		t.Errorf("schema_migrations holds %v, want each of %v once", got, want)
	}
	// Opening again applies nothing and keeps the data.
	must(t, s.CreateClient(t.Context(), &store.Client{ID: "c1"}))
	again := open(t, dsn)
	if _, err := again.GetClient(t.Context(), "c1"); err != nil {
		t.Errorf("client after reopening: %v", err)
	}
}

// A database a newer mcpgate migrated is refused, not misread.
func TestRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), dsn)
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("Open on a newer schema: %v, want a refusal naming the versions", err)
	}
}

// OpenCurrent, a command's open, applies no migration: an empty database
// is ErrNoSchema, one of an older schema that a gateway of the older
// version serves on ErrSchemaBehind, each left as it was; an up-to-date
// one opens.
func TestOpenCurrentUpgradesNothing(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Start(t)
	if _, err := OpenCurrent(ctx, dsn); !errors.Is(err, store.ErrNoSchema) {
		t.Fatalf("OpenCurrent on an empty database: %v, want ErrNoSchema", err)
	}
	s := open(t, dsn)
	count := func() (n int) {
		t.Helper()
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	all := count()
	if cur, err := OpenCurrent(ctx, dsn); err != nil {
		t.Fatalf("OpenCurrent on an up-to-date database: %v", err)
	} else {
		cur.Close()
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	_, err := OpenCurrent(ctx, dsn)
	if !errors.Is(err, store.ErrSchemaBehind) || !strings.Contains(err.Error(), "schema version") {
		t.Fatalf("OpenCurrent on an older schema: %v, want ErrSchemaBehind naming the versions", err)
	}
	if n := count(); n != all-1 {
		t.Errorf("schema_migrations holds %d after OpenCurrent, want %d: it applied a migration", n, all-1)
	}
}

// The DSN's password never appears in an error: neither when the DSN does
// not parse nor when the server cannot be reached.
func TestOpenErrorsHidePassword(t *testing.T) {
	const pw = "s3cret-Pa55"
	for _, dsn := range []string{
		"postgres://mcpgate:" + pw + "@127.0.0.1:1/mcpgate?connect_timeout=5",
		"postgres://mcpgate:" + pw + "@127.0.0.1:notaport/mcpgate",
		"postgres://mcpgate:" + pw + "@127.0.0.1/mcpgate?sslmode=bogus",
		"host=127.0.0.1 port=1 user=mcpgate password=" + pw + " connect_timeout=5",
	} {
		_, err := Open(t.Context(), dsn)
		if err == nil {
			t.Errorf("Open(%q): nil error, want a failure", strings.ReplaceAll(dsn, pw, "PW"))
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

// Conflicts, including those the server detects (a unique violation),
// reach callers as the store's sentinel with no SQL or constraint text.
func TestErrorsAreClean(t *testing.T) {
	s := open(t, pgtest.Start(t))
	ctx := t.Context()
	must(t, s.CreateAuthRequest(ctx, &store.AuthRequest{ID: "r1", ExpiresAt: tc0.Add(time.Hour)}))
	must(t, s.CreateAuthRequest(ctx, &store.AuthRequest{ID: "r2", ExpiresAt: tc0.Add(time.Hour)}))
	must(t, s.AttachUpstreamState(ctx, "r1", "github", sum("st"), tc0))
	must(t, s.CreateGrant(ctx, grant("g1"), refresh("a")))
	must(t, s.CreateGrant(ctx, grant("g2"), refresh("b")))
	_, _, rotateErr := s.RotateRefresh(ctx, refresh("a").Hash, refresh("b"), nil, tc0, 0)
	for _, tc := range []struct {
		what string
		err  error
		want string
	}{
		{"attach a state another request holds", s.AttachUpstreamState(ctx, "r2", "github", sum("st"), tc0),
			"postgres: attach upstream state: store: conflict"},
		{"grant whose refresh hash is taken", s.CreateGrant(ctx, grant("g3"), refresh("a")),
			"postgres: create grant: store: conflict"},
		{"rotate onto a taken hash", rotateErr, "postgres: rotate refresh: store: conflict"},
		{"grant id taken", s.CreateGrant(ctx, grant("g1"), refresh("c")), "postgres: create grant: store: conflict"},
	} {
		if tc.err == nil || tc.err.Error() != tc.want || !errors.Is(tc.err, store.ErrConflict) {
			t.Errorf("%s: %v, want %q", tc.what, tc.err, tc.want)
		}
	}
}

// Hashes and sealed values are stored as the callers give them, as bytes.
func TestSecretColumnsAreBytea(t *testing.T) {
	s := open(t, pgtest.Start(t))
	for _, col := range [][2]string{
		{"clients", "secret_hash"}, {"auth_requests", "upstream_state_hash"}, {"codes", "hash"},
		{"refresh_tokens", "hash"}, {"refresh_tokens", "successor"}, {"sessions", "hash"},
		{"local_users", "password_hash"}, {"signing_keys", "private"}, {"upstream_sessions", "token"},
	} {
		var typ string
		err := s.pool.QueryRow(t.Context(), `SELECT data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`, col[0], col[1]).Scan(&typ)
		if err != nil || typ != "bytea" {
			t.Errorf("%s.%s: type %q (%v), want bytea", col[0], col[1], typ, err)
		}
	}
}

// The pool holds 16 connections unless the DSN's pool_max_conns says
// otherwise: pgx's own default (4 on two cores) halved the flows/s that
// bench/flowload measured.
func TestPoolSize(t *testing.T) {
	dsn := pgtest.Start(t)
	if got := open(t, dsn).pool.Config().MaxConns; got != defaultMaxConns {
		t.Errorf("pool size %d, want %d", got, defaultMaxConns)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	if got := open(t, dsn+sep+"pool_max_conns=3").pool.Config().MaxConns; got != 3 {
		t.Errorf("pool size with pool_max_conns=3: %d, want 3", got)
	}
}

// A database whose transactions are REPEATABLE READ by default is refused
// at Open, saying what to change: the single-use steps need READ
// COMMITTED (under REPEATABLE READ, a concurrent code replay failed with a
// serialization error and no longer ended its grant).
func TestOpenRefusesAnotherIsolation(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	var db string
	if err := s.pool.QueryRow(t.Context(), "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(t.Context(), "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET default_transaction_isolation = 'repeatable read'"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(t.Context(), dsn); err == nil || !strings.Contains(err.Error(), "read committed") {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Open on a repeatable read database: %v, want it refused naming read committed", err)
	}
}

// SEC-80: Now is the database server's clock, which a gateway compares
// with its machine's (mcpgate.CheckClock): here, one machine, within a
// second of it.
func TestNowIsTheServersClock(t *testing.T) {
	s := open(t, pgtest.Start(t))
	before := time.Now()
	now, err := s.Now(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if now.Before(before.Add(-time.Second)) || now.After(time.Now().Add(time.Second)) {
		t.Errorf("Now = %v, want this machine's time, %v, within a second", now, before)
	}
}
