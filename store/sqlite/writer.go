package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Group commit.
//
// With synchronous=FULL every COMMIT waits for an fsync of the WAL, a few
// hundred microseconds or more, and a transaction per write caps the store
// at a few thousand writes a second whatever the CPU. So writes do not run
// their own transactions: each write verb hands an op to the writer, one
// goroutine that owns the write connection. The writer takes every op
// waiting (at most maxBatch), opens one BEGIN IMMEDIATE transaction, runs
// each op in its own SAVEPOINT, commits once, and only then answers each
// op. One fsync covers the whole batch, and a caller is answered only
// after the COMMIT that holds its writes returned: success still means
// durable.
//
// Ops run one after the other inside the transaction, each seeing the
// writes of those before it, exactly as if each had its own transaction in
// that order; so the read-check-write verbs (ConsumeCode, RotateRefresh, ...)
// keep their exactly-one-winner semantics. An op that fails is rolled back
// to its savepoint alone; the others of the batch are not affected. An op
// may also keep its writes and still report an error (errCommitted, for
// RT-1's revocation). Every answer, failures included, waits for the
// COMMIT: a failure may rest on what an earlier op of the batch wrote, and
// must not be reported if that is then lost. If BEGIN, a savepoint or the
// COMMIT fails, every op of the batch gets the error and nothing of the
// batch is kept.
//
// An op whose context is done before the writer starts it is skipped and
// its caller gets the context's error at once; once started, an op runs
// to the end (its statements do not watch the caller's context) and its
// caller waits for the COMMIT.

// maxBatch bounds the ops of one transaction, so that one batch's latency
// stays bounded under any load.
const maxBatch = 256

// op states, advanced with compare-and-swap so that exactly one of the
// writer (starting the op) and the caller (giving up on it) wins.
const (
	opQueued int32 = iota
	opStarted
	opAbandoned
)

// op is one write verb's transaction function, queued for the writer.
type op struct {
	ctx   context.Context
	fn    func(ctx context.Context, tx *sql.Tx) error
	state atomic.Int32
	err   error         // the op's result, set by the writer before done is closed
	done  chan struct{} // closed when err is final
}

// errClosed answers writes submitted after Close.
var errClosed = errors.New("sqlite: store is closed")

// writer is the group-commit loop on the write connection.
type writer struct {
	db    *sql.DB  // the write pool, one connection
	stmts prepared // statements declared with ws, prepared on db

	mu     sync.Mutex
	queue  []*op
	spare  []*op // the previous batch's array, reused for the next queue
	closed bool

	wake    chan struct{} // capacity 1: the queue may be non-empty, or closed was set
	stopped chan struct{} // closed when the loop has returned

	// Statistics, for Stats.
	commits  atomic.Uint64 // batches committed
	failed   atomic.Uint64 // batches whose BEGIN, savepoint or COMMIT failed
	ops      atomic.Uint64 // ops run in committed batches, failed ops included
	skipped  atomic.Uint64 // ops whose context was done before they started
	maxBatch atomic.Int64  // largest batch committed
	busy     atomic.Int64  // nanoseconds spent running batches, BEGIN to COMMIT
	inCommit atomic.Int64  // nanoseconds of that in COMMIT (writing the WAL, fsync, checkpoints)
}

func newWriter(db *sql.DB, stmts prepared) *writer {
	w := &writer{db: db, stmts: stmts, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	go w.loop()
	return w
}

// do runs fn in the writer's next transaction and returns its error once
// that transaction has committed (or failed). fn gets a context that is
// never cancelled; it must not keep tx or statements beyond its return.
func (w *writer) do(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{ctx: ctx, fn: fn, done: make(chan struct{})}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errClosed
	}
	w.queue = append(w.queue, o)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is pending already
	}

	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return ctx.Err() // the writer will skip it
		}
		<-o.done // started: it completes, and its result stands
		return o.err
	}
}

// close stops taking ops, lets the writer finish every op queued, and
// waits for it to return.
func (w *writer) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.stopped
}

func (w *writer) loop() {
	defer close(w.stopped)
	var batch []*op
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		if len(w.queue) <= maxBatch {
			// Take the whole queue and give it the previous batch's array.
			batch, w.queue, w.spare = w.queue, w.spare[:0], nil
		} else {
			batch = append(batch[:0], w.queue[:maxBatch]...)
			n := copy(w.queue, w.queue[maxBatch:])
			clear(w.queue[n:])
			w.queue = w.queue[:n]
		}
		w.mu.Unlock()

		w.run(batch)

		clear(batch)
		w.mu.Lock()
		if w.spare == nil && cap(batch) <= 4*maxBatch {
			w.spare = batch[:0]
		}
		w.mu.Unlock()
		batch = nil
	}
}

// start claims o for this batch; false means its caller gave up on it, or
// its context is done, and it must not run.
func (w *writer) start(o *op) bool {
	if o.ctx.Err() != nil {
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			o.err = o.ctx.Err()
			close(o.done)
		}
		w.skipped.Add(1)
		return false
	}
	if !o.state.CompareAndSwap(opQueued, opStarted) {
		w.skipped.Add(1) // abandoned by its caller, who has returned
		return false
	}
	return true
}

// run executes one batch in one transaction and answers its ops.
func (w *writer) run(batch []*op) {
	bg := context.Background()
	t0 := time.Now()
	defer func() { w.busy.Add(int64(time.Since(t0))) }()
	// Ops are claimed only once BEGIN has returned, so that while it waits
	// (another process holding the write lock) callers can still give up.
	tx, err := w.db.BeginTx(bg, nil)
	if err != nil {
		w.failed.Add(1)
		for _, o := range batch {
			if w.start(o) {
				o.err = fmt.Errorf("sqlite: begin: %w", err)
				close(o.done)
			}
		}
		return
	}

	started := 0
	var fatal error
	for i, o := range batch {
		if !w.start(o) {
			continue
		}
		started++
		o.err, fatal = w.runOp(bg, tx, o.fn)
		if fatal != nil {
			// The transaction is in an unknown state: nothing of it is
			// kept, and the ops not started yet fail with it.
			for _, rest := range batch[i+1:] {
				w.start(rest)
			}
			break
		}
	}
	switch {
	case fatal != nil:
		_ = tx.Rollback()
	case started == 0:
		_ = tx.Rollback() // every op was given up: nothing to commit
		return
	default:
		tc := time.Now()
		if err := tx.Commit(); err != nil {
			fatal = fmt.Errorf("sqlite: commit: %w", err)
		}
		w.inCommit.Add(int64(time.Since(tc)))
	}
	if fatal != nil {
		w.failed.Add(1)
	} else {
		w.commits.Add(1)
		w.ops.Add(uint64(started))
		if n := int64(started); n > w.maxBatch.Load() {
			w.maxBatch.Store(n) // only the writer stores
		}
	}
	for _, o := range batch {
		if o.state.Load() == opStarted {
			if fatal != nil {
				o.err = fatal
			}
			close(o.done)
		}
	}
}

// Savepoint statements. The name is fixed: savepoints are never nested.
var (
	spBegin    = ws(`SAVEPOINT op`)
	spRelease  = ws(`RELEASE op`)
	spRollback = ws(`ROLLBACK TO op`)
)

func (w *writer) exec(ctx context.Context, tx *sql.Tx, q string) error {
	var err error
	if st := w.stmts[q]; st != nil {
		_, err = tx.StmtContext(ctx, st).ExecContext(ctx)
	} else {
		_, err = tx.ExecContext(ctx, q)
	}
	return err
}

// runOp runs fn inside a savepoint of tx. result is what the op's caller
// gets; fatal is set when the savepoint itself failed (or fn panicked),
// after which the transaction must be rolled back as a whole.
func (w *writer) runOp(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) (result, fatal error) {
	if err := w.exec(ctx, tx, spBegin); err != nil {
		return nil, fmt.Errorf("savepoint: %w", err)
	}
	err := call(ctx, tx, fn)
	var p opPanic
	if errors.As(err, &p) {
		return nil, p
	}
	var keep errCommitted
	switch {
	case err == nil:
	case errors.As(err, &keep):
		err = keep.err
	default:
		// The op's writes go; the batch's stay. If SQLite rolled the whole
		// transaction back itself (an I/O error, a full disk), the
		// savepoint is gone and this fails: the batch fails with it.
		if rerr := w.exec(ctx, tx, spRollback); rerr != nil {
			return nil, fmt.Errorf("rollback to savepoint after %v: %w", err, rerr)
		}
	}
	if rerr := w.exec(ctx, tx, spRelease); rerr != nil {
		return nil, fmt.Errorf("release savepoint: %w", rerr)
	}
	return err, nil
}

// opPanic is a panic in an op, turned into an error so that the writer
// survives it; the batch fails.
type opPanic struct{ v any }

func (p opPanic) Error() string { return fmt.Sprintf("sqlite: write op panicked: %v", p.v) }

func call(ctx context.Context, tx *sql.Tx, fn func(context.Context, *sql.Tx) error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = opPanic{v}
		}
	}()
	return fn(ctx, tx)
}

// Stats are counters of the writer since Open.
type Stats struct {
	// Commits is the number of write transactions committed: with
	// synchronous=FULL, each one fsync of the WAL (a checkpoint adds one
	// of the database file now and then).
	Commits uint64
	// Writes is the number of write operations those transactions ran,
	// failed ones (a conflict, a reused code) included. Writes/Commits is
	// the mean batch.
	Writes uint64
	// FailedBatches counts transactions that failed as a whole (BEGIN,
	// a savepoint or COMMIT); every op in them got the error.
	FailedBatches uint64
	// Skipped counts ops whose context was done before they started.
	Skipped uint64
	// MaxBatch is the largest number of ops one commit carried.
	MaxBatch int
	// Busy is the time the writer spent running transactions, from BEGIN
	// to the end of COMMIT; Commit is the part of it in COMMIT (writing
	// the WAL, its fsync, and the checkpoints that SQLite runs after a
	// commit now and then). Busy over wall time is the writer's
	// utilisation.
	Busy, Commit time.Duration
}

// Stats returns the writer's counters. It is cheap: a few atomic loads.
func (s *Store) Stats() Stats {
	w := s.wr
	return Stats{
		Commits:       w.commits.Load(),
		Writes:        w.ops.Load(),
		FailedBatches: w.failed.Load(),
		Skipped:       w.skipped.Load(),
		MaxBatch:      int(w.maxBatch.Load()),
		Busy:          time.Duration(w.busy.Load()),
		Commit:        time.Duration(w.inCommit.Load()),
	}
}
