package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// housekeep deletes what expired at now in batches of limit, as the
// gateway's housekeeping does, and returns how many batches it took.
func housekeep(t *testing.T, s *Store, now, grantsBefore time.Time, limit int) int {
	t.Helper()
	for batches := 1; ; batches++ {
		n, err := s.DeleteExpired(t.Context(), now, grantsBefore, limit)
		if err != nil {
			t.Fatal(err)
		}
		if n < limit {
			return batches
		}
	}
}

// flows runs n authorization flows at now through the store's verbs, as
// the gateway does (a request, its consent, a code redeemed into a grant,
// a refresh, a browser session, an upstream session), whose records all
// expire or end within the hour; one flow in ten abandons its request,
// and one in ten has its grant revoked.
func flows(t *testing.T, s *Store, round, n int, now time.Time) {
	t.Helper()
	ctx := t.Context()
	u := identity.User{ID: "local:alice", Username: "alice", Groups: []string{"staff"}}
	successor := bytes.Repeat([]byte{0xa5}, 1024) // a sealed token response's size
	for i := range n {
		id := fmt.Sprintf("%d-%d", round, i)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatalf("flow %s: %v", id, err)
			}
		}
		must(s.CreateAuthRequest(ctx, &store.AuthRequest{ID: "req-" + id, ClientID: "c", RedirectURI: "http://127.0.0.1/cb",
			State: "state-" + id, CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Scopes: []string{"mcp"},
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}))
		if i%10 == 9 {
			continue // abandoned: the request expires
		}
		must(s.AttachUpstreamState(ctx, "req-"+id, "local", []byte("st-"+id), now))
		if _, err := s.TakeAuthRequestByUpstreamState(ctx, []byte("st-"+id), now); err != nil {
			must(err)
		}
		must(s.CreateSession(ctx, &store.Session{Hash: []byte("sess-" + id), User: u, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
		must(s.PutUpstreamSession(ctx, &store.UpstreamSession{GrantID: "g-" + id, Connector: "oidc", User: u, Token: successor[:200], CheckedAt: now}))
		must(s.CreateCode(ctx, &store.Code{Hash: []byte("code-" + id), ClientID: "c", User: u, GrantID: "g-" + id, ExpiresAt: now.Add(time.Minute)}))
		if _, err := s.ConsumeCode(ctx, []byte("code-"+id), "", now); err != nil {
			must(err)
		}
		must(s.CreateGrant(ctx, &store.Grant{ID: "g-" + id, ClientID: "c", User: u, Scopes: []string{"mcp"}, CreatedAt: now},
			&store.RefreshToken{Hash: []byte("rt1-" + id), Generation: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
		if _, _, err := s.RotateRefresh(ctx, []byte("rt1-"+id), &store.RefreshToken{Hash: []byte("rt2-" + id), CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
			successor, now, time.Minute); err != nil {
			must(err)
		}
		if i%10 == 3 {
			must(s.RevokeGrant(ctx, "g-"+id, now))
		}
	}
}

// size is the database's size on disk once the WAL is checkpointed into
// it: what the store keeps, not how far the WAL ran ahead.
func size(t *testing.T, s *Store, path string) int64 {
	t.Helper()
	var busy, logPages, done int
	if err := s.w.QueryRowContext(t.Context(), `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logPages, &done); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Under a steady load of flows whose records all expire, with housekeeping
// between rounds, the file stops growing: the pages the deleted rows held
// are reused, and nothing is left behind to pile up (grants included).
// The clock is the store's now, a day a round; nothing waits.
func TestHousekeepingBoundsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s := open(t, path)
	defer s.Close()
	const rounds, perRound, accessTTL = 6, 150, time.Hour
	start := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	var sizes []int64
	for r := range rounds {
		now := start.Add(time.Duration(r) * 24 * time.Hour)
		housekeep(t, s, now, now.Add(-accessTTL), 500)
		flows(t, s, r, perRound, now)
		sizes = append(sizes, size(t, s, path))
	}
	t.Logf("file size after each round: %v", sizes)
	// A margin of a few pages: which B-tree pages a round's random keys
	// split is not the same from round to round.
	if limit := sizes[1] + sizes[1]/50 + 4*4096; sizes[rounds-1] > limit {
		t.Errorf("file grew from %d bytes after round 2 to %d after round %d, want at most %d", sizes[1], sizes[rounds-1], rounds, limit)
	}
	var grants int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*) FROM grants`).Scan(&grants); err != nil {
		t.Fatal(err)
	}
	if grants > perRound {
		t.Errorf("%d grants stored after %d rounds, want at most the last round's %d", grants, rounds, perRound)
	}
}

// A request's write is not held up while housekeeping deletes a large
// backlog: each batch is one op of the writer, and a write queued meanwhile
// runs right after the batch under way, long before the backlog is gone.
// What is asserted is the order (the write completes while most of the
// backlog is still there), never a duration; the time it took is logged.
func TestHousekeepingDoesNotBlockWrites(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	now := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	const backlog, limit = 100_000, 500
	begin := time.Now()
	err := s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
			INSERT INTO sessions (hash, user, created_at, expires_at) SELECT CAST(printf('%032d', i) AS BLOB), '{"id":"local:alice"}', 0, ?2 FROM n`,
			backlog, nanos(now.Add(-time.Minute)))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("backlog stored after %v", time.Since(begin))
	// Housekeeping deletes the backlog a batch at a time until it sees the
	// write done (or runs out of backlog, which is the failure).
	var batches atomic.Int64
	var written atomic.Bool
	firstBatch, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for {
			n, err := s.DeleteExpired(context.Background(), now, time.Time{}, limit)
			if err != nil {
				done <- err
				return
			}
			if batches.Add(1) == 1 {
				close(firstBatch)
			}
			if n < limit {
				done <- errors.New("housekeeping deleted the whole backlog before the write completed")
				return
			}
			if written.Load() {
				done <- nil
				return
			}
		}
	}()
	<-firstBatch
	start := time.Now()
	if err := s.CreateClient(ctx, &store.Client{ID: "registered-meanwhile", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	written.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var left int
	if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil {
		t.Fatal(err)
	}
	t.Logf("a write took %v while housekeeping deleted a backlog of %d rows, %d a batch; %d rows were left when it completed",
		took, backlog, limit, left)
	if left == 0 || left > backlog-int(batches.Load())*limit {
		t.Errorf("%d rows left after %d batches of %d, want %d", left, batches.Load(), limit, backlog-int(batches.Load())*limit)
	}
}

// SEC-181: under a steady load of refreshes whose tokens live 30 days,
// with housekeeping between rounds, each rotation leaves its rotated
// token in the file (RT-1 needs it until it expires) but not the sealed
// pair it answered with, which goes once the grace window is over. What
// the file grows by per rotation is logged and bounded well under a
// successor's size; it was about a kilobyte before, successor included.
// The clock is the store's now, an hour a round; nothing waits.
func TestSEC181_RotationsLeaveNoSuccessor(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s := open(t, path)
	defer s.Close()
	const families, rounds, grace = 200, 8, 30 * time.Second
	successor := bytes.Repeat([]byte{0xa5}, 729) // a sealed token response, as the gateway stores it
	start := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	u := identity.User{ID: "local:alice", Username: "alice"}
	current := make([][]byte, families)
	for i := range families {
		current[i] = fmt.Appendf(nil, "rt-%d-0", i)
		if err := s.CreateGrant(ctx, &store.Grant{ID: fmt.Sprint("g-", i), ClientID: "c", User: u, Scopes: []string{"mcp"}, CreatedAt: start},
			&store.RefreshToken{Hash: current[i], Generation: 1, CreatedAt: start, ExpiresAt: start.Add(30 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	var sizes []int64
	for r := 1; r <= rounds; r++ {
		now := start.Add(time.Duration(r) * time.Hour)
		for i := range families {
			next := fmt.Appendf(nil, "rt-%d-%d", i, r)
			if _, _, err := s.RotateRefresh(ctx, current[i], &store.RefreshToken{Hash: next, CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)},
				successor, now, grace); err != nil {
				t.Fatal(err)
			}
			current[i] = next
		}
		later := now.Add(2 * time.Minute) // housekeeping, past the window and its margin
		housekeep(t, s, later, time.Time{}, 500)
		for {
			n, err := s.DeleteSuccessors(ctx, later.Add(-grace-time.Minute), 500)
			if err != nil {
				t.Fatal(err)
			}
			if n < 500 {
				break
			}
		}
		sizes = append(sizes, size(t, s, path))
	}
	perRotation := (sizes[rounds-1] - sizes[1]) / int64((rounds-2)*families)
	t.Logf("file size after each round of %d rotations: %v; %d bytes per rotation after the second", families, sizes, perRotation)
	if perRotation > 300 {
		t.Errorf("SEC-181: the file grows by %d bytes per rotation, want at most 300 (a rotated token without its %d-byte successor)", perRotation, len(successor))
	}
}
