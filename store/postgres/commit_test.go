package postgres

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
)

// SEC-86: the two statements of an authorization code, and only they,
// commit without waiting for their WAL flush; the setting holds for their
// own transaction and never stays on the pooled connection.
func TestSEC86_OnlyCodesCommitAsynchronously(t *testing.T) {
	dsn := pgtest.Start(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// The test server commits asynchronously throughout; these sessions
	// start synchronous, as on a deployed server, on one connection.
	s := open(t, dsn+sep+"synchronous_commit=on&pool_max_conns=1")
	ctx := t.Context()
	now := time.Now()
	c := &store.Code{Hash: []byte("code-1"), ClientID: "c", RedirectURI: "http://127.0.0.1/cb", CodeChallenge: "x",
		Resource: "http://127.0.0.1/mcp", Scopes: []string{"mcp"}, GrantID: "g1", ExpiresAt: now.Add(time.Minute)}

	// commitsWith runs q in a transaction that it rolls back, and returns
	// the synchronous_commit its commit would have had.
	commitsWith := func(name, q string, args ...any) string {
		t.Helper()
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		tag, err := tx.Exec(ctx, q, args...)
		if err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("%s: %v, %d rows; want one", name, err, tag.RowsAffected())
		}
		var v string
		if err := tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	args, err := codeArgs(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := commitsWith("CreateCode", sqlInsertCode, args...); got != "off" {
		t.Errorf("CreateCode commits with synchronous_commit %s, want off", got)
	}
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := commitsWith("ConsumeCode", sqlUseCode, nanos(now), c.Hash, c.CodeChallenge); got != "off" {
		t.Errorf("ConsumeCode commits with synchronous_commit %s, want off", got)
	}
	if _, err := s.ConsumeCode(ctx, c.Hash, c.CodeChallenge, now); err != nil {
		t.Fatal(err)
	}
	var after string
	if err := s.pool.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&after); err != nil || after != "on" {
		t.Errorf("the connection after CreateCode and ConsumeCode: synchronous_commit %q (%v), want on", after, err)
	}

	// Everything a client keeps beyond a minute is flushed before it is
	// answered (PostgreSQL's own default, which the server's settings decide).
	for name, q := range map[string]string{
		"CreateGrant": sqlInsertGrant, "CreateGrant with a refresh token": sqlInsertGrantRefresh,
		"RotateRefresh": sqlRotate, "RotateRefresh's revocation": sqlRevokeFamily, "RevokeGrant": sqlRevokeGrant,
		"CreateClient": sqlInsertClient, "TouchClient": sqlTouchClient, "PutConsent": sqlPutConsent,
		"CreateSigningKey": sqlInsertSigningKey, "PutLocalUser": sqlPutLocalUser, "CreateLocalUser": sqlCreateLocalUser,
	} {
		if strings.Contains(q, "synchronous_commit") {
			t.Errorf("%s sets synchronous_commit: its commit must wait for the WAL flush", name)
		}
	}
}
