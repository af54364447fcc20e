package postgres

import (
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-194: what one person's account page and account changes read is
// found through an index on the user ID, never by reading every person's
// grants and sessions: with sequential scans made the dearest plan, each
// statement's plan names the index. Fails before: a Seq Scan, the only
// plan there was.
func TestSEC194_OnePersonsRowsFoundByIndex(t *testing.T) {
	s := open(t, pgtest.Start(t))
	ctx := t.Context()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		query, args string
		indexes     []string
	}{
		{sqlListUserGrants, "'local:x', false, NULL", []string{"grants_user_sub"}},
		// SEC-217: the clients page reads the newest first, a page at a time.
		{sqlListClients, "501", []string{"clients_newest"}},
		{sqlEndAccount, "1, 'local:x'", []string{"grants_user_sub", "sessions_user_sub"}},
		{sqlPutLocalUser, "'x', 'h', '[]', 1, 0, true", []string{"sessions_user_sub"}},
	} {
		name := "p" + string(rune('0'+i))
		if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+tc.query); err != nil {
			t.Fatalf("PREPARE %s: %v", tc.query, err)
		}
		rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+tc.args+")")
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", tc.query, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		rows.Close()
		for _, index := range tc.indexes {
			if !strings.Contains(strings.Join(plan, "\n"), index) {
				t.Errorf("%s\nplan:\n%s\nwant it to use %s", tc.query, strings.Join(plan, "\n"), index)
			}
		}
	}
}

// SEC-194: the migration that adds the user-ID indexes upgrades a
// database holding a user stored before SEC-148 with a NUL in it, which
// jsonb refuses: the NUL becomes U+FFFD, and the person's grant is found.
// Fails before: the index could not be built, and the upgrade stopped.
func TestSEC194_MigrationUpgradesAUserWithANUL(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn)
	ctx := t.Context()
	// The database as it was before migration 13, with such a grant.
	for _, q := range []string{
		`DROP INDEX grants_user_sub`, `DROP INDEX sessions_user_sub`, `DELETE FROM schema_migrations WHERE version = 13`,
		`INSERT INTO grants (` + grantCols + `) VALUES ('g1', 'c1', '{"sub":"github:7","name":"Ev\u0000e"}', 'https://mcp.example/r', '["mcp"]', 1, 0)`,
		`INSERT INTO sessions (hash, user_json, created_at, expires_at) VALUES ('\x01', '{"sub":"github:7","name":"Ev\u0000e"}', 1, 9000000000000000000)`,
	} {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.Close()
	s = open(t, dsn)
	grants, err := s.ListGrants(ctx, store.GrantQuery{UserID: "github:7"})
	if err != nil || len(grants) != 1 || grants[0].User.Name != "Ev\uFFFDe" {
		t.Fatalf("after the upgrade: %v %+v, want the grant, its name's NUL as U+FFFD", err, grants)
	}
}
