package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// follow runs st.FollowRevocations until the test ends and returns the
// channel of the ids it hears and the channel of its result, once it is
// listening.
func follow(t *testing.T, ctx context.Context, st *Store) (<-chan string, <-chan error) {
	t.Helper()
	ids := make(chan string, 16)
	done := make(chan error, 1)
	listening := make(chan struct{})
	go func() {
		done <- st.FollowRevocations(ctx, func() { close(listening) }, func(id string) { ids <- id })
	}()
	select {
	case <-listening:
	case err := <-done:
		t.Fatalf("FollowRevocations ended before listening: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("FollowRevocations is not listening after 30 s")
	}
	return ids, done
}

func heard(t *testing.T, ids <-chan string, want, what string) {
	t.Helper()
	select {
	case id := <-ids:
		if id != want {
			t.Fatalf("%s: heard grant %q, want %q", what, id, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: grant %q not heard by the other replica within 30 s", what, want)
	}
}

// SEC-80: every revocation committed through one replica's store reaches
// another's FollowRevocations: RevokeGrant, and the family that a reused
// refresh token ends (RT-1). A rotation that revokes nothing says nothing.
func TestSEC80_RevocationsReachTheOtherReplica(t *testing.T) {
	st := replicas(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ids, done := follow(t, ctx, st[1])

	must(t, st[0].CreateGrant(ctx, grant("g-revoked"), refresh("g-revoked")))
	must(t, st[0].RevokeGrant(ctx, "g-revoked", tc0.Add(time.Minute)))
	heard(t, ids, "g-revoked", "RevokeGrant")

	must(t, st[0].CreateGrant(ctx, grant("g-reused"), refresh("g-reused")))
	if _, _, err := st[0].RotateRefresh(ctx, refresh("g-reused").Hash, refresh("g-reused-2"), nil, tc0.Add(time.Minute), time.Second); err != nil {
		t.Fatalf("first rotation: %v", err)
	}
	select {
	case id := <-ids:
		t.Fatalf("a rotation that revokes nothing announced grant %q", id)
	default:
	}
	_, _, err := st[0].RotateRefresh(ctx, refresh("g-reused").Hash, refresh("g-reused-3"), nil, tc0.Add(time.Hour), time.Second)
	if !errors.Is(err, store.ErrRefreshReused) {
		t.Fatalf("reuse: %v, want ErrRefreshReused", err)
	}
	heard(t, ids, "g-reused", "RT-1 reuse")

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("FollowRevocations after its context ended: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("FollowRevocations did not return within 30 s of its context's end")
	}
}

// A listening connection that the server ends makes FollowRevocations
// return an error at once, so that its caller reconnects, and the store's
// pool is left working.
func TestFollowRevocationsEndsWithItsConnection(t *testing.T) {
	st := replicas(t)
	ctx := t.Context()
	_, done := follow(t, ctx, st[1])
	tag, err := st[0].pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN `+revokedChannel+`'`)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("terminating the listening connection: %v (%v), want one connection", err, tag)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("FollowRevocations on a terminated connection: %v, want its failure", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("FollowRevocations still waits 30 s after its connection was terminated")
	}
	if err := st[1].Ping(ctx); err != nil {
		t.Fatalf("the store's pool after its listener ended: %v", err)
	}
}
