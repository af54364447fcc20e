package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// grace is the retry window the tests below rotate with.
const grace = 30 * time.Second

// RT-1, within the grace window: a token rotated moments ago comes back
// (a client retrying, or the same token sent twice at once). Nothing
// changes; the caller gets the old token with the successor its rotation
// stored, byte for byte, so that it can answer with the same pair.
func testRotateRefreshWithinGrace(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))

	// Binary, with NUL bytes: a sealed token response.
	successor := []byte{0, 1, 2, 0xff, 'x', 0}
	at1 := t0.Add(time.Minute)
	next := newRefresh("r2", "")
	next.CreatedAt, next.ExpiresAt = at1, at1.Add(30*24*time.Hour)
	g, old, err := s.RotateRefresh(ctx, hash("refresh-r1"), next, successor, at1, grace)
	must(t, "rotate", err)
	same(t, "grant", g, newGrant("g1"))
	wantOld := newRefresh("r1", "g1")
	wantOld.RotatedAt = at1
	wantOld.Successor = []byte{0, 1, 2, 0xff, 'x', 0}
	same(t, "old token after its rotation", old, wantOld)
	successor[0] = 'X' // the store kept its own copy
	old.Successor[1] = 'Y'

	// Retries inside the window, the same instant included and the last
	// nanosecond of it: each offers a new token and another successor.
	for i, at := range []time.Time{at1, at1.Add(10 * time.Second), at1.Add(grace - time.Nanosecond)} {
		t.Run(fmt.Sprint("retry after ", at.Sub(at1)), func(t *testing.T) {
			retry := newRefresh(fmt.Sprint("retry-", i), "")
			g, old, err := s.RotateRefresh(ctx, hash("refresh-r1"), retry, []byte(fmt.Sprint("other successor ", i)), at, grace)
			wantErr(t, "retry", err, store.ErrRefreshRotated)
			if g == nil || old == nil {
				t.Fatalf("grant %v, old token %v; want both", g, old)
			}
			same(t, "grant on retry", g, newGrant("g1"))
			same(t, "old token on retry", old, wantOld)
			if !bytes.Equal(old.Successor, wantOld.Successor) {
				t.Fatalf("Successor %x, want %x", old.Successor, wantOld.Successor)
			}
			old.Successor[0] = 'Z' // must not leak into the stored token
			if retry.GrantID != "" || retry.Generation != 1 {
				t.Errorf("the store filled in the refused token: GrantID %q Generation %d, want it untouched (\"\", 1)", retry.GrantID, retry.Generation)
			}
			// The token offered with the retry was not stored.
			_, _, err = s.GetRefresh(ctx, retry.Hash, at)
			wantErr(t, "token offered with the retry", err, store.ErrNotFound)
		})
	}

	// Nothing changed: the family is intact, the old token still names the
	// first rotation, and the token that rotation issued works.
	stored, err := s.GetGrant(ctx, "g1")
	must(t, "get grant", err)
	same(t, "grant after retries", stored, newGrant("g1"))
	tok, _, err := s.GetRefresh(ctx, hash("refresh-r1"), at1)
	must(t, "get old token", err)
	same(t, "old token after retries", tok, wantOld)
	at2 := at1.Add(20 * time.Second)
	_, old, err = s.RotateRefresh(ctx, hash("refresh-r2"), newRefresh("r3", ""), []byte("s3"), at2, grace)
	must(t, "rotate the next token after retries", err)
	if old.Generation != 2 || old.GrantID != "g1" {
		t.Errorf("next token: generation %d grant %q, want 2 and g1", old.Generation, old.GrantID)
	}

	// A successor that is empty, or nil, comes back as it was stored.
	for _, tc := range []struct {
		name string
		succ []byte
	}{{"empty", []byte{}}, {"nil", nil}} {
		t.Run(tc.name+" successor", func(t *testing.T) {
			gid := "g-" + tc.name
			must(t, "create "+gid, s.CreateGrant(ctx, newGrant(gid), newRefresh("first-"+tc.name, gid)))
			_, _, err := s.RotateRefresh(ctx, hash("refresh-first-"+tc.name), newRefresh("second-"+tc.name, ""), tc.succ, at1, grace)
			must(t, "rotate "+gid, err)
			_, old, err := s.RotateRefresh(ctx, hash("refresh-first-"+tc.name), newRefresh("third-"+tc.name, ""), []byte("x"), at1.Add(time.Second), grace)
			wantErr(t, "retry "+gid, err, store.ErrRefreshRotated)
			want := newRefresh("first-"+tc.name, gid)
			want.RotatedAt = at1
			want.Successor = tc.succ
			same(t, "old token with an "+tc.name+" successor", old, want)
		})
	}
}

// RT-1, after the grace window: the same retry is reuse and kills the
// family, the token the first rotation issued included.
func testRotateRefreshAfterGrace(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	must(t, "create bystander", s.CreateGrant(ctx, newGrant("g2"), newRefresh("b1", "g2")))
	at1 := t0.Add(time.Minute)
	_, _, err := s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), []byte("sealed r2"), at1, grace)
	must(t, "rotate", err)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r3", ""), []byte("sealed r3"), at1.Add(time.Second), grace)
	wantErr(t, "retry within the window", err, store.ErrRefreshRotated)

	late := at1.Add(grace) // the window is [at1, at1+grace)
	g, old, err := s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r4", ""), []byte("sealed r4"), late, grace)
	wantErr(t, "reuse at the end of the window", err, store.ErrRefreshReused)
	if g == nil || old == nil {
		t.Fatalf("reuse returned grant %v and token %v, want both", g, old)
	}
	wantGrant := newGrant("g1")
	wantGrant.RevokedAt = late
	same(t, "grant returned on reuse", g, wantGrant)
	wantOld := newRefresh("r1", "g1")
	wantOld.RotatedAt = at1
	wantOld.Successor = []byte("sealed r2")
	same(t, "token returned on reuse", old, wantOld)
	stored, err := s.GetGrant(ctx, "g1")
	must(t, "get grant", err)
	same(t, "grant after reuse", stored, wantGrant)

	for _, name := range []string{"r2", "r3", "r4"} {
		t.Run("family token "+name, func(t *testing.T) {
			_, _, err := s.RotateRefresh(ctx, hash("refresh-"+name), newRefresh(name+"-next", ""), nil, late.Add(time.Second), grace)
			wantErr(t, "token "+name+" of the revoked family", err, store.ErrNotFound)
		})
	}
	// Within the window of nothing now: a revoked family is not found, so
	// no retry can fetch its successor any more.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r5", ""), nil, at1.Add(time.Second), grace)
	wantErr(t, "retry after revocation", err, store.ErrNotFound)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-b1"), newRefresh("b2", ""), nil, late, grace)
	must(t, "rotate another grant's token", err)
}

// SEC-181: DeleteSuccessors empties the successor of the tokens rotated at
// or before its time, at most limit a call, and nothing else: the tokens
// stay rotated, so that one coming back still ends its family (RT-1).
func testDeleteSuccessors(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	must(t, "create", s.CreateGrant(ctx, newGrant("g2"), newRefresh("b1", "g2")))
	must(t, "create", s.CreateGrant(ctx, newGrant("g3"), newRefresh("c1", "g3")))
	at1, at2 := t0.Add(time.Minute), t0.Add(time.Hour)
	for _, r := range []struct {
		old, next string
		at        time.Time
	}{{"r1", "r2", at1}, {"b1", "b2", at1}, {"r2", "r3", at2}} {
		_, _, err := s.RotateRefresh(ctx, hash("refresh-"+r.old), newRefresh(r.next, ""), []byte("sealed "+r.next), r.at, grace)
		must(t, "rotate "+r.old, err)
	}
	_, err := s.DeleteSuccessors(ctx, at1, 0)
	if err == nil {
		t.Error("DeleteSuccessors with limit 0: no error, want one")
	}
	for _, step := range []struct {
		before       time.Time
		limit, wantN int
	}{
		{at1.Add(-time.Nanosecond), 5, 0}, // rotated after: kept
		{at1, 1, 1},                       // at: deleted, one a call
		{at1, 5, 1},
		{at1, 5, 0},
	} {
		n, err := s.DeleteSuccessors(ctx, step.before, step.limit)
		must(t, "delete successors", err)
		if n != step.wantN {
			t.Fatalf("DeleteSuccessors(rotated at or before %v, limit %d) = %d, want %d", step.before.Sub(at1), step.limit, n, step.wantN)
		}
	}
	wantSuccessor := map[string]string{"r1": "", "b1": "", "r2": "sealed r3", "r3": "", "c1": ""}
	for name, want := range wantSuccessor {
		tok, _, err := s.GetRefresh(ctx, hash("refresh-"+name), at2)
		must(t, "get "+name, err)
		if string(tok.Successor) != want {
			t.Errorf("token %s: Successor %q, want %q", name, tok.Successor, want)
		}
	}
	tok, _, err := s.GetRefresh(ctx, hash("refresh-r1"), at2)
	must(t, "get r1", err)
	if !tok.RotatedAt.Equal(at1) {
		t.Errorf("r1 RotatedAt %v after its successor went, want %v", tok.RotatedAt, at1)
	}
	// RT-1 holds without the successor: the old token coming back after
	// the window ends the family.
	g, _, err := s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r9", ""), []byte("sealed r9"), at2.Add(time.Second), grace)
	wantErr(t, "r1 back after its successor went", err, store.ErrRefreshReused)
	if g == nil || g.RevokedAt.IsZero() {
		t.Errorf("grant after r1's reuse: %+v, want it revoked", g)
	}
}

// RT-1 with no grace window: a rotated token that comes back is reuse,
// also when the caller's clock is behind the one that rotated it (another
// replica's), which must not read as "rotated moments ago".
func testRotateRefreshNoGraceClockBehind(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	at1 := t0.Add(time.Minute)
	_, _, err := s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), []byte("sealed r2"), at1, 0)
	must(t, "rotate", err)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r3", ""), []byte("sealed r3"), at1.Add(-time.Second), 0)
	wantErr(t, "reuse from a clock a second behind, no grace window", err, store.ErrRefreshReused)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r2"), newRefresh("r4", ""), nil, at1.Add(time.Second), 0)
	wantErr(t, "the successor after the reuse", err, store.ErrNotFound)
}

// GetRefresh reads a token and its grant and changes nothing: rotated
// tokens and revoked grants come back as they are, for the caller to
// judge; unknown and expired tokens are not found.
func testGetRefresh(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, _, err := s.GetRefresh(ctx, hash("refresh-unknown"), t0)
	wantErr(t, "unknown", err, store.ErrNotFound)

	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	tok, g, err := s.GetRefresh(ctx, hash("refresh-r1"), t0)
	must(t, "get", err)
	same(t, "token", tok, newRefresh("r1", "g1"))
	same(t, "grant", g, newGrant("g1"))
	tok.Scopes[0] = "changed"
	g.Scopes[0] = "changed"
	g.User.Groups[0] = "changed"

	exp := newRefresh("r1", "g1").ExpiresAt
	tok, _, err = s.GetRefresh(ctx, hash("refresh-r1"), exp.Add(-time.Nanosecond))
	must(t, "get just before expiry", err)
	same(t, "token after mutating a returned one", tok, newRefresh("r1", "g1"))
	_, _, err = s.GetRefresh(ctx, hash("refresh-r1"), exp)
	wantErr(t, "at expiry", err, store.ErrNotFound)
	_, _, err = s.GetRefresh(ctx, hash("refresh-r1"), exp.Add(time.Hour))
	wantErr(t, "after expiry", err, store.ErrNotFound)

	forever := newRefresh("f1", "g2")
	forever.ExpiresAt = time.Time{}
	must(t, "create g2", s.CreateGrant(ctx, newGrant("g2"), forever))
	tok, _, err = s.GetRefresh(ctx, hash("refresh-f1"), t0.Add(100*365*24*time.Hour))
	must(t, "get a token with no expiry", err)
	same(t, "token with no expiry", tok, forever)

	// Reading does not use the token: it still rotates.
	at1 := t0.Add(time.Minute)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), []byte{9, 0, 9}, at1, 0)
	must(t, "rotate after get", err)

	// Rotated: as is, with when and what the rotation issued.
	tok, g, err = s.GetRefresh(ctx, hash("refresh-r1"), at1.Add(time.Hour))
	must(t, "get rotated", err)
	wantOld := newRefresh("r1", "g1")
	wantOld.RotatedAt = at1
	wantOld.Successor = []byte{9, 0, 9}
	same(t, "rotated token", tok, wantOld)
	same(t, "grant of the rotated token", g, newGrant("g1"))
	tok.Successor[0] = 7
	tok, _, err = s.GetRefresh(ctx, hash("refresh-r1"), at1)
	must(t, "get rotated again", err)
	same(t, "after mutating a returned successor", tok, wantOld)
	// Reading a rotated token is not reuse.
	stored, err := s.GetGrant(ctx, "g1")
	must(t, "get grant", err)
	same(t, "grant after reading a rotated token", stored, newGrant("g1"))

	tok, _, err = s.GetRefresh(ctx, hash("refresh-r2"), at1)
	must(t, "get the new token", err)
	same(t, "new token", tok, &store.RefreshToken{
		Hash: hash("refresh-r2"), GrantID: "g1", Generation: 2, Scopes: newRefresh("r1", "").Scopes,
		CreatedAt: t0, ExpiresAt: newRefresh("r2", "").ExpiresAt,
	})

	// Revoked grant: both tokens still come back, with the grant saying so.
	at2 := at1.Add(time.Minute)
	must(t, "revoke", s.RevokeGrant(ctx, "g1", at2))
	wantGrant := newGrant("g1")
	wantGrant.RevokedAt = at2
	for _, name := range []string{"r1", "r2"} {
		t.Run("revoked grant via "+name, func(t *testing.T) {
			_, g, err := s.GetRefresh(ctx, hash("refresh-"+name), at2)
			must(t, "get "+name+" of a revoked grant", err)
			same(t, "revoked grant via "+name, g, wantGrant)
		})
	}
	// Expiry still applies to a revoked family's tokens.
	_, _, err = s.GetRefresh(ctx, hash("refresh-r2"), exp.Add(time.Hour))
	wantErr(t, "revoked and expired", err, store.ErrNotFound)
}

// RT-1: what a starting process reads to keep denying the access tokens of
// families revoked before it started.
func testRevokedGrantsSince(t *testing.T, s store.Store) {
	ctx := t.Context()
	ids, err := s.RevokedGrantsSince(ctx, time.Time{})
	must(t, "empty store", err)
	if len(ids) != 0 {
		t.Fatalf("empty store: %q, want no revoked grant", ids)
	}

	// Created out of order so that insertion order is not sorted order.
	for _, id := range []string{"g-e", "g-c", "g-a", "g-d", "g-b", "g-live"} {
		must(t, "create "+id, s.CreateGrant(ctx, newGrant(id), newRefresh("r-"+id, id)))
	}
	h := time.Hour
	must(t, "revoke g-a", s.RevokeGrant(ctx, "g-a", t0.Add(1*h)))
	must(t, "revoke g-d", s.RevokeGrant(ctx, "g-d", t0.Add(2*h)))
	must(t, "revoke g-b", s.RevokeGrant(ctx, "g-b", t0.Add(2*h))) // a tie
	// g-e dies of reuse (RT-1) at 3h.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r-g-e"), newRefresh("e2", ""), nil, t0.Add(2*h), 0)
	must(t, "rotate g-e", err)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r-g-e"), newRefresh("e3", ""), nil, t0.Add(3*h), 0)
	wantErr(t, "reuse g-e", err, store.ErrRefreshReused)
	must(t, "revoke g-c", s.RevokeGrant(ctx, "g-c", t0.Add(4*h)))
	// Revoking again keeps the first time.
	must(t, "revoke g-a again", s.RevokeGrant(ctx, "g-a", t0.Add(10*h)))

	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{time.Time{}, []string{"g-a", "g-b", "g-c", "g-d", "g-e"}},
		{t0, []string{"g-a", "g-b", "g-c", "g-d", "g-e"}},
		{t0.Add(1 * h), []string{"g-a", "g-b", "g-c", "g-d", "g-e"}},
		{t0.Add(1*h + time.Nanosecond), []string{"g-b", "g-c", "g-d", "g-e"}},
		{t0.Add(2 * h), []string{"g-b", "g-c", "g-d", "g-e"}},
		{t0.Add(2*h + time.Nanosecond), []string{"g-c", "g-e"}},
		{t0.Add(3 * h).In(time.UTC), []string{"g-c", "g-e"}},
		{t0.Add(4 * h), []string{"g-c"}},
		{t0.Add(4*h + time.Nanosecond), nil},
		{t0.Add(10 * h), nil},
	} {
		name := fmt.Sprint("since t0+", tc.since.Sub(t0))
		if tc.since.IsZero() {
			name = "since the zero time"
		}
		t.Run(name, func(t *testing.T) {
			ids, err := s.RevokedGrantsSince(ctx, tc.since)
			must(t, "revoked since", err)
			if !slices.Equal(ids, tc.want) && !(len(ids) == 0 && len(tc.want) == 0) {
				t.Errorf("revoked since %v: %q, want %q", tc.since.Sub(t0), ids, tc.want)
			}
		})
	}
}
