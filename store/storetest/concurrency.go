package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

const (
	racers = 16 // goroutines per race
	rounds = 8  // races per test, each on a fresh record
)

// RunConcurrency races the single-use verbs: in every round racers
// goroutines call the same verb on the same record at once, and exactly one
// of them may succeed. newStore is called once per subtest, as in Run.
func RunConcurrency(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("PKCE-3_ConsumeCode", func(t *testing.T) { raceConsumeCode(t, newStore(t)) })
	t.Run("RT-1_RotateRefresh", func(t *testing.T) { raceRotateRefresh(t, newStore(t)) })
	t.Run("RT-1_RotateRefreshWithinGrace", func(t *testing.T) { raceRotateRefreshGrace(t, newStore(t)) })
	t.Run("DEP-6_TakeAuthRequest", func(t *testing.T) { raceTakeAuthRequest(t, newStore(t)) })
	t.Run("DEP-6_AttachUpstreamState", func(t *testing.T) { raceAttachUpstreamState(t, newStore(t)) })
	t.Run("SEC-1_ReplaceUpstreamState", func(t *testing.T) { raceReplaceUpstreamState(t, newStore(t)) })
	t.Run("DeleteAuthRequest", func(t *testing.T) { raceDeleteAuthRequest(t, newStore(t)) })
	t.Run("AddRateHit", func(t *testing.T) { raceAddRateHit(t, newStore(t)) })
	t.Run("SEC-93_DisableWhileGranting", func(t *testing.T) { raceDisableWhileGranting(t, newStore(t)) })
	t.Run("SEC-152_CreateLocalUser", func(t *testing.T) { raceCreateLocalUser(t, newStore(t)) })
	t.Run("MixedLoad", func(t *testing.T) { mixedLoad(t, newStore(t)) })
}

// race runs fn(i) for i in [0, racers) in as many goroutines, released at
// once, and returns their errors.
func race(fn func(i int) error) []error {
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = fn(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// oneWinner checks that exactly one error is nil and every other matches one
// of losers; it returns the winner's index.
func oneWinner(t *testing.T, round int, errs []error, losers ...error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("round %d: racers %d and %d both won, want exactly one winner", round, winner, i)
			}
			winner = i
			continue
		}
		ok := false
		for _, l := range losers {
			ok = ok || errors.Is(err, l)
		}
		if !ok {
			t.Fatalf("round %d: racer %d: err = %v, want one of %v", round, i, err, losers)
		}
	}
	if winner < 0 {
		t.Fatalf("round %d: nobody won, want exactly one winner: %v", round, errs)
	}
	return winner
}

// PKCE-3: of racing exchanges of one code, one gets it; the others learn it
// was reused and which grant it made.
func raceConsumeCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		c := newCode(fmt.Sprint("race-", round))
		must(t, "create code", s.CreateCode(ctx, c))
		now := t0.Add(time.Second)
		codes := make([]*store.Code, racers)
		errs := race(func(i int) error {
			var err error
			codes[i], err = s.ConsumeCode(ctx, c.Hash, challenge, now)
			return err
		})
		w := oneWinner(t, round, errs, store.ErrCodeReused)
		for i, got := range codes {
			if got == nil || got.GrantID != c.GrantID {
				t.Fatalf("round %d: racer %d (winner %v) got code %+v, want the code of grant %s", round, i, i == w, got, c.GrantID)
			}
			sameTime(t, "UsedAt", got.UsedAt, now)
		}
	}
}

// RT-1: of racing rotations of one refresh token, one gets a new token; the
// others are reuse, which revokes the family, and the winner's new token
// dies with it.
func raceRotateRefresh(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		gid := fmt.Sprint("g-", round)
		first := newRefresh(fmt.Sprint("race-", round), gid)
		must(t, "create grant", s.CreateGrant(ctx, newGrant(gid), first))
		now := t0.Add(time.Second)
		nexts := make([]*store.RefreshToken, racers)
		for i := range nexts {
			nexts[i] = newRefresh(fmt.Sprint("race-", round, "-", i), "")
		}
		errs := race(func(i int) error {
			_, _, err := s.RotateRefresh(ctx, first.Hash, nexts[i], nil, now, 0)
			return err
		})
		// The first loser to run sees a rotated token (reuse); later ones
		// may find the grant revoked already (not found).
		w := oneWinner(t, round, errs, store.ErrRefreshReused, store.ErrNotFound)
		reused := 0
		for _, err := range errs {
			if errors.Is(err, store.ErrRefreshReused) {
				reused++
			}
		}
		if reused == 0 {
			t.Fatalf("round %d: %d losers and no reuse reported, want at least one ErrRefreshReused: %v", round, racers-1, errs)
		}
		g, err := s.GetGrant(ctx, gid)
		must(t, "get grant", err)
		if g.RevokedAt.IsZero() {
			t.Fatalf("round %d: grant not revoked after reuse, want the family revoked", round)
		}
		_, _, err = s.RotateRefresh(ctx, nexts[w].Hash, newRefresh(fmt.Sprint("after-", round), ""), nil, now, 0)
		wantErr(t, "winner's token after reuse", err, store.ErrNotFound)
	}
}

// RT-1 with a grace window: racing rotations of one token are one client
// sending it twice. One rotates; every other gets ErrRefreshRotated and the
// winner's successor, byte for byte, so that all answer with the same
// pair; the family lives on.
func raceRotateRefreshGrace(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		gid := fmt.Sprint("g-", round)
		first := newRefresh(fmt.Sprint("race-", round), gid)
		must(t, "create grant", s.CreateGrant(ctx, newGrant(gid), first))
		now := t0.Add(time.Second)
		nexts := make([]*store.RefreshToken, racers)
		successors := make([][]byte, racers)
		for i := range nexts {
			nexts[i] = newRefresh(fmt.Sprint("race-", round, "-", i), "")
			successors[i] = []byte(fmt.Sprintf("sealed response %d/%d\x00\xff", round, i))
		}
		olds := make([]*store.RefreshToken, racers)
		grants := make([]*store.Grant, racers)
		errs := race(func(i int) error {
			var err error
			grants[i], olds[i], err = s.RotateRefresh(ctx, first.Hash, nexts[i], successors[i], now, grace)
			return err
		})
		w := oneWinner(t, round, errs, store.ErrRefreshRotated)
		for i := range racers {
			if olds[i] == nil || grants[i] == nil {
				t.Fatalf("round %d: racer %d (winner %v): old token %v, grant %v; want both", round, i, i == w, olds[i], grants[i])
			}
			if !bytes.Equal(olds[i].Successor, successors[w]) {
				t.Fatalf("round %d: racer %d (winner %v) got successor %q, the winner stored %q", round, i, i == w, olds[i].Successor, successors[w])
			}
			sameTime(t, "RotatedAt", olds[i].RotatedAt, now)
			if !grants[i].RevokedAt.IsZero() {
				t.Fatalf("round %d: racer %d: grant revoked, want it alive within the grace window", round, i)
			}
		}
		g, err := s.GetGrant(ctx, gid)
		must(t, "get grant", err)
		if !g.RevokedAt.IsZero() {
			t.Fatalf("round %d: grant revoked by a retry within the grace window", round)
		}
		for i := range racers {
			_, _, err := s.GetRefresh(ctx, nexts[i].Hash, now)
			if i == w {
				must(t, "the winner's token", err)
			} else {
				wantErr(t, "a loser's token", err, store.ErrNotFound)
			}
		}
		_, _, err = s.RotateRefresh(ctx, nexts[w].Hash, newRefresh(fmt.Sprint("after-", round), ""), nil, now.Add(time.Second), grace)
		must(t, "rotate the winner's token", err)
	}
}

// DEP-6: two callbacks with the same upstream state; one proceeds.
func raceTakeAuthRequest(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		id := fmt.Sprint("r-", round)
		st := hash("st-" + id)
		must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest(id)))
		must(t, "attach", s.AttachUpstreamState(ctx, id, "github", st, t0))
		got := make([]*store.AuthRequest, racers)
		errs := race(func(i int) error {
			var err error
			got[i], err = s.TakeAuthRequestByUpstreamState(ctx, st, t0)
			return err
		})
		w := oneWinner(t, round, errs, store.ErrNotFound)
		if got[w] == nil || got[w].ID != id {
			t.Fatalf("round %d: winner took %+v, want request %s", round, got[w], id)
		}
	}
}

// DEP-6: consent submitted twice at once attaches one upstream state.
func raceAttachUpstreamState(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		id := fmt.Sprint("r-", round)
		must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest(id)))
		errs := race(func(i int) error {
			return s.AttachUpstreamState(ctx, id, fmt.Sprint("conn-", i), hash(fmt.Sprint(id, "-", i)), t0)
		})
		w := oneWinner(t, round, errs, store.ErrConflict)
		got, err := s.GetAuthRequest(ctx, id, t0)
		must(t, "get", err)
		if got.Connector != fmt.Sprint("conn-", w) {
			t.Fatalf("round %d: connector %q, want the winner's, conn-%d", round, got.Connector, w)
		}
		for i := range racers {
			_, err := s.TakeAuthRequestByUpstreamState(ctx, hash(fmt.Sprint(id, "-", i)), t0)
			if i == w {
				must(t, "take by the winner's state", err)
			} else {
				wantErr(t, "take by a loser's state", err, store.ErrNotFound)
			}
		}
	}
}

// SEC-1: consent given again in several places at once: one new state
// replaces the old one; only it can be taken.
func raceReplaceUpstreamState(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		id := fmt.Sprint("r-", round)
		must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest(id)))
		must(t, "attach", s.AttachUpstreamState(ctx, id, "github", hash("old-"+id), t0))
		errs := race(func(i int) error {
			return s.ReplaceUpstreamState(ctx, id, fmt.Sprint("conn-", i), hash("old-"+id), hash(fmt.Sprint(id, "-", i)), t0)
		})
		w := oneWinner(t, round, errs, store.ErrConflict)
		_, err := s.TakeAuthRequestByUpstreamState(ctx, hash("old-"+id), t0)
		wantErr(t, "take by the replaced state", err, store.ErrNotFound)
		for i := range racers {
			got, err := s.TakeAuthRequestByUpstreamState(ctx, hash(fmt.Sprint(id, "-", i)), t0)
			if i != w {
				wantErr(t, "take by a loser's state", err, store.ErrNotFound)
				continue
			}
			must(t, "take by the winner's state", err)
			if got.Connector != fmt.Sprint("conn-", w) {
				t.Fatalf("round %d: connector %q, want the winner's, conn-%d", round, got.Connector, w)
			}
		}
	}
}

func raceDeleteAuthRequest(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range rounds {
		id := fmt.Sprint("r-", round)
		must(t, "create", s.CreateAuthRequest(ctx, newAuthRequest(id)))
		errs := race(func(int) error { return s.DeleteAuthRequest(ctx, id) })
		oneWinner(t, round, errs, store.ErrNotFound)
	}
}

// mixedLoad runs unrelated writes and reads side by side. A backend that
// lets writers collide (SQLITE_BUSY, deadlocks) fails here.
func mixedLoad(t *testing.T, s store.Store) {
	ctx := t.Context()
	const ops = 10
	errs := race(func(i int) error {
		for j := range ops {
			name := fmt.Sprint(i, "-", j)
			steps := []func() error{
				func() error { return s.CreateClient(ctx, newClient("c-"+name)) },
				func() error { _, err := s.GetClient(ctx, "c-"+name); return err },
				func() error { return s.CreateCode(ctx, newCode(name)) },
				func() error { _, err := s.ConsumeCode(ctx, hash("code-"+name), challenge, t0); return err },
				func() error { return s.CreateGrant(ctx, newGrant("g-"+name), newRefresh(name, "g-"+name)) },
				func() error {
					_, _, err := s.RotateRefresh(ctx, hash("refresh-"+name), newRefresh(name+"-2", ""), nil, t0, 0)
					return err
				},
				func() error {
					return s.CreateSession(ctx, &store.Session{Hash: hash("s-" + name), User: user(name), ExpiresAt: t0.Add(time.Hour)})
				},
				func() error { _, err := s.GetSession(ctx, hash("s-"+name), t0); return err },
				func() error {
					return s.PutConsent(ctx, &store.Consent{UserID: user(name).ID, ClientID: "c", Scopes: []string{"mcp:read"}})
				},
				func() error { _, err := s.CountLocalUsers(ctx); return err },
				func() error { _, err := s.DeleteExpired(ctx, t0, t0.Add(-time.Hour), 100); return err },
			}
			for k, step := range steps {
				if err := step(); err != nil {
					return fmt.Errorf("op %s step %d: %w", name, k, err)
				}
			}
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("racer %d: %v, want every operation to succeed", i, err)
		}
	}
}

// SEC-93: an account disabled while a grant of it is being stored (a
// code's redemption that began before) never keeps a live grant: either
// the grant exists when DisableLocalUser revokes the account's grants, or
// CreateGrant refuses it with ErrAccountDisabled. Each of 40 rounds races
// the two, released together.
func raceDisableWhileGranting(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 40 {
		name := fmt.Sprintf("racer%d", round)
		must(t, "put "+name, s.PutLocalUser(ctx, &store.LocalUser{Name: name, PasswordHash: []byte("$2a$10$x"), CreatedAt: t0}))
		g := newGrant("grant-" + name)
		g.User = identity.User{ID: "local:" + name, Upstream: "local", Username: name}
		var createErr, disableErr error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; createErr = s.CreateGrant(ctx, g, newRefresh(name, g.ID)) })
		wg.Go(func() { <-start; _, disableErr = s.DisableLocalUser(ctx, name, t0.Add(time.Minute)) })
		close(start)
		wg.Wait()
		must(t, "disable "+name, disableErr)
		got, err := s.GetGrant(ctx, g.ID)
		switch {
		case createErr == nil && err == nil && got.RevokedAt.IsZero():
			t.Fatalf("round %d: the grant stored while its account was disabled is live: %+v", round, got)
		case createErr != nil && !errors.Is(createErr, store.ErrAccountDisabled):
			t.Fatalf("round %d: CreateGrant: %v, want nil or ErrAccountDisabled", round, createErr)
		}
	}
	// A revoked grant (a replayed code's) is stored all the same, and so
	// is a live grant of an account that is not disabled, or not local.
	ended := newGrant("ended")
	ended.User, ended.RevokedAt = identity.User{ID: "local:racer0"}, t0
	must(t, "a revoked grant of a disabled account", s.CreateGrant(ctx, ended, nil))
	must(t, "put bob", s.PutLocalUser(ctx, &store.LocalUser{Name: "bob", PasswordHash: []byte("$2a$10$x"), CreatedAt: t0}))
	bob := newGrant("bob")
	bob.User = identity.User{ID: "local:bob"}
	must(t, "a grant of an enabled account", s.CreateGrant(ctx, bob, nil))
	must(t, "a grant of another provider's account", s.CreateGrant(ctx, newGrant("other"), nil))
}

// raceCreateLocalUser: of racers creating the same account, one does and
// the others get ErrConflict; the account is the winner's (SEC-152).
func raceCreateLocalUser(t *testing.T, s store.Store) {
	ctx := t.Context()
	for round := range 5 {
		name := fmt.Sprintf("admin%d", round)
		errs := race(func(i int) error {
			return s.CreateLocalUser(ctx, &store.LocalUser{Name: name, PasswordHash: fmt.Appendf(nil, "$2a$10$racer%d", i), CreatedAt: t0})
		})
		winner := oneWinner(t, round, errs, store.ErrConflict)
		got, err := s.GetLocalUser(ctx, name)
		must(t, "get", err)
		if want := fmt.Sprintf("$2a$10$racer%d", winner); string(got.PasswordHash) != want {
			t.Fatalf("round %d: the account holds %q, want the winner's %q", round, got.PasswordHash, want)
		}
	}
}
