package postgres

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/pgtest"
	"github.com/mcpgate/mcpgate/store"
)

// The single-use verbs race across replicas: two stores, each with a pool
// of its own (as two mcpgate processes have), on one database. Nothing in
// the process can serialise them; only the statements can.

const (
	crossRacers = 16 // half on each store
	crossRounds = 12
)

var tc0 = time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.UTC)

func sum(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// replicas opens two stores on one new database.
func replicas(t *testing.T) [2]*Store {
	dsn := pgtest.Start(t)
	return [2]*Store{open(t, dsn), open(t, dsn)}
}

// crossRace runs fn(i, store) for every racer at once, racer i on store
// i%2, and returns their errors.
func crossRace(stores [2]*Store, fn func(i int, s *Store) error) []error {
	errs := make([]error, crossRacers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range crossRacers {
		wg.Go(func() {
			<-start
			errs[i] = fn(i, stores[i%2])
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// winner checks that exactly one error is nil and every other is one of
// losers, and returns the winner.
func winner(t *testing.T, round int, errs []error, losers ...error) int {
	t.Helper()
	w := -1
	for i, err := range errs {
		if err == nil {
			if w >= 0 {
				t.Fatalf("round %d: racers %d and %d both won (stores %d and %d), want exactly one winner", round, w, i, w%2, i%2)
			}
			w = i
			continue
		}
		if !slicesAny(losers, func(l error) bool { return errors.Is(err, l) }) {
			t.Fatalf("round %d: racer %d: err = %v, want one of %v", round, i, err, losers)
		}
	}
	if w < 0 {
		t.Fatalf("round %d: nobody won: %v", round, errs)
	}
	return w
}

func slicesAny[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}

func grant(id string) *store.Grant {
	return &store.Grant{ID: id, ClientID: "c", User: identity.User{ID: "github:1"}, Scopes: []string{"mcp"}, CreatedAt: tc0}
}

func refresh(name string) *store.RefreshToken {
	return &store.RefreshToken{Hash: sum("refresh-" + name), Generation: 1, Scopes: []string{"mcp"},
		CreatedAt: tc0, ExpiresAt: tc0.Add(24 * time.Hour)}
}

// PKCE-3 across replicas: one exchange of a code wins; every other, on
// either replica, learns it was used.
func TestCrossReplicaConsumeCode(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	for round := range crossRounds {
		h := sum(fmt.Sprint("code-", round))
		must(t, st[round%2].CreateCode(ctx, &store.Code{Hash: h, ClientID: "c", GrantID: fmt.Sprint("g-", round),
			User: identity.User{ID: "github:1"}, ExpiresAt: tc0.Add(time.Minute)}))
		now := tc0.Add(time.Second)
		codes := make([]*store.Code, crossRacers)
		errs := crossRace(st, func(i int, s *Store) error {
			var err error
			codes[i], err = s.ConsumeCode(ctx, h, "", now)
			return err
		})
		winner(t, round, errs, store.ErrCodeReused)
		for i, c := range codes {
			if c == nil || c.GrantID != fmt.Sprint("g-", round) || !c.UsedAt.Equal(now) {
				t.Fatalf("round %d: racer %d got %+v, want the code, used at %v", round, i, c, now)
			}
		}
	}
}

// RT-1 across replicas, no grace: one rotation wins, the others are reuse
// (or find the family revoked by a reuse), and the family is revoked.
func TestCrossReplicaRotateRefresh(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	for round := range crossRounds {
		gid := fmt.Sprint("g-", round)
		first := refresh(gid)
		must(t, st[round%2].CreateGrant(ctx, grant(gid), first))
		now := tc0.Add(time.Second)
		errs := crossRace(st, func(i int, s *Store) error {
			_, _, err := s.RotateRefresh(ctx, first.Hash, refresh(fmt.Sprint(gid, "-", i)), nil, now, 0)
			return err
		})
		w := winner(t, round, errs, store.ErrRefreshReused, store.ErrNotFound)
		if !slicesAny(errs, func(err error) bool { return errors.Is(err, store.ErrRefreshReused) }) {
			t.Fatalf("round %d: no racer saw reuse: %v", round, errs)
		}
		for _, s := range st {
			g, err := s.GetGrant(ctx, gid)
			must(t, err)
			if g.RevokedAt.IsZero() {
				t.Fatalf("round %d: family alive after reuse, want it revoked", round)
			}
		}
		_, _, err := st[(w+1)%2].RotateRefresh(ctx, refresh(fmt.Sprint(gid, "-", w)).Hash, refresh(gid+"-after"), nil, now, 0)
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("round %d: the winner's token after reuse: %v, want ErrNotFound", round, err)
		}
	}
}

// RT-1 across replicas within the grace window: one client's duplicate
// refreshes reach both replicas. One rotates; all others get its
// successor, byte for byte; the family lives and exactly one next token
// exists.
func TestCrossReplicaRotateRefreshGrace(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	for round := range crossRounds {
		gid := fmt.Sprint("g-", round)
		first := refresh(gid)
		must(t, st[round%2].CreateGrant(ctx, grant(gid), first))
		now := tc0.Add(time.Second)
		olds := make([]*store.RefreshToken, crossRacers)
		errs := crossRace(st, func(i int, s *Store) error {
			var err error
			_, olds[i], err = s.RotateRefresh(ctx, first.Hash, refresh(fmt.Sprint(gid, "-", i)),
				[]byte(fmt.Sprint("sealed ", i)), now, 30*time.Second)
			return err
		})
		w := winner(t, round, errs, store.ErrRefreshRotated)
		for i, old := range olds {
			if old == nil || string(old.Successor) != fmt.Sprint("sealed ", w) {
				t.Fatalf("round %d: racer %d got old token %+v, want the winner's successor %q", round, i, old, fmt.Sprint("sealed ", w))
			}
		}
		for i := range crossRacers {
			_, _, err := st[i%2].GetRefresh(ctx, refresh(fmt.Sprint(gid, "-", i)).Hash, now)
			if (i == w) != (err == nil) {
				t.Fatalf("round %d: next token of racer %d (winner %d): %v", round, i, w, err)
			}
		}
		g, err := st[0].GetGrant(ctx, gid)
		must(t, err)
		if !g.RevokedAt.IsZero() {
			t.Fatalf("round %d: family revoked by duplicates within the grace window", round)
		}
	}
}

// DEP-6 across replicas: one callback takes the request.
func TestCrossReplicaTakeAuthRequest(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	for round := range crossRounds {
		id := fmt.Sprint("r-", round)
		state := sum("state-" + id)
		must(t, st[0].CreateAuthRequest(ctx, &store.AuthRequest{ID: id, ClientID: "c", CreatedAt: tc0, ExpiresAt: tc0.Add(time.Minute)}))
		must(t, st[1].AttachUpstreamState(ctx, id, "github", state, tc0))
		errs := crossRace(st, func(i int, s *Store) error {
			_, err := s.TakeAuthRequestByUpstreamState(ctx, state, tc0)
			return err
		})
		winner(t, round, errs, store.ErrNotFound)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// SEC-155 across replicas: a grant whose redemption commits while
// DeleteClient runs, invisible to its snapshot, is revoked all the same:
// DeleteClient waits on the grant's row and revokes it once it commits,
// and names it among the grants revoked, for the deny lists. The grant's
// insert is held open in a transaction of its own, as a CreateGrant on
// another replica would be in the instant before its commit.
func TestCrossReplicaDeleteClientDuringRedemption(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	must(t, st[0].CreateClient(ctx, &store.Client{ID: "c", Name: "c", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: tc0}))
	code := &store.Code{Hash: sum("spent"), ClientID: "c", GrantID: "g-late", User: identity.User{ID: "github:1"}, ExpiresAt: tc0.Add(time.Minute)}
	must(t, st[0].CreateCode(ctx, code))
	if _, err := st[0].ConsumeCode(ctx, code.Hash, "", tc0); err != nil {
		t.Fatal(err)
	}
	tx, err := st[0].pool.Begin(ctx)
	must(t, err)
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `INSERT INTO grants (`+grantCols+`) VALUES ('g-late', 'c', '{"sub":"github:1"}', '', '[]', $1, 0)`, nanos(tc0)); err != nil {
		t.Fatal(err)
	}
	type result struct {
		ids []string
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := st[1].DeleteClient(ctx, "c", tc0.Add(time.Minute))
		done <- result{ids, err}
	}()
	waitsOnALock(t, st[0], "DeleteClient, on the grant being stored")
	must(t, tx.Commit(ctx))
	r := <-done
	must(t, r.err)
	if !slicesAny(r.ids, func(id string) bool { return id == "g-late" }) {
		t.Errorf("DeleteClient revoked %q, want g-late among them", r.ids)
	}
	if g, err := st[0].GetGrant(ctx, "g-late"); err != nil || g.RevokedAt.IsZero() {
		t.Errorf("the grant stored during DeleteClient: %+v, %v; want it revoked", g, err)
	}
}

// waitsOnALock waits until a statement waits on a lock, or fails naming
// who.
func waitsOnALock(t *testing.T, s *Store, who string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var waiting bool
		must(t, s.pool.QueryRow(t.Context(), `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted)`).Scan(&waiting))
		if waiting {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no wait on a lock", who)
		}
	}
}

// SEC-155 across replicas: a code that another replica spends while
// DeleteConsent or DeleteClient runs, unused in the statement's snapshot,
// is waited for and read as spent: its grant is stored revoked, and the
// redemption's CreateGrant conflicts. The spending is held open in a
// transaction of its own, as a ConsumeCode in the instant before its
// commit. Fails before this change: the statement saw the code unused,
// skipped it once spent, and the redemption stored a live grant.
func TestCrossReplicaForgetDuringConsumeCode(t *testing.T) {
	for _, forget := range []struct {
		name string
		run  func(s *Store) error
	}{
		{"DeleteConsent", func(s *Store) error { return s.DeleteConsent(t.Context(), "github:1", "c") }},
		{"DeleteClient", func(s *Store) error { _, err := s.DeleteClient(t.Context(), "c", tc0.Add(time.Minute)); return err }},
	} {
		t.Run(forget.name, func(t *testing.T) {
			st := replicas(t)
			ctx := t.Context()
			must(t, st[0].CreateClient(ctx, &store.Client{ID: "c", Name: "c", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: tc0}))
			code := &store.Code{Hash: sum("spending"), ClientID: "c", GrantID: "g-spending", User: identity.User{ID: "github:1"},
				Scopes: []string{"mcp"}, ExpiresAt: tc0.Add(time.Minute)}
			must(t, st[0].CreateCode(ctx, code))
			tx, err := st[0].pool.Begin(ctx)
			must(t, err)
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `UPDATE codes SET used_at = $1 WHERE hash = $2`, nanos(tc0), code.Hash); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- forget.run(st[1]) }()
			waitsOnALock(t, st[0], forget.name+", on the code being spent")
			must(t, tx.Commit(ctx))
			must(t, <-done)
			g := grant("g-spending")
			g.ClientID = "c"
			if err := st[0].CreateGrant(ctx, g, nil); !errors.Is(err, store.ErrConflict) {
				t.Errorf("the redemption's grant after %s: %v, want ErrConflict (its grant stored revoked)", forget.name, err)
			}
		})
	}
}

// SEC-195: a replica lost between its Ping's write and its commit (its
// host gone, so the server keeps the transaction open for hours) does
// not hold up another replica's Ping: each writes a row of its own. Fails
// before: every replica wrote row 1, and the healthy one's Ping waited
// on the lost one's lock until its deadline, unready.
func TestSEC195_StuckPingHoldsUpNoOtherReplica(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	tx, err := st[0].pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, sqlPingWrite, st[0].pingID, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := st[1].Ping(pctx); err != nil {
		t.Errorf("a healthy replica's Ping while another's is stuck in its transaction: %v, want it answered", err)
	}
}

// SEC-199: a replica lost in the middle of its migrations (its host gone,
// its transaction open on the server, the migration lock held) holds up
// another replica's start only until the server ends the idle
// transaction. Fails before: the second Open waited on the lock until its
// deadline.
func TestSEC199_LostMigrationHoldsUpNoStartForLong(t *testing.T) {
	defer func(d time.Duration) { migrationIdle = d }(migrationIdle)
	migrationIdle = time.Second
	dsn := pgtest.Start(t)
	lost := open(t, dsn)
	ctx := t.Context()
	tx, err := lost.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := lockForMigration(ctx, tx); err != nil {
		t.Fatal(err)
	}
	// The lost replica sends nothing more.
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	s, err := Open(octx, dsn)
	if err != nil {
		t.Fatalf("a replica starting while another's migration is lost: %v, want it started once the server ends the idle transaction", err)
	}
	s.Close()
}
