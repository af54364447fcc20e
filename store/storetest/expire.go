package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// Housekeeping deletes in batches of at most its limit, each a short
// write, and altogether exactly the records nothing needs any more: of
// every kind the expired ones, grants left without a refresh token once
// their access tokens have expired, and the upstream sessions they leave
// behind; the live ones of each kind stay.
func testDeleteExpiredBatches(t *testing.T, s store.Store) {
	ctx := t.Context()
	cut := t0.Add(2 * time.Hour)        // the housekeeping run
	grantsBefore := cut.Add(-time.Hour) // cut minus the access-token lifetime
	early := t0.Add(-time.Hour)         // before anything below expires
	const many = 23                     // of each kind, several batches' worth
	dead := 0                           // what the run must delete
	name := func(kind string, i int) string { return fmt.Sprintf("%s-%d", kind, i) }
	for i := range many {
		req := newAuthRequest(name("req", i))
		req.ExpiresAt = t0
		must(t, "create request", s.CreateAuthRequest(ctx, req))
		c := newCode(name("code", i)) // expires at t0 + 1 min
		must(t, "create code", s.CreateCode(ctx, c))
		must(t, "create session", s.CreateSession(ctx, &store.Session{Hash: hash(name("s", i)), User: user("1"), CreatedAt: early, ExpiresAt: t0}))
		// A grant whose only refresh token expired: token, grant and its
		// upstream session go.
		rt := newRefresh(name("expired", i), name("ended", i))
		rt.ExpiresAt = t0.Add(time.Minute)
		must(t, "create ended grant", s.CreateGrant(ctx, newGrant(name("ended", i)), rt))
		must(t, "put upstream", s.PutUpstreamSession(ctx, newUpstreamSession(name("ended", i))))
		// A grant revoked long enough ago: its live token and itself go.
		must(t, "create revoked grant", s.CreateGrant(ctx, newGrant(name("revoked", i)), newRefresh(name("revoked", i), name("revoked", i))))
		must(t, "revoke", s.RevokeGrant(ctx, name("revoked", i), t0))
		// A grant that never had a refresh token.
		must(t, "create grant without refresh", s.CreateGrant(ctx, newGrant(name("norefresh", i)), nil))
		// An upstream session of a code that expired unredeemed.
		must(t, "put orphan upstream", s.PutUpstreamSession(ctx, newUpstreamSession("grant-"+name("code", i))))
		// A rate counter of a window that has ended.
		if _, err := s.AddRateHit(ctx, name("addr", i), t0, t0.Add(time.Minute)); err != nil {
			t.Fatalf("add rate hit: %v", err)
		}
		dead += 1 + 1 + 1 + 3 + 2 + 1 + 1 + 1
	}

	// What stays: one live record of each kind, and grants that are dead
	// but may still have unexpired access tokens.
	liveReq := newAuthRequest("live")
	liveReq.ExpiresAt = cut.Add(time.Minute)
	must(t, "create live request", s.CreateAuthRequest(ctx, liveReq))
	liveCode := newCode("live")
	liveCode.ExpiresAt = cut.Add(time.Minute)
	must(t, "create live code", s.CreateCode(ctx, liveCode))
	must(t, "put pending upstream", s.PutUpstreamSession(ctx, newUpstreamSession("grant-live")))
	must(t, "create live session", s.CreateSession(ctx, &store.Session{Hash: hash("s-live"), User: user("1"), CreatedAt: early, ExpiresAt: cut.Add(time.Minute)}))
	must(t, "create live grant", s.CreateGrant(ctx, newGrant("live"), newRefresh("live", "live")))
	must(t, "put live upstream", s.PutUpstreamSession(ctx, newUpstreamSession("live")))
	forever := newRefresh("forever", "forever")
	forever.ExpiresAt = time.Time{}
	must(t, "create grant whose token never expires", s.CreateGrant(ctx, newGrant("forever"), forever))
	recent := newGrant("recently-revoked")
	must(t, "create recently revoked grant", s.CreateGrant(ctx, recent, newRefresh("recently-revoked", "recently-revoked")))
	must(t, "revoke recently", s.RevokeGrant(ctx, "recently-revoked", grantsBefore.Add(time.Minute)))
	dead++ // its refresh token goes, the grant stays
	young := newGrant("young")
	young.CreatedAt = grantsBefore.Add(time.Minute)
	must(t, "create young grant without refresh", s.CreateGrant(ctx, young, nil))

	if _, err := s.AddRateHit(ctx, "addr-live", cut, cut.Add(time.Minute)); err != nil {
		t.Fatalf("add live rate hit: %v", err)
	}

	const limit = 7
	batches, total := 0, 0
	for {
		n, err := s.DeleteExpired(ctx, cut, grantsBefore, limit)
		must(t, "delete expired", err)
		if n < 0 || n > limit {
			t.Fatalf("batch %d deleted %d, want at most %d", batches, n, limit)
		}
		batches++
		total += n
		if n < limit {
			break
		}
		if batches > 10*dead {
			t.Fatalf("%d batches and still deleting", batches)
		}
	}
	if total != dead {
		t.Errorf("deleted %d records, want %d", total, dead)
	}
	if want := dead/limit + 1; batches != want {
		t.Errorf("%d batches, want %d of at most %d", batches, want, limit)
	}
	if n, err := s.DeleteExpired(ctx, cut, grantsBefore, limit); err != nil || n != 0 {
		t.Errorf("another run deleted %d (%v), want nothing left", n, err)
	}

	// Looking with a time before expiry tells a deleted record from one
	// that is only expired.
	for i := range many {
		_, err := s.GetAuthRequest(ctx, name("req", i), early)
		wantErr(t, "expired request", err, store.ErrNotFound)
		_, err = s.ConsumeCode(ctx, hash("code-"+name("code", i)), challenge, early)
		wantErr(t, "expired code", err, store.ErrNotFound)
		_, err = s.GetSession(ctx, hash(name("s", i)), early)
		wantErr(t, "expired session", err, store.ErrNotFound)
		_, _, err = s.GetRefresh(ctx, hash("refresh-"+name("expired", i)), early)
		wantErr(t, "expired refresh token", err, store.ErrNotFound)
		_, _, err = s.GetRefresh(ctx, hash("refresh-"+name("revoked", i)), early)
		wantErr(t, "refresh token of a revoked grant", err, store.ErrNotFound)
		for _, g := range []string{name("ended", i), name("revoked", i), name("norefresh", i)} {
			_, err = s.GetGrant(ctx, g)
			wantErr(t, "dead grant "+g, err, store.ErrNotFound)
		}
		for _, g := range []string{name("ended", i), "grant-" + name("code", i)} {
			_, err = s.GetUpstreamSession(ctx, g)
			wantErr(t, "upstream session "+g, err, store.ErrNotFound)
		}
	}
	_, err := s.GetAuthRequest(ctx, "live", early)
	must(t, "live request", err)
	_, err = s.GetSession(ctx, hash("s-live"), early)
	must(t, "live session", err)
	for _, g := range []string{"live", "forever", "recently-revoked", "young"} {
		_, err = s.GetGrant(ctx, g)
		must(t, "kept grant "+g, err)
	}
	for _, h := range []string{"live", "forever"} {
		_, _, err = s.GetRefresh(ctx, hash("refresh-"+h), early)
		must(t, "live refresh token "+h, err)
	}
	_, _, err = s.GetRefresh(ctx, hash("refresh-recently-revoked"), early)
	wantErr(t, "refresh token of a recently revoked grant", err, store.ErrNotFound)
	for _, g := range []string{"live", "grant-live"} {
		_, err = s.GetUpstreamSession(ctx, g)
		must(t, "kept upstream session "+g, err)
	}
	_, err = s.ConsumeCode(ctx, hash("code-live"), challenge, early)
	must(t, "live code", err)

	for i := range 2 {
		// An expired window's count started again; the live one went on.
		if n, err := s.AddRateHit(ctx, name("addr", i), t0, t0.Add(time.Minute)); err != nil || n != 1 {
			t.Errorf("expired window's counter after housekeeping: %d, %v; want 1", n, err)
		}
	}
	if n, err := s.AddRateHit(ctx, "addr-live", cut, cut.Add(time.Minute)); err != nil || n != 2 {
		t.Errorf("live window's counter after housekeeping: %d, %v; want 2", n, err)
	}

	// A limit that is not positive is refused, never taken as "no limit".
	if _, err := s.DeleteExpired(ctx, cut, grantsBefore, 0); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteExpired with limit 0: %v, want an error", err)
	}
}
