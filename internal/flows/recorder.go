package flows

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgate/mcpgate/store"
)

// Appender is the part of store.Store a Recorder writes to.
type Appender interface {
	AppendFlowEvents(ctx context.Context, events []store.FlowEvent) error
}

// Options configure a Recorder. Store is required.
type Options struct {
	Store Appender
	// Interval is how long an event waits at most before it is written,
	// unless the store is slow; default 250 ms.
	Interval time.Duration
	// Batch is the most events one write carries; default 100.
	Batch int
	// Queue is the most events held in memory, waiting for their write;
	// more are dropped and counted. Default 10,000.
	Queue int
	// QueueBytes bounds the text those events hold (eventBytes): an event
	// whose every field a client filled to MaxField is twenty times a
	// typical one, and the count alone would then let the queue hold over
	// 100 MiB. More are dropped and counted. Default 8 MiB.
	QueueBytes int64
	// WriteTimeout bounds one write; default 10 s.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Recorder queues events and writes them to the store in batches, from a
// goroutine of its own, so that recording costs a request no store round
// trip and never waits (SEC-115). A nil *Recorder records nothing.
type Recorder struct {
	opts    Options
	queue   chan Event
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	dropped atomic.Uint64
	limited atomic.Uint64
	held    atomic.Int64 // eventBytes of the events queued or being written
	warned  atomic.Int64 // when lost was last logged, in Unix nanoseconds

	mu     sync.Mutex
	keys   map[string]*rate.Limiter // RecordLimited's buckets
	people map[string]*rate.Limiter // RecordSignedIn's buckets, by user and outcome
	swept  time.Time
}

// NewRecorder starts a Recorder; Close stops it.
func NewRecorder(opts Options) *Recorder {
	if opts.Interval <= 0 {
		opts.Interval = 250 * time.Millisecond
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.Queue <= 0 {
		opts.Queue = 10_000
	}
	if opts.QueueBytes <= 0 {
		opts.QueueBytes = 8 << 20
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Recorder{opts: opts, queue: make(chan Event, opts.Queue), stop: make(chan struct{}), done: make(chan struct{}),
		keys: map[string]*rate.Limiter{}, people: map[string]*rate.Limiter{}}
	go r.run()
	return r
}

// Record queues e; it never blocks. Details outside DetailKeys are
// dropped (SEC-113). A full queue drops e and counts it.
func (r *Recorder) Record(e Event) {
	if r == nil {
		return
	}
	select {
	case <-r.done: // nothing reads the queue any more
		r.dropped.Add(1)
		return
	default:
	}
	e = clean(e, r.opts.Now())
	size := eventBytes(e)
	if r.held.Add(size) > r.opts.QueueBytes {
		r.held.Add(-size)
		r.dropped.Add(1)
		r.lost()
		return
	}
	select {
	case r.queue <- e:
	default:
		r.held.Add(-size)
		r.dropped.Add(1)
		r.lost()
	}
}

// eventBytes is what e holds in memory, near enough to bound the queue
// by: its strings, and a map entry's overhead per detail.
func eventBytes(e Event) int64 {
	n := 200 + len(e.Attempt) + len(e.ClientID) + len(e.UserID) + len(e.Step) + len(e.Outcome) + len(e.Reason)
	for k, v := range e.Details {
		n += 48 + len(k) + len(v)
	}
	return int64(n)
}

// lost warns that events were left out, at most once a minute: an
// operator who reads no attempt in the debugger must be able to tell
// that it lost some, and a flood must not become a flood of log lines.
func (r *Recorder) lost() {
	now := r.opts.Now().UnixNano()
	last := r.warned.Load()
	if last != 0 && now-last < int64(time.Minute) || !r.warned.CompareAndSwap(last, now) {
		return
	}
	r.opts.Logger.Warn("flow events dropped: the store is slow or down, or a client sent the same junk steps faster than their rate",
		"dropped", r.dropped.Load(), "limited", r.limited.Load())
}

// RecordLimited records e unless key (a client address) is over its rate
// (KeyBurst, KeyEvery); an event left out is counted (Limited). Steps
// that went through of an attempt in progress go to RecordSignedIn, by
// their person, so that a flood of junk from an address never hides a
// real attempt made from it (SEC-119).
func (r *Recorder) RecordLimited(key string, e Event) {
	if r == nil {
		return
	}
	r.recordIn(r.keys, key, false, e)
}

// RecordSignedIn records e, a step of an attempt the person userID signed
// in to, unless that person is over the same rate (SEC-127): one person's
// client that loops on good refreshes, or a script that signs in again and
// again, would otherwise write every step and push every other person's
// attempts out of the events kept (SEC-114). A person's failures have a
// bucket of their own, so that a client of theirs failing in a loop never
// hides what went through; it is the person's, not the attempt's, since a
// person who signs in again makes a new attempt, and would make a new
// bucket with it. A person's buckets are apart from the addresses', so
// that junk sent from their address never hides their steps; and a person
// the held buckets leave no room for is recorded all the same, since
// made-up keys can fill those but not sign anyone in.
func (r *Recorder) RecordSignedIn(userID string, e Event) {
	if r == nil {
		return
	}
	key := userID
	if e.Outcome != OutcomeOK {
		key = "failures\x00" + userID
	}
	r.recordIn(r.people, key, true, e)
}

// RecordRefusedToken records e, a protected resource's refusal of a token
// of the person userID, unless that person's refusals are over the rate:
// a client that does not read the 401 presents its token again and again
// (SEC-119), and a person may hold tokens of many grants (SEC-207). Their
// bucket is apart from the person's other failures (RecordSignedIn), so
// that a client's loop at /mcp never hides why a refresh failed, nor the
// other way round.
func (r *Recorder) RecordRefusedToken(userID string, e Event) {
	if r == nil {
		return
	}
	r.recordIn(r.people, "refused\x00"+userID, true, e)
}

// recordIn records e unless key's bucket in m is over its rate (allowIn,
// whenFull for a new key while MaxKeys are held); an event left out is
// counted (Limited).
func (r *Recorder) recordIn(m map[string]*rate.Limiter, key string, whenFull bool, e Event) {
	if !r.allowIn(m, key, whenFull) {
		r.limited.Add(1)
		r.lost()
		return
	}
	r.Record(e)
}

// allow takes a token of key's bucket; while MaxKeys are held, a new key
// records nothing.
func (r *Recorder) allow(key string) bool { return r.allowIn(r.keys, key, false) }

// allowIn takes a token of key's bucket in m; a new key while MaxKeys are
// held gets whenFull. Buckets full again are forgotten at most once a
// minute, as a new one would decide the same.
func (r *Recorder) allowIn(m map[string]*rate.Limiter, key string, whenFull bool) bool {
	now := r.opts.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.swept) > time.Minute {
		for _, held := range []map[string]*rate.Limiter{r.keys, r.people} {
			for k, l := range held {
				if l.TokensAt(now) >= KeyBurst {
					delete(held, k)
				}
			}
		}
		r.swept = now
	}
	l, ok := m[key]
	if !ok {
		if len(m) >= MaxKeys {
			return whenFull
		}
		l = rate.NewLimiter(rate.Every(KeyEvery), KeyBurst)
		m[key] = l
	}
	return l.AllowN(now, 1)
}

// Limited is how many steps RecordLimited left out, their key over its
// rate.
func (r *Recorder) Limited() uint64 {
	if r == nil {
		return 0
	}
	return r.limited.Load()
}

// Dropped is how many events were dropped: the queue was full, or their
// write failed.
func (r *Recorder) Dropped() uint64 {
	if r == nil {
		return 0
	}
	return r.dropped.Load()
}

// Close writes what is queued and stops the Recorder; it returns ctx's
// error if ctx ends first (what is still queued is then lost). Events
// recorded after Close are dropped.
func (r *Recorder) Close(ctx context.Context) error {
	if r == nil {
		return nil
	}
	r.once.Do(func() { close(r.stop) })
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *Recorder) run() {
	defer close(r.done)
	batch := make([]Event, 0, r.opts.Batch)
	tick := time.NewTicker(r.opts.Interval)
	defer tick.Stop()
	flush := func() {
		if len(batch) > 0 {
			r.write(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case e := <-r.queue:
			batch = append(batch, e)
			if len(batch) == r.opts.Batch {
				flush()
			}
		case <-tick.C:
			flush()
		case <-r.stop:
			for {
				select {
				case e := <-r.queue:
					batch = append(batch, e)
					if len(batch) == r.opts.Batch {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// write stores one batch. A failure drops it: the flow debugger is a
// diagnostic, and a retry would hold the queue behind a store that is
// down.
func (r *Recorder) write(batch []Event) {
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.WriteTimeout)
	defer cancel()
	err := r.opts.Store.AppendFlowEvents(ctx, batch)
	var size int64
	for _, e := range batch {
		size += eventBytes(e)
	}
	r.held.Add(-size)
	if err != nil {
		r.dropped.Add(uint64(len(batch)))
		r.opts.Logger.Warn("flow events not recorded", "count", len(batch), "err", err.Error())
	}
}
