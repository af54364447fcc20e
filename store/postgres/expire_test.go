package postgres

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
)

// Replicas that run housekeeping at once share the backlog: no batch
// fails or waits on another's rows, every expired row goes exactly once
// (the counts add up to the backlog), and the live rows stay.
func TestCrossReplicaDeleteExpired(t *testing.T) {
	ctx := t.Context()
	stores := replicas(t)
	const backlog, limit = 3000, 100
	u := identity.User{ID: "local:alice"}
	for i := range backlog {
		if err := stores[0].CreateSession(ctx, &store.Session{Hash: sum(fmt.Sprint("s", i)), User: u, CreatedAt: tc0, ExpiresAt: tc0}); err != nil {
			t.Fatal(err)
		}
	}
	if err := stores[0].CreateSession(ctx, &store.Session{Hash: sum("live"), User: u, CreatedAt: tc0, ExpiresAt: tc0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var deleted atomic.Int64
	errs := crossRace(stores, func(i int, s *Store) error {
		for {
			n, err := s.DeleteExpired(ctx, tc0.Add(time.Minute), tc0, limit)
			deleted.Add(int64(n))
			if err != nil || n < limit {
				return err
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica housekeeping %d: %v", i, err)
		}
	}
	// A racer stops at its first short batch, which a batch that skipped
	// rows locked by another racer may be: one more run finds the rest.
	for {
		n, err := stores[1].DeleteExpired(ctx, tc0.Add(time.Minute), tc0, limit)
		if err != nil {
			t.Fatal(err)
		}
		deleted.Add(int64(n))
		if n < limit {
			break
		}
	}
	if got := deleted.Load(); got != backlog {
		t.Errorf("replicas deleted %d rows in all, want the backlog, %d, each once", got, backlog)
	}
	if _, err := stores[0].GetSession(ctx, sum("live"), tc0); err != nil {
		t.Errorf("live session: %v", err)
	}
	var left int
	if err := stores[0].pool.QueryRow(ctx, `SELECT count(*) FROM sessions`).Scan(&left); err != nil || left != 1 {
		t.Errorf("%d sessions left (%v), want the live one", left, err)
	}
}
