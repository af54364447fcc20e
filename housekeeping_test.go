package mcpgate_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// countingExpiry records the DeleteExpired calls a store gets.
type countingExpiry struct {
	store.Store
	mu    sync.Mutex
	calls []expiryCall
}

type expiryCall struct {
	now, grantsBefore time.Time
	limit, deleted    int
}

func (s *countingExpiry) DeleteExpired(ctx context.Context, now, grantsBefore time.Time, limit int) (int, error) {
	n, err := s.Store.DeleteExpired(ctx, now, grantsBefore, limit)
	s.mu.Lock()
	s.calls = append(s.calls, expiryCall{now, grantsBefore, limit, n})
	s.mu.Unlock()
	return n, err
}

// Housekeeping deletes a backlog in bounded batches until one comes back
// short, never in one write, and keeps a grant until its last access token
// has expired: grants go an access-token lifetime after they were created
// (or revoked), and not at all when refresh tokens could expire before
// the access tokens they came with.
func TestHousekeepingBatches(t *testing.T) {
	for _, tc := range []struct {
		name       string
		refreshTTL time.Duration
		grants     bool
	}{{"default lifetimes", 0, true}, {"refresh tokens shorter than access tokens", 10 * time.Minute, false}} {
		t.Run(tc.name, func(t *testing.T) {
			var st *countingExpiry
			g := newGateway(t, func(c *mcpgate.Config) {
				st = &countingExpiry{Store: c.Store}
				c.Store = st
				c.AccessTokenTTL = time.Hour
				c.RefreshTokenTTL = tc.refreshTTL
			})
			ctx := context.Background()
			now := g.clock.Now()
			const backlog = 1234
			for i := range backlog {
				if err := st.CreateSession(ctx, &store.Session{Hash: []byte(fmt.Sprint("s", i)), User: identity.User{ID: "local:alice"},
					CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
					t.Fatal(err)
				}
			}
			g.clock.Advance(2 * time.Minute)
			if err := g.gw.Housekeeping(ctx); err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			total := 0
			for i, c := range st.calls {
				total += c.deleted
				if c.limit <= 0 || c.limit > 1000 || (i < len(st.calls)-1 && c.deleted != c.limit) {
					t.Errorf("call %d: limit %d, deleted %d; want full batches of at most 1000 until the last", i, c.limit, c.deleted)
				}
				if want := g.clock.Now().Add(-time.Minute); !c.now.Equal(want) {
					t.Errorf("call %d: records expired before %v, want a minute ago, %v", i, c.now, want)
				}
				wantBefore := time.Time{}
				if tc.grants {
					// The longest an access token lives, not the hour
					// set: one minted under a longer setting stays
					// refused while its grant is kept (SEC-169).
					wantBefore = g.clock.Now().Add(-tokens.MaxLifetime - time.Minute) // SEC-169: a minute for clocks apart
				}
				if !c.grantsBefore.Equal(wantBefore) {
					t.Errorf("call %d: grants before %v, want %v", i, c.grantsBefore, wantBefore)
				}
			}
			if len(st.calls) < 2 || total != backlog || st.calls[len(st.calls)-1].deleted >= st.calls[0].limit {
				t.Errorf("%d calls deleted %d of a backlog of %d, want several batches, the last one short", len(st.calls), total, backlog)
			}
		})
	}
}

// A code and its upstream session stay a minute past the code's expiry:
// a code spent in the last instant of its life has its grant stored just
// after, and housekeeping in between must not delete the upstream
// session, which only the code holds until then (the grant would end at
// its first recheck). Fails before this change: the code went at its
// expiry, and the session with it.
func TestHousekeepingKeepsAJustExpiredCodesUpstreamSession(t *testing.T) {
	g := newGateway(t)
	ctx := context.Background()
	now := g.clock.Now()
	code := &store.Code{Hash: []byte("code-at-its-end"), ClientID: "c", User: identity.User{ID: "local:alice"}, GrantID: "g-late", ExpiresAt: now.Add(time.Minute)}
	if err := g.store.CreateCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	if err := g.store.PutUpstreamSession(ctx, &store.UpstreamSession{GrantID: "g-late", Connector: "oidc", User: code.User, CheckedAt: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.store.ConsumeCode(ctx, code.Hash, "", now.Add(time.Minute-time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(time.Minute + time.Second) // the code just expired, its grant not stored yet
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.store.GetUpstreamSession(ctx, "g-late"); err != nil {
		t.Errorf("the upstream session of a code spent at its end, a second after: %v, want it kept", err)
	}
	g.clock.Advance(2 * time.Minute)
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := g.store.GetUpstreamSession(ctx, "g-late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the upstream session of a code gone unredeemed, minutes after: %v, want it deleted", err)
	}
}

// SEC-181: housekeeping deletes a rotated refresh token's successor (the
// sealed pair its rotation answered, about a kilobyte) once the grace
// window and a minute's margin are over, and not before: a retry inside
// the window still gets the same pair after housekeeping has run, and the
// token stays rotated, so that it coming back later still ends the family
// (RT-1). Fails before this change: the successor stayed until the token
// expired, 30 days by default.
func TestSEC181_HousekeepingDeletesSuccessorsAfterGrace(t *testing.T) {
	g := newGateway(t) // grace 30 s
	ctx := context.Background()
	c, _, tok := g.fullFlow()
	resp, first := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh: %d, want 200", resp.StatusCode)
	}
	successor := func() []byte {
		t.Helper()
		rt, _, err := g.store.GetRefresh(ctx, tokens.Hash(tok.RefreshToken), g.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rt.Successor
	}
	g.clock.Advance(29 * time.Second)
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, again := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 || again.RefreshToken != first.RefreshToken {
		t.Fatalf("RT-1: a retry inside the window after housekeeping: %d %+v, want 200 with the first pair", resp.StatusCode, again)
	}
	g.clock.Advance(time.Minute) // past the window, within the margin
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if len(successor()) == 0 {
		t.Fatal("the successor went within the minute's margin past the window, want it kept until then")
	}
	g.clock.Advance(2 * time.Second)
	if err := g.gw.Housekeeping(ctx); err != nil {
		t.Fatal(err)
	}
	if s := successor(); len(s) != 0 {
		t.Fatalf("SEC-181: the successor is still stored (%d bytes) past the window and its margin, want it deleted", len(s))
	}
	if resp, again := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("RT-1: the rotated token back after its successor went: %d %+v, want 400 invalid_grant", resp.StatusCode, again)
	}
	if resp, _ := g.refresh(c.ClientID, first.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("RT-1: the family survived the reuse of a token whose successor went: %d, want 400", resp.StatusCode)
	}
}
