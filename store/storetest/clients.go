package storetest

import (
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// TouchClient records a later use, never an earlier one, and knows only
// stored clients (SEC-14).
func testTouchClient(t *testing.T, s store.Store) {
	ctx := t.Context()
	must(t, "create", s.CreateClient(ctx, newClient("c1")))
	got, err := s.GetClient(ctx, "c1")
	must(t, "get", err)
	if !got.LastUsedAt.IsZero() {
		t.Errorf("LastUsedAt of a client never used = %v, want the zero time", got.LastUsedAt)
	}
	later := t0.Add(48 * time.Hour)
	must(t, "touch", s.TouchClient(ctx, "c1", later))
	must(t, "touch earlier", s.TouchClient(ctx, "c1", t0.Add(time.Hour)))
	got, err = s.GetClient(ctx, "c1")
	must(t, "get after touch", err)
	sameTime(t, "LastUsedAt", got.LastUsedAt, later)
	want := newClient("c1")
	want.LastUsedAt = later
	same(t, "client after touch", got, want)
	wantErr(t, "touch unknown", s.TouchClient(ctx, "nope", later), store.ErrNotFound)

	// A client created with a last use keeps it.
	used := newClient("used")
	used.LastUsedAt = t0.Add(time.Minute)
	must(t, "create used", s.CreateClient(ctx, used))
	got, err = s.GetClient(ctx, "used")
	must(t, "get used", err)
	same(t, "used round trip", got, used)
}

// DeleteUnusedClients deletes, in batches of at most limit, the clients
// neither used nor created since unusedSince that hold no live grant at
// now: no unexpired unused code, no unrevoked grant with an unexpired
// current refresh token. Their consents go with them (SEC-14).
func testDeleteUnusedClients(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := t0.Add(100 * 24 * time.Hour)
	since := now.Add(-90 * 24 * time.Hour)
	client := func(id string) {
		t.Helper()
		must(t, "create "+id, s.CreateClient(ctx, newClient(id)))
		must(t, "consent "+id, s.PutConsent(ctx, &store.Consent{UserID: "github:1", ClientID: id, Scopes: []string{"mcp"}, CreatedAt: t0}))
	}
	grant := func(id string, exp time.Time, revoked bool) {
		t.Helper()
		g := newGrant(id)
		g.ClientID = id
		rt := newRefresh(id, id)
		rt.ExpiresAt = exp
		must(t, "grant "+id, s.CreateGrant(ctx, g, rt))
		if revoked {
			must(t, "revoke "+id, s.RevokeGrant(ctx, id, t0.Add(time.Hour)))
		}
	}
	code := func(id string, exp time.Time, used bool) {
		t.Helper()
		c := newCode(id)
		c.ClientID = id
		c.ExpiresAt = exp
		must(t, "code "+id, s.CreateCode(ctx, c))
		if used {
			_, err := s.ConsumeCode(ctx, c.Hash, challenge, exp.Add(-time.Second))
			must(t, "consume "+id, err)
		}
	}

	// Gone: never used; a revoked grant; an expired refresh token; a
	// refresh token rotated into an expired one; an expired code; a used
	// code.
	for _, id := range []string{"unused", "revoked", "expired-refresh", "rotated", "expired-code", "used-code"} {
		client(id)
	}
	grant("revoked", now.Add(30*24*time.Hour), true)
	grant("expired-refresh", now.Add(-time.Second), false)
	grant("rotated", now.Add(30*24*time.Hour), false)
	_, _, err := s.RotateRefresh(ctx, hash("refresh-rotated"),
		&store.RefreshToken{Hash: hash("refresh-rotated-2"), CreatedAt: t0, ExpiresAt: now}, nil, t0, 0)
	must(t, "rotate", err)
	code("expired-code", now, false)
	code("used-code", now.Add(time.Minute), true)

	// Kept: used since; created since; a live refresh token, with an
	// expiry or without; an unexpired unused code.
	for _, id := range []string{"used-since", "live-refresh", "refresh-forever", "live-code"} {
		client(id)
	}
	must(t, "touch", s.TouchClient(ctx, "used-since", since.Add(time.Second)))
	recent := newClient("created-since")
	recent.CreatedAt = since.Add(time.Second)
	must(t, "create created-since", s.CreateClient(ctx, recent))
	grant("live-refresh", now.Add(time.Second), false)
	grant("refresh-forever", time.Time{}, false)
	code("live-code", now.Add(time.Second), false)

	total := 0
	for i := 0; ; i++ {
		n, err := s.DeleteUnusedClients(ctx, since, now, 4)
		must(t, "delete unused clients", err)
		if n > 4 {
			t.Fatalf("batch %d deleted %d clients, want at most the limit 4", i, n)
		}
		total += n
		if n < 4 || i > 5 {
			break
		}
	}
	if total != 6 {
		t.Errorf("deleted %d clients in all, want 6", total)
	}
	for _, id := range []string{"unused", "revoked", "expired-refresh", "rotated", "expired-code", "used-code"} {
		_, err := s.GetClient(ctx, id)
		wantErr(t, "client "+id, err, store.ErrNotFound)
		_, err = s.GetConsent(ctx, "github:1", id, "")
		wantErr(t, "consent of "+id, err, store.ErrNotFound)
	}
	for _, id := range []string{"used-since", "created-since", "live-refresh", "refresh-forever", "live-code"} {
		_, err := s.GetClient(ctx, id)
		must(t, "client "+id+" kept", err)
	}
	_, err = s.GetConsent(ctx, "github:1", "live-refresh", "")
	must(t, "consent of a kept client", err)
	// The kept clients' grants are untouched.
	_, _, err = s.GetRefresh(ctx, hash("refresh-live-refresh"), now)
	must(t, "live refresh token", err)
	n, err := s.DeleteUnusedClients(ctx, since, now, 4)
	must(t, "delete again", err)
	if n != 0 {
		t.Errorf("a second pass deleted %d, want 0", n)
	}
}
