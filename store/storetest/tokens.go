package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

func testCode(t *testing.T, s store.Store) {
	ctx := t.Context()
	c := newCode("k1")
	must(t, "create", s.CreateCode(ctx, c))
	c.Scopes[0] = "changed"
	c.User.Groups[0] = "changed"
	wantErr(t, "duplicate hash", s.CreateCode(ctx, newCode("k1")), store.ErrConflict)

	_, err := s.ConsumeCode(ctx, hash("code-unknown"), challenge, t0)
	wantErr(t, "unknown", err, store.ErrNotFound)

	now := t0.Add(10 * time.Second)
	got, err := s.ConsumeCode(ctx, hash("code-k1"), challenge, now)
	must(t, "consume", err)
	want := newCode("k1")
	want.UsedAt = now
	same(t, "round trip", got, want)

	// Expiry: live until ExpiresAt, gone from then on.
	must(t, "create k2", s.CreateCode(ctx, newCode("k2")))
	must(t, "create k3", s.CreateCode(ctx, newCode("k3")))
	exp := newCode("k2").ExpiresAt
	_, err = s.ConsumeCode(ctx, hash("code-k2"), challenge, exp)
	wantErr(t, "consume at expiry", err, store.ErrNotFound)
	_, err = s.ConsumeCode(ctx, hash("code-k2"), challenge, exp.Add(time.Hour))
	wantErr(t, "consume after expiry", err, store.ErrNotFound)
	_, err = s.ConsumeCode(ctx, hash("code-k3"), challenge, exp.Add(-time.Nanosecond))
	must(t, "consume just before expiry", err)
}

// PKCE-3: a code works once; a second exchange is refused and names the
// grant the first one created, so the caller can revoke it.
func testCodeReuse(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateCode(ctx, newCode("k1")))
	first := t0.Add(5 * time.Second)
	got, err := s.ConsumeCode(ctx, hash("code-k1"), challenge, first)
	must(t, "first use", err)
	got.Scopes[0] = "changed" // must not leak into the stored code

	want := newCode("k1")
	want.UsedAt = first
	for _, at := range []time.Time{first, first.Add(time.Second), first.Add(2 * time.Second)} {
		t.Run(fmt.Sprint("reuse after ", at.Sub(first)), func(t *testing.T) {
			got, err := s.ConsumeCode(ctx, hash("code-k1"), challenge, at)
			wantErr(t, "reuse", err, store.ErrCodeReused)
			if got == nil {
				t.Fatal("no code returned with ErrCodeReused, want the code so that its grant can be revoked")
			}
			same(t, "reused code", got, want)
		})
	}

	// A used code is still subject to expiry: past it, it is just gone.
	_, err = s.ConsumeCode(ctx, hash("code-k1"), challenge, want.ExpiresAt)
	wantErr(t, "reuse after expiry", err, store.ErrNotFound)
}

// SEC-176: a code redeemed with another challenge (a verifier not its
// own) stays unused, so that its client can still redeem it; once used,
// any challenge is a reuse (PKCE-3).
func testCodeOfAnotherChallenge(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateCode(ctx, newCode("k1")))
	at := t0.Add(time.Second)
	for _, other := range []string{"", "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", challenge + "x", challenge[:len(challenge)-1]} {
		got, err := s.ConsumeCode(ctx, hash("code-k1"), other, at)
		wantErr(t, "challenge "+other, err, store.ErrCodeMismatch)
		if got == nil || got.GrantID != "grant-k1" || !got.UsedAt.IsZero() {
			t.Fatalf("challenge %q: got %+v, want the code, unused", other, got)
		}
	}
	got, err := s.ConsumeCode(ctx, hash("code-k1"), challenge, at)
	must(t, "consume with its challenge after the others", err)
	if !got.UsedAt.Equal(at) {
		t.Errorf("used at %v, want %v", got.UsedAt, at)
	}
	_, err = s.ConsumeCode(ctx, hash("code-k1"), "", at)
	wantErr(t, "reuse with another challenge", err, store.ErrCodeReused)
	_, err = s.ConsumeCode(ctx, hash("code-unknown"), "", at)
	wantErr(t, "unknown code, another challenge", err, store.ErrNotFound)
}

func testGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	g := newGrant("g1")
	rt := newRefresh("r1", "g1")
	must(t, "create", s.CreateGrant(ctx, g, rt))
	g.Scopes[0] = "changed"
	g.User.Groups[0] = "changed"

	got, err := s.GetGrant(ctx, "g1")
	must(t, "get", err)
	same(t, "round trip", got, newGrant("g1"))
	if !got.RevokedAt.IsZero() {
		t.Errorf("new grant has RevokedAt %v, want the zero time", got.RevokedAt)
	}
	got.Scopes[0] = "changed"
	got.User.Groups[0] = "changed"
	got, err = s.GetGrant(ctx, "g1")
	must(t, "get again", err)
	same(t, "after mutating a returned grant", got, newGrant("g1"))

	_, err = s.GetGrant(ctx, "nope")
	wantErr(t, "unknown", err, store.ErrNotFound)
	wantErr(t, "duplicate id", s.CreateGrant(ctx, newGrant("g1"), nil), store.ErrConflict)

	// Without a refresh token.
	must(t, "create without refresh", s.CreateGrant(ctx, newGrant("g2"), nil))
	if _, err := s.GetGrant(ctx, "g2"); err != nil {
		t.Errorf("get g2: %v, want the grant created without a refresh token", err)
	}

	// Grant and first token are one transaction: a refresh hash that is
	// taken already leaves no grant behind.
	wantErr(t, "duplicate refresh hash", s.CreateGrant(ctx, newGrant("g3"), newRefresh("r1", "g3")), store.ErrConflict)
	_, err = s.GetGrant(ctx, "g3")
	wantErr(t, "grant of a failed create", err, store.ErrNotFound)

	// The first token round-trips: rotating it returns it.
	next := newRefresh("r2", "")
	now := t0.Add(time.Minute)
	_, old, err := s.RotateRefresh(ctx, hash("refresh-r1"), next, nil, now, 0)
	must(t, "rotate first token", err)
	want := newRefresh("r1", "g1")
	want.RotatedAt = now
	same(t, "first refresh token", old, want)
}

func testRevokeGrant(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	wantErr(t, "revoke unknown", s.RevokeGrant(ctx, "nope", t0), store.ErrNotFound)

	at := t0.Add(time.Hour)
	must(t, "revoke", s.RevokeGrant(ctx, "g1", at))
	got, err := s.GetGrant(ctx, "g1")
	must(t, "get revoked", err)
	want := newGrant("g1")
	want.RevokedAt = at
	same(t, "revoked grant", got, want)

	// Revoking again is fine and keeps the first time.
	must(t, "revoke again", s.RevokeGrant(ctx, "g1", at.Add(time.Hour)))
	got, err = s.GetGrant(ctx, "g1")
	must(t, "get", err)
	sameTime(t, "RevokedAt after second revoke", got.RevokedAt, at)

	// The family is dead.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), nil, at.Add(time.Minute), 0)
	wantErr(t, "refresh of revoked grant", err, store.ErrNotFound)
}

func testRotateRefresh(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))

	// The caller cannot know the grant or the generation of the token it
	// rotates; the store fills them in.
	next := newRefresh("r2", "")
	next.Generation = 0
	next.Scopes = []string{"ignored"} // the store copies the old token's scope
	next.CreatedAt = t0.Add(time.Minute)
	next.ExpiresAt = t0.Add(time.Minute + 30*24*time.Hour)
	at1 := t0.Add(time.Minute)
	g, old, err := s.RotateRefresh(ctx, hash("refresh-r1"), next, nil, at1, 0)
	must(t, "rotate", err)
	same(t, "grant", g, newGrant("g1"))
	wantOld := newRefresh("r1", "g1")
	wantOld.RotatedAt = at1
	same(t, "old token", old, wantOld)
	if next.GrantID != "g1" || next.Generation != 2 {
		t.Errorf("next after rotate: GrantID %q Generation %d, want g1 and 2", next.GrantID, next.Generation)
	}
	same(t, "next scopes (RFC 6749 §6)", next.Scopes, wantOld.Scopes)
	next.Scopes[0] = "changed" // the store has its own copy

	// The new token works, and round-trips with what the store filled in.
	at2 := t0.Add(2 * time.Minute)
	_, old, err = s.RotateRefresh(ctx, hash("refresh-r2"), newRefresh("r3", ""), nil, at2, 0)
	must(t, "rotate the new token", err)
	same(t, "second token", old, &store.RefreshToken{
		Hash:       hash("refresh-r2"),
		GrantID:    "g1",
		Generation: 2,
		Scopes:     wantOld.Scopes,
		CreatedAt:  t0.Add(time.Minute),
		ExpiresAt:  t0.Add(time.Minute + 30*24*time.Hour),
		RotatedAt:  at2,
	})

	// A next hash that exists already is refused and leaves the old token
	// as it was.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r3"), newRefresh("r1", ""), nil, t0.Add(3*time.Minute), 0)
	wantErr(t, "rotate onto an existing hash", err, store.ErrConflict)
	_, old, err = s.RotateRefresh(ctx, hash("refresh-r3"), newRefresh("r4", ""), nil, t0.Add(4*time.Minute), 0)
	must(t, "rotate after a refused rotation", err)
	if old.Generation != 3 {
		t.Errorf("generation of r3 = %d, want 3", old.Generation)
	}

	// A token with no expiry lives until its grant is revoked.
	forever := newRefresh("f1", "g2")
	forever.ExpiresAt = time.Time{}
	must(t, "create g2", s.CreateGrant(ctx, newGrant("g2"), forever))
	_, old, err = s.RotateRefresh(ctx, hash("refresh-f1"), newRefresh("f2", ""), nil, t0.Add(100*365*24*time.Hour), 0)
	must(t, "rotate a token with no expiry", err)
	if !old.ExpiresAt.IsZero() {
		t.Errorf("zero ExpiresAt came back as %v, want the zero time", old.ExpiresAt)
	}
}

// RT-1: a refresh token used twice means two parties hold it; the whole
// family dies, including the token that the first use issued.
func testRefreshReuse(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	must(t, "create bystander", s.CreateGrant(ctx, newGrant("g2"), newRefresh("b1", "g2")))
	at1 := t0.Add(time.Minute)
	_, _, err := s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), nil, at1, 0)
	must(t, "rotate", err)

	at2 := t0.Add(2 * time.Minute)
	g, old, err := s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r3", ""), nil, at2, 0)
	wantErr(t, "reuse", err, store.ErrRefreshReused)
	if g == nil || old == nil {
		t.Fatalf("reuse returned grant %v and token %v, want both", g, old)
	}
	wantGrant := newGrant("g1")
	wantGrant.RevokedAt = at2
	same(t, "grant returned on reuse", g, wantGrant)
	wantOld := newRefresh("r1", "g1")
	wantOld.RotatedAt = at1 // when it was first used, not now
	same(t, "token returned on reuse", old, wantOld)

	stored, err := s.GetGrant(ctx, "g1")
	must(t, "get grant", err)
	same(t, "grant after reuse", stored, wantGrant)

	// The token the legitimate rotation issued is dead too.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r2"), newRefresh("r4", ""), nil, t0.Add(3*time.Minute), 0)
	wantErr(t, "newest token of a revoked family", err, store.ErrNotFound)
	// So is the next token the reuse asked for: it was never stored.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r3"), newRefresh("r5", ""), nil, t0.Add(3*time.Minute), 0)
	wantErr(t, "token offered with the reuse", err, store.ErrNotFound)

	// A third use is refused either way, and the revocation time stands.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r6", ""), nil, t0.Add(4*time.Minute), 0)
	if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrRefreshReused) {
		t.Errorf("third use: err = %v, want ErrNotFound or ErrRefreshReused", err)
	}
	stored, err = s.GetGrant(ctx, "g1")
	must(t, "get grant", err)
	sameTime(t, "RevokedAt after third use", stored.RevokedAt, at2)

	// Other families are untouched.
	_, _, err = s.RotateRefresh(ctx, hash("refresh-b1"), newRefresh("b2", ""), nil, t0.Add(5*time.Minute), 0)
	must(t, "rotate another grant's token", err)
}

func testRotateRefreshNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	_, _, err := s.RotateRefresh(ctx, hash("refresh-none"), newRefresh("n2", ""), nil, t0, 0)
	wantErr(t, "unknown", err, store.ErrNotFound)

	must(t, "create", s.CreateGrant(ctx, newGrant("g1"), newRefresh("r1", "g1")))
	exp := newRefresh("r1", "g1").ExpiresAt
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), nil, exp, 0)
	wantErr(t, "at expiry", err, store.ErrNotFound)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-r1"), newRefresh("r2", ""), nil, exp.Add(-time.Nanosecond), 0)
	must(t, "just before expiry", err)

	must(t, "create g2", s.CreateGrant(ctx, newGrant("g2"), newRefresh("q1", "g2")))
	must(t, "revoke g2", s.RevokeGrant(ctx, "g2", t0))
	_, _, err = s.RotateRefresh(ctx, hash("refresh-q1"), newRefresh("q2", ""), nil, t0.Add(time.Second), 0)
	wantErr(t, "revoked grant", err, store.ErrNotFound)
}

func testDeleteExpired(t *testing.T, s store.Store) {
	ctx := t.Context()
	early := t0.Add(-time.Hour) // before anything below expires
	cut := t0.Add(time.Hour)    // the housekeeping run

	// Auth requests.
	oldReq := newAuthRequest("old")
	oldReq.ExpiresAt = t0
	liveReq := newAuthRequest("live")
	liveReq.ExpiresAt = cut.Add(time.Minute)
	must(t, "create old request", s.CreateAuthRequest(ctx, oldReq))
	must(t, "create live request", s.CreateAuthRequest(ctx, liveReq))
	must(t, "attach old", s.AttachUpstreamState(ctx, "old", "github", hash("st-old"), early))

	// Codes.
	oldCode := newCode("old")
	oldCode.ExpiresAt = t0
	liveCode := newCode("live")
	liveCode.ExpiresAt = cut.Add(time.Minute)
	must(t, "create old code", s.CreateCode(ctx, oldCode))
	must(t, "create live code", s.CreateCode(ctx, liveCode))

	// Sessions.
	must(t, "create old session", s.CreateSession(ctx, &store.Session{Hash: hash("s-old"), User: user("1"), CreatedAt: early, ExpiresAt: t0}))
	must(t, "create live session", s.CreateSession(ctx, &store.Session{Hash: hash("s-live"), User: user("1"), CreatedAt: early, ExpiresAt: cut.Add(time.Minute)}))

	// Refresh tokens: expired, live, and live but of a revoked grant.
	oldRT := newRefresh("old", "g1")
	oldRT.ExpiresAt = t0
	must(t, "create g1", s.CreateGrant(ctx, newGrant("g1"), oldRT))
	liveRT := newRefresh("live", "g2")
	liveRT.ExpiresAt = cut.Add(time.Minute)
	must(t, "create g2", s.CreateGrant(ctx, newGrant("g2"), liveRT))
	must(t, "create g3", s.CreateGrant(ctx, newGrant("g3"), newRefresh("revoked", "g3")))
	must(t, "revoke g3", s.RevokeGrant(ctx, "g3", t0))

	// Untouched kinds.
	must(t, "create client", s.CreateClient(ctx, newClient("c1")))

	expireAll(t, s, cut, time.Time{})

	// Looking with a time before expiry tells a deleted record from one
	// that is only expired.
	_, err := s.GetAuthRequest(ctx, "old", early)
	wantErr(t, "expired request", err, store.ErrNotFound)
	_, err = s.TakeAuthRequestByUpstreamState(ctx, hash("st-old"), early)
	wantErr(t, "take expired request", err, store.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "live", early)
	must(t, "live request", err)

	_, err = s.ConsumeCode(ctx, hash("code-old"), challenge, early)
	wantErr(t, "expired code", err, store.ErrNotFound)
	_, err = s.ConsumeCode(ctx, hash("code-live"), challenge, early)
	must(t, "live code", err)

	_, err = s.GetSession(ctx, hash("s-old"), early)
	wantErr(t, "expired session", err, store.ErrNotFound)
	_, err = s.GetSession(ctx, hash("s-live"), early)
	must(t, "live session", err)

	_, _, err = s.RotateRefresh(ctx, hash("refresh-old"), newRefresh("x1", ""), nil, early, 0)
	wantErr(t, "expired refresh token", err, store.ErrNotFound)
	_, _, err = s.RotateRefresh(ctx, hash("refresh-live"), newRefresh("x2", ""), nil, early, 0)
	must(t, "live refresh token", err)

	// Grants stay, revoked or not: GetGrant reports revocation.
	for _, id := range []string{"g1", "g2", "g3"} {
		if _, err := s.GetGrant(ctx, id); err != nil {
			t.Errorf("grant %s after housekeeping: %v, want it kept", id, err)
		}
	}
	if _, err := s.GetClient(ctx, "c1"); err != nil {
		t.Errorf("client after housekeeping: %v, want it kept", err)
	}
}
