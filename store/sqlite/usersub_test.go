package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// SEC-194: what one person's account page and account changes read is
// found through an index on the user ID, never by reading every person's
// grants and sessions. Fails before: each plan was a SCAN of the table.
func TestSEC194_OnePersonsRowsFoundByIndex(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "m.db"))
	defer s.Close()
	for _, tc := range []struct {
		query, index string
		args         []any
	}{
		{sqlListUserGrants, "grants_user_sub", []any{"local:x", false, -1}},
		// SEC-217: the clients page reads the newest first, a page at a time.
		{sqlListClients, "clients_newest", []any{501}},
		{sqlRevokeUserGrants, "grants_user_sub", []any{1, "local:x"}},
		{sqlDeleteUserSessions, "sessions_user_sub", []any{"local:x"}},
		{sqlEndChangedUserSessions, "sessions_user_sub", []any{"x", "h", "[]"}},
	} {
		rows, err := s.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("EXPLAIN QUERY PLAN %s: %v", tc.query, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		if !strings.Contains(strings.Join(plan, "\n"), "USING INDEX "+tc.index) {
			t.Errorf("%s\nplan:\n%s\nwant it to use %s", tc.query, strings.Join(plan, "\n"), tc.index)
		}
	}
}
