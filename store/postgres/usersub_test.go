package postgres

import (
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/internal/pgtest"
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
		{sqlListUserGrants, "'local:x'", []string{"grants_user_sub"}},
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
