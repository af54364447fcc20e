package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/store"
)

// gate occupies the writer with an op that waits until open is called, so
// that the ops submitted meanwhile queue up and go into one batch.
type gate struct {
	release chan struct{}
	done    chan error
}

func hold(t *testing.T, s *Store) *gate {
	t.Helper()
	g := &gate{release: make(chan struct{}), done: make(chan error, 1)}
	running := make(chan struct{})
	go func() {
		g.done <- s.tx(context.Background(), func(context.Context, *sql.Tx) error {
			close(running)
			<-g.release
			return nil
		})
	}()
	<-running
	return g
}

func (g *gate) open(t *testing.T) {
	t.Helper()
	close(g.release)
	if err := <-g.done; err != nil {
		t.Fatalf("gate op: %v", err)
	}
}

// queued waits until n ops are queued behind the writer.
func queued(t *testing.T, s *Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.wr.mu.Lock()
		got := len(s.wr.queue)
		s.wr.mu.Unlock()
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("%d ops queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// submit starts fn in a goroutine and returns where its error will arrive.
func submit(fn func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- fn() }()
	return c
}

func testCode(name string) *store.Code {
	return &store.Code{Hash: []byte("code-" + name), ClientID: "c", GrantID: "g-" + name,
		Scopes: []string{"mcp"}, ExpiresAt: time.Now().Add(time.Hour)}
}

// N writers at once share commits: fewer fsyncs than writes.
func TestGroupCommitFewerCommitsThanWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	ctx := t.Context()
	before := s.Stats()
	const writers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for i := range writers {
		wg.Go(func() {
			for j := range each {
				errs <- s.CreateCode(ctx, testCode(fmt.Sprint(i, "-", j)))
			}
		})
	}
	wg.Wait()
	close(errs)
	failed, first := 0, error(nil)
	for err := range errs {
		if err != nil {
			if failed++; first == nil {
				first = err
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d writes failed, want none; the first: %v", failed, writers*each, first)
	}
	st := s.Stats()
	writes, commits := st.Writes-before.Writes, st.Commits-before.Commits
	t.Logf("%d writes in %d commits (largest batch %d)", writes, commits, st.MaxBatch)
	if writes != writers*each {
		t.Fatalf("%d writes counted, want %d", writes, writers*each)
	}
	if commits >= writes {
		t.Fatalf("%d commits for %d concurrent writes: no group commit, want fewer commits than writes", commits, writes)
	}
	for i := range writers {
		if _, err := s.ConsumeCode(ctx, testCode(fmt.Sprint(i, "-", each-1)).Hash, "", time.Now()); err != nil {
			t.Errorf("code %d after the load: %v, want it stored", i, err)
		}
	}
}

// Ops queued while the writer is busy go into one transaction: one
// commit for all of them, at most maxBatch at a time.
func TestGroupCommitBatches(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	ctx := t.Context()
	for _, n := range []int{1, 10, maxBatch, maxBatch + 44} {
		g := hold(t, s)
		before := s.Stats()
		var results []<-chan error
		for i := range n {
			results = append(results, submit(func() error { return s.CreateCode(ctx, testCode(fmt.Sprint(n, "/", i))) }))
		}
		queued(t, s, n)
		g.open(t)
		for i, c := range results {
			if err := <-c; err != nil {
				t.Errorf("%d queued writes: write %d: %v, want success", n, i, err)
			}
		}
		st := s.Stats()
		wantCommits := uint64(1 + (n+maxBatch-1)/maxBatch) // the gate's, then the queue's
		if got := st.Commits - before.Commits; got != wantCommits {
			t.Errorf("%d queued writes: %d commits, want %d", n, got, wantCommits)
		}
		if got := st.Writes - before.Writes; got != uint64(n+1) {
			t.Errorf("%d queued writes: %d counted, want %d (with the gate's)", n, got, n+1)
		}
	}
	if st := s.Stats(); st.MaxBatch != maxBatch {
		t.Errorf("largest batch %d, want %d", st.MaxBatch, maxBatch)
	}
}

var errTest = errors.New("op failed on purpose")

// In one batch: an op that fails is rolled back alone and gets its own
// error; the ops before and after it keep their writes and see each
// other's (a conflict with an earlier op of the batch is a conflict); an
// errCommitted op keeps its writes and reports its error.
func TestGroupCommitFailingOpIsolated(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	ctx := t.Context()
	rawInsert := func(ctx context.Context, tx *sql.Tx, name string) error {
		c := testCode(name)
		return inserted(s.txExec(ctx, tx, sqlInsertCode, c.Hash, c.ClientID, "", "", "", `["mcp"]`, `{}`, c.GrantID, nanos(c.ExpiresAt), 0))
	}

	g := hold(t, s)
	before := s.Stats()
	var results []<-chan error
	add := func(fn func() error) {
		results = append(results, submit(fn))
		queued(t, s, len(results)) // one at a time: the batch keeps this order
	}
	add(func() error { return s.CreateCode(ctx, testCode("a")) })
	add(func() error {
		return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if err := rawInsert(ctx, tx, "b"); err != nil {
				return err
			}
			return errTest // b's insert must go
		})
	})
	add(func() error { return s.CreateCode(ctx, testCode("a")) }) // a is in the batch already
	add(func() error {
		return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if err := rawInsert(ctx, tx, "d"); err != nil {
				return err
			}
			return errCommitted{errTest} // d's insert stays
		})
	})
	add(func() error { return s.CreateCode(ctx, testCode("e")) })
	add(func() error { return s.CreateCode(ctx, testCode("b")) }) // b was rolled back: free
	g.open(t)

	want := []error{nil, errTest, store.ErrConflict, errTest, nil, nil}
	for i, c := range results {
		if err := <-c; !errors.Is(err, want[i]) || (want[i] == nil && err != nil) {
			t.Errorf("op %d: err = %v, want %v", i, err, want[i])
		}
	}
	if got := s.Stats().Commits - before.Commits; got != 2 {
		t.Errorf("%d commits, want 2 (the gate, then the six ops)", got)
	}
	now := time.Now()
	for _, name := range []string{"a", "b", "d", "e"} {
		c, err := s.ConsumeCode(ctx, testCode(name).Hash, "", now)
		if err != nil {
			t.Errorf("code %s: %v, want it stored", name, err)
			continue
		}
		if name == "b" && c.GrantID != "g-b" {
			t.Errorf("code b is not the one the last op wrote: %+v, want grant g-b", c)
		}
	}
}

// A COMMIT that fails fails every op of the batch, and keeps nothing.
func TestGroupCommitFailedCommit(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	ctx := t.Context()

	g := hold(t, s)
	var results []<-chan error
	add := func(fn func() error) {
		results = append(results, submit(fn))
		queued(t, s, len(results))
	}
	add(func() error { return s.CreateCode(ctx, testCode("a")) })
	add(func() error {
		// A refresh token of a grant that does not exist, with the
		// foreign key check deferred to COMMIT: the COMMIT fails.
		return s.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
				return err
			}
			return s.insertRefresh(ctx, tx, &store.RefreshToken{Hash: []byte("orphan")}, "no-such-grant", 1, nil)
		})
	})
	add(func() error { return s.CreateCode(ctx, testCode("c")) })
	before := s.Stats()
	g.open(t)
	for i, c := range results {
		if err := <-c; err == nil || !strings.Contains(err.Error(), "commit") || !strings.Contains(err.Error(), "FOREIGN KEY") {
			t.Errorf("op %d: err = %v, want the COMMIT's foreign key failure", i, err)
		}
	}
	if st := s.Stats(); st.FailedBatches-before.FailedBatches != 1 {
		t.Errorf("failed batches %d, want 1", st.FailedBatches-before.FailedBatches)
	}
	for _, name := range []string{"a", "c"} {
		if _, err := s.ConsumeCode(ctx, testCode(name).Hash, "", time.Now()); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("code %s of the failed batch: %v, want ErrNotFound", name, err)
		}
	}
	// The writer goes on.
	if err := s.CreateCode(ctx, testCode("a")); err != nil {
		t.Fatalf("write after a failed commit: %v", err)
	}
}

// A caller whose context ends while its op waits gets ctx.Err() at once
// and the op never runs; an op that has started runs to the end.
func TestGroupCommitContext(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	ctx := t.Context()

	g := hold(t, s)
	cctx, cancel := context.WithCancel(ctx)
	waiting := submit(func() error { return s.CreateCode(cctx, testCode("cancelled")) })
	queued(t, s, 1)
	cancel()
	select {
	case err := <-waiting:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled while queued: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a caller whose op is queued did not return when its context ended")
	}
	before := s.Stats()
	g.open(t)
	if err := s.CreateCode(ctx, testCode("after")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsumeCode(ctx, testCode("cancelled").Hash, "", time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the cancelled op ran: ConsumeCode says %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Skipped-before.Skipped != 1 {
		t.Errorf("skipped %d, want 1", st.Skipped-before.Skipped)
	}

	// Cancelled once running: it completes, and reports success.
	rctx, rcancel := context.WithCancel(ctx)
	err := s.tx(rctx, func(ctx context.Context, tx *sql.Tx) error {
		rcancel()
		c := testCode("started")
		return inserted(s.txExec(ctx, tx, sqlInsertCode, c.Hash, c.ClientID, "", "", "", `[]`, `{}`, c.GrantID, nanos(c.ExpiresAt), 0))
	})
	if err != nil {
		t.Fatalf("op cancelled while running: %v, want success", err)
	}
	if _, err := s.ConsumeCode(ctx, testCode("started").Hash, "", time.Now()); err != nil {
		t.Errorf("the op cancelled while running lost its write: %v, want it stored", err)
	}

	// Already done: not even queued.
	if err := s.CreateCode(rctx, testCode("late")); !errors.Is(err, context.Canceled) {
		t.Errorf("done context: %v, want context.Canceled", err)
	}
}

// A panicking op fails its batch; the writer survives.
func TestGroupCommitPanic(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcpgate.db"))
	defer s.Close()
	ctx := t.Context()
	g := hold(t, s)
	a := submit(func() error { return s.CreateCode(ctx, testCode("a")) })
	queued(t, s, 1)
	p := submit(func() error {
		return s.tx(ctx, func(context.Context, *sql.Tx) error { panic("boom") })
	})
	queued(t, s, 2)
	g.open(t)
	if err := <-p; err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panicking op: %v, want an error naming the panic", err)
	}
	if err := <-a; err == nil {
		t.Error("an op in the panicking op's batch succeeded, want it failed with the batch")
	}
	if err := s.CreateCode(ctx, testCode("a")); err != nil {
		t.Fatalf("after a panic: %v, want the writer to go on", err)
	}
}

// Close answers every op queued, commits them, and refuses later ones.
func TestGroupCommitCloseDrains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgate.db")
	s := open(t, path)
	ctx := t.Context()
	g := hold(t, s)
	const n = 50
	var results []<-chan error
	for i := range n {
		results = append(results, submit(func() error { return s.CreateCode(ctx, testCode(fmt.Sprint(i))) }))
	}
	queued(t, s, n)
	closed := submit(s.Close)
	// Close waits for the queue; give it time to set closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.wr.mu.Lock()
		c := s.wr.closed
		s.wr.mu.Unlock()
		if c || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.CreateCode(ctx, testCode("too late")); !errors.Is(err, errClosed) {
		t.Errorf("write after Close: %v, want errClosed", err)
	}
	g.open(t)
	for i, c := range results {
		if err := <-c; err != nil {
			t.Errorf("op %d queued before Close: %v, want it committed", i, err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v, want nil", err)
	}

	s = open(t, path)
	defer s.Close()
	for i := range n {
		if _, err := s.ConsumeCode(ctx, testCode(fmt.Sprint(i)).Hash, "", time.Now()); err != nil {
			t.Errorf("code %d after reopen: %v, want it stored", i, err)
		}
	}
}
