package storetest

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

func newUpstreamSession(grantID string) *store.UpstreamSession {
	return &store.UpstreamSession{
		GrantID:   grantID,
		Connector: "oidc",
		User:      user(grantID),
		Token:     []byte("sealed-" + grantID),
		CheckedAt: t0,
	}
}

// RT-3: a grant's upstream session round-trips, is replaced whole, and
// what a caller does to a value it passed or got never reaches the store.
func testUpstreamSession(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, err := s.GetUpstreamSession(ctx, "g1")
	wantErr(t, "none yet", err, store.ErrNotFound)

	// Stored before its grant exists: at code issue.
	u := newUpstreamSession("g1")
	must(t, "put", s.PutUpstreamSession(ctx, u))
	u.Token[0] = 'X'
	u.User.Groups[0] = "changed"
	got, err := s.GetUpstreamSession(ctx, "g1")
	must(t, "get", err)
	same(t, "round trip", got, newUpstreamSession("g1"))
	got.Token[0] = 'X'
	got.User.Groups[0] = "changed"
	got, err = s.GetUpstreamSession(ctx, "g1")
	must(t, "get again", err)
	same(t, "after mutating a returned session", got, newUpstreamSession("g1"))

	// A recheck replaces token, user and time.
	next := newUpstreamSession("g1")
	next.Token = []byte("sealed-next")
	next.User.Groups = []string{"staff"}
	next.CheckedAt = t0.Add(time.Hour)
	must(t, "replace", s.PutUpstreamSession(ctx, next))
	got, err = s.GetUpstreamSession(ctx, "g1")
	must(t, "get replaced", err)
	same(t, "replaced", got, next)

	_, err = s.GetUpstreamSession(ctx, "g2")
	wantErr(t, "another grant", err, store.ErrNotFound)
}

// RT-3: of processes that read one upstream session, one claims its
// recheck; the claim holds until it lapses or the session is renewed
// (PutUpstreamSession), and never takes a session changed since it was
// read. A grant without a session is ErrNotFound.
func testClaimUpstreamRecheck(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.Add(2 * time.Hour)
	_, err := s.ClaimUpstreamRecheck(ctx, "g1", t0, now, now.Add(time.Minute))
	wantErr(t, "no session", err, store.ErrNotFound)
	must(t, "put", s.PutUpstreamSession(ctx, newUpstreamSession("g1")))
	claim := func(what string, checkedAt, at time.Time, want bool) {
		t.Helper()
		if ok, err := s.ClaimUpstreamRecheck(ctx, "g1", checkedAt, at, at.Add(time.Minute)); err != nil || ok != want {
			t.Fatalf("%s: %v %v, want %v", what, ok, err, want)
		}
	}
	claim("the first claim", t0, now, true)
	claim("a second claim while the first holds", t0, now.Add(30*time.Second), false)
	got, err := s.GetUpstreamSession(ctx, "g1")
	must(t, "get", err)
	same(t, "a claim changes nothing a reader sees", got, newUpstreamSession("g1"))
	claim("a claim once the first lapsed", t0, now.Add(time.Minute), true)
	renewed := newUpstreamSession("g1")
	renewed.CheckedAt = now.Add(time.Minute)
	must(t, "renew", s.PutUpstreamSession(ctx, renewed))
	claim("a claim from the session as it was before its renewal", t0, now.Add(90*time.Second), false)
	claim("a claim of the renewed session (the renewal ended the last)", renewed.CheckedAt, now.Add(90*time.Second), true)
}

// RT-3: housekeeping drops the upstream sessions of revoked grants and of
// codes that expired unredeemed, and keeps those of live grants and of
// codes still pending.
func testDeleteExpiredUpstreamSessions(t *testing.T, s store.Store) {
	ctx := t.Context()
	cut := t0.Add(time.Hour)
	must(t, "create live grant", s.CreateGrant(ctx, newGrant("live"), newRefresh("live", "live")))
	must(t, "create revoked grant", s.CreateGrant(ctx, newGrant("revoked"), newRefresh("revoked", "revoked")))
	must(t, "revoke", s.RevokeGrant(ctx, "revoked", t0))
	pending := newCode("pending") // GrantID grant-pending
	pending.ExpiresAt = cut.Add(time.Minute)
	must(t, "create pending code", s.CreateCode(ctx, pending))
	must(t, "create expired code", s.CreateCode(ctx, newCode("expired"))) // expires before cut
	for _, id := range []string{"live", "revoked", "grant-pending", "grant-expired", "orphan"} {
		must(t, "put "+id, s.PutUpstreamSession(ctx, newUpstreamSession(id)))
	}
	expireAll(t, s, cut, time.Time{})
	for id, kept := range map[string]bool{"live": true, "grant-pending": true, "revoked": false, "grant-expired": false, "orphan": false} {
		_, err := s.GetUpstreamSession(ctx, id)
		if kept {
			must(t, "kept "+id, err)
		} else {
			wantErr(t, "deleted "+id, err, store.ErrNotFound)
		}
	}
}

// SEC-69: an upstream session serves only a grant's refreshes, so it is
// kept no longer than the grant can refresh: housekeeping drops it when
// the grant has no refresh token left (none issued, or every one expired),
// rather than keep the provider's token, sealed but valid there, forever.
func testDeleteUpstreamSessionsWithoutRefresh(t *testing.T, s store.Store) {
	ctx := t.Context()
	cut := t0.Add(time.Hour)
	must(t, "create live grant", s.CreateGrant(ctx, newGrant("live"), newRefresh("live", "live")))
	must(t, "create grant without refresh", s.CreateGrant(ctx, newGrant("norefresh"), nil))
	ended := newRefresh("ended", "ended")
	ended.ExpiresAt = cut.Add(-time.Minute)
	must(t, "create grant whose refresh expired", s.CreateGrant(ctx, newGrant("ended"), ended))
	for _, id := range []string{"live", "norefresh", "ended"} {
		must(t, "put "+id, s.PutUpstreamSession(ctx, newUpstreamSession(id)))
	}
	expireAll(t, s, cut, time.Time{})
	for _, tc := range []struct {
		id   string
		kept bool
	}{{"live", true}, {"ended", false}, {"norefresh", false}} {
		_, err := s.GetUpstreamSession(ctx, tc.id)
		if tc.kept {
			must(t, "kept "+tc.id, err)
		} else {
			wantErr(t, "deleted "+tc.id, err, store.ErrNotFound)
		}
	}
}
