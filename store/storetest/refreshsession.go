package storetest

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// RunRefreshSession checks store.RefreshSessionGetter, for the stores that
// implement it: GetRefreshSession answers as GetRefresh and
// GetUpstreamSession together (RT-3).
func RunRefreshSession(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Run("RT-3_GetRefreshSession", func(t *testing.T) {
		s := newStore(t)
		rs, ok := s.(store.RefreshSessionGetter)
		if !ok {
			t.Fatalf("%T does not implement store.RefreshSessionGetter", s)
		}
		testGetRefreshSession(t, s, rs)
	})
}

func testGetRefreshSession(t *testing.T, s store.Store, rs store.RefreshSessionGetter) {
	ctx := t.Context()
	_, _, _, err := rs.GetRefreshSession(ctx, hash("refresh-unknown"), t0)
	wantErr(t, "unknown", err, store.ErrNotFound)

	must(t, "create g1", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	tok, g, sess, err := rs.GetRefreshSession(ctx, hash("refresh-r1"), t0)
	must(t, "get without a session", err)
	same(t, "token", tok, newRefresh("r1", "g1"))
	same(t, "grant", g, newGrant("g1"))
	if sess != nil {
		t.Errorf("a grant without an upstream session: got %+v, want nil", sess)
	}

	must(t, "put session", s.PutUpstreamSession(ctx, newUpstreamSession("g1")))
	tok, g, sess, err = rs.GetRefreshSession(ctx, hash("refresh-r1"), t0)
	must(t, "get with a session", err)
	same(t, "token", tok, newRefresh("r1", "g1"))
	same(t, "grant", g, newGrant("g1"))
	same(t, "session", sess, newUpstreamSession("g1"))
	sess.Token[0] = 'X'
	sess.User.Groups[0] = "changed"
	_, _, again, err := rs.GetRefreshSession(ctx, hash("refresh-r1"), t0)
	must(t, "get again", err)
	same(t, "session after mutating a returned one", again, newUpstreamSession("g1"))

	exp := newRefresh("r1", "g1").ExpiresAt
	_, _, _, err = rs.GetRefreshSession(ctx, hash("refresh-r1"), exp)
	wantErr(t, "at expiry", err, store.ErrNotFound)

	// Rotated and revoked: as they are, with the session.
	at1 := t0.Add(time.Minute)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), []byte{9}, at1, 0)
	must(t, "rotate", err)
	must(t, "revoke", s.RevokeGrant(ctx, "g1", at1))
	tok, g, sess, err = rs.GetRefreshSession(ctx, hash("refresh-r1"), at1)
	must(t, "get rotated and revoked", err)
	if !tok.RotatedAt.Equal(at1) || !g.RevokedAt.Equal(at1) {
		t.Errorf("rotated at %v, revoked at %v; want both %v", tok.RotatedAt, g.RevokedAt, at1)
	}
	same(t, "session of a revoked grant", sess, newUpstreamSession("g1"))
}
