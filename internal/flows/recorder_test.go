package flows

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
)

// gatedStore holds every write until open is closed, and records the
// batches it wrote.
type gatedStore struct {
	open    chan struct{}
	mu      sync.Mutex
	batches [][]store.FlowEvent
}

func (s *gatedStore) AppendFlowEvents(ctx context.Context, events []store.FlowEvent) error {
	select {
	case <-s.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, append([]store.FlowEvent(nil), events...))
	return nil
}

func (s *gatedStore) written() (batches, events int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, b := range s.batches {
		events += len(b)
	}
	return len(s.batches), events
}

// SEC-113: a detail outside the allowlist never reaches the store, and
// every string is bounded.
func TestSEC113_DetailsAllowlist(t *testing.T) {
	st := memory.New()
	r := NewRecorder(Options{Store: st})
	r.Record(Event{Attempt: "a", Step: StepTokenCode, Outcome: "invalid_grant", ClientID: strings.Repeat("é", 600),
		Details: map[string]string{
			"code": "the-code", "code_verifier": "the-verifier", "code_challenge": "the-challenge",
			"client_secret": "the-secret", "state": "the-state", "password": "the-password",
			"refresh_token": "the-refresh", "access_token": "the-access", "cookie": "the-cookie",
			"redirect_uri": "http://127.0.0.1:1/cb", "grant_type": "authorization_code",
		}})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := st.ListFlowEvents(context.Background(), store.FlowFilter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("ListFlowEvents: %v, %d events", err, len(got))
	}
	e := got[0]
	if s := fmt.Sprintf("%+v", e); strings.Contains(s, "the-") {
		t.Errorf("a secret was recorded: %s", s)
	}
	if len(e.Details) != 2 || e.Details["redirect_uri"] != "http://127.0.0.1:1/cb" || e.Details["grant_type"] != "authorization_code" {
		t.Errorf("details = %v, want redirect_uri and grant_type only", e.Details)
	}
	if len(e.ClientID) > MaxField || !strings.HasSuffix(e.ClientID, "…") || !strings.HasPrefix(e.ClientID, "é") {
		t.Errorf("client id not cut to %d bytes at a rune: %d bytes", MaxField, len(e.ClientID))
	}
	if e.Time.IsZero() {
		t.Error("no time set")
	}
}

// SEC-115: Record never waits for the store: with every write held, the
// queue fills, the rest is dropped and counted, and the recording
// goroutine carries on. Once the store answers, Close writes what was
// queued, in batches of at most Batch, in order.
func TestSEC115_RecordNeverBlocks(t *testing.T) {
	st := &gatedStore{open: make(chan struct{})}
	r := NewRecorder(Options{Store: st, Queue: 50, Batch: 10, Interval: time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			r.Record(Event{Attempt: fmt.Sprint(i), Step: StepRegister, Outcome: OutcomeOK})
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Record blocked behind a store that does not answer")
	}
	// One batch is taken by the writer, held at the store; the queue
	// holds 50 more.
	if d := r.Dropped(); d < 1000-50-10 || d > 1000-50 {
		t.Errorf("dropped %d, want between %d and %d", d, 1000-50-10, 1000-50)
	}
	close(st.open)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	batches, events := st.written()
	if events != 1000-int(r.Dropped()) {
		t.Errorf("wrote %d events, want the %d not dropped", events, 1000-r.Dropped())
	}
	prev := -1
	for _, b := range st.batches {
		if len(b) > 10 {
			t.Errorf("a batch of %d events, more than Batch", len(b))
		}
		for _, e := range b {
			var n int
			fmt.Sscan(e.Attempt, &n)
			if n <= prev {
				t.Fatalf("event %d written after %d", n, prev)
			}
			prev = n
		}
	}
	if batches == 0 {
		t.Fatal("nothing written")
	}
	r.Record(Event{Attempt: "late"})
	if _, after := st.written(); after != events {
		t.Error("an event recorded after Close was written")
	}
}

// SEC-115: an event is written within the interval, without Close; a
// hundred at once go in one write.
func TestRecorderWritesInBatchesWithinTheInterval(t *testing.T) {
	st := &gatedStore{open: make(chan struct{})}
	close(st.open)
	r := NewRecorder(Options{Store: st, Interval: 20 * time.Millisecond, Queue: 1000})
	defer r.Close(context.Background())
	r.Record(Event{Attempt: "one"})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, n := st.written(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a lone event was not written within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := range 100 {
		r.Record(Event{Attempt: fmt.Sprint(i)})
	}
	for {
		if _, n := st.written(); n == 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a hundred events were not written within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b, _ := st.written(); b > 3 {
		t.Errorf("%d writes for 101 events, want at most 3 (batches of 100)", b)
	}
}

// A nil Recorder records nothing and costs nothing.
func TestNilRecorder(t *testing.T) {
	var r *Recorder
	r.Record(Event{Attempt: "x"})
	if r.Dropped() != 0 || r.Close(context.Background()) != nil {
		t.Fatal("nil recorder")
	}
}

// SEC-119: unattributed steps are kept per address up to the burst, then
// one per KeyEvery; another address has its own bucket; what is
// left out is counted; at MaxKeys addresses a new one records nothing,
// and buckets full again are forgotten.
func TestSEC119_UnattributedPerAddress(t *testing.T) {
	st := memory.New()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	r := NewRecorder(Options{Store: st, Now: clock})
	junk := func(source string, n int) {
		for i := range n {
			r.RecordLimited(source, Event{Attempt: fmt.Sprintf("%s-%d", source, i), Step: StepAuthorize, Outcome: "invalid_client"})
		}
	}
	junk("192.0.2.1", KeyBurst+50)
	junk("192.0.2.2", 3)
	advance(2 * KeyEvery)
	junk("192.0.2.1", 5)
	if got, want := r.Limited(), uint64(50+5-2); got != want {
		t.Errorf("Limited() = %d, want %d", got, want)
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, err := st.ListFlowEvents(context.Background(), store.FlowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := KeyBurst + 2 + 3; len(got) != want {
		t.Errorf("%d events stored, want %d", len(got), want)
	}

	r = NewRecorder(Options{Store: memory.New(), Now: clock})
	defer r.Close(context.Background())
	for i := range MaxKeys {
		if !r.allow(fmt.Sprint(i)) {
			t.Fatalf("address %d of %d refused", i, MaxKeys)
		}
	}
	if r.allow("one more") {
		t.Errorf("a new address was tracked past MaxKeys")
	}
	advance(KeyEvery + time.Minute)
	if !r.allow("one more") {
		t.Errorf("the buckets full again were not forgotten")
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// SEC-115: events dropped at a full queue, or left out over an address's
// rate (SEC-119), are not lost silently: the recorder warns with the
// counts, at most once a minute however many are dropped.
func TestSEC115_DropsAreLogged(t *testing.T) {
	st := &gatedStore{open: make(chan struct{})}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var logs lockedBuffer
	r := NewRecorder(Options{Store: st, Queue: 1, Batch: 1, Now: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer func() {
		close(st.open)
		if err := r.Close(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	for i := range 20 {
		r.Record(Event{Attempt: fmt.Sprint(i), Step: StepRegister, Outcome: OutcomeOK})
	}
	if n := strings.Count(logs.String(), "flow events dropped"); n != 1 {
		t.Fatalf("%d warnings for %d dropped events, want 1:\n%s", n, r.Dropped(), logs.String())
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "dropped=1") {
		t.Errorf("the warning does not carry the count:\n%s", logs.String())
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	r.Record(Event{Attempt: "later", Step: StepRegister, Outcome: OutcomeOK})
	if n := strings.Count(logs.String(), "flow events dropped"); n != 2 {
		t.Errorf("%d warnings after a minute more of drops, want 2:\n%s", n, logs.String())
	}
}

// SEC-115: an event recorded after Close is counted as dropped, as Close
// promises, not left in a queue nothing reads.
func TestRecordAfterCloseIsCounted(t *testing.T) {
	r := NewRecorder(Options{Store: memory.New()})
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Record(Event{Attempt: "late", Step: StepRegister, Outcome: OutcomeOK})
	if got := r.Dropped(); got != 1 {
		t.Errorf("Dropped() = %d after an event recorded after Close, want 1", got)
	}
}

// SEC-127: a person's steps are kept up to the same rate, in a bucket
// apart from the addresses' (junk from their address spends none of it),
// and a new person is recorded even when made-up keys fill every bucket
// RecordLimited may hold.
func TestSEC127_SignedInPerPerson(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	r := NewRecorder(Options{Store: memory.New(), Now: func() time.Time { return now }})
	defer r.Close(context.Background())
	for i := range MaxKeys {
		r.RecordLimited(fmt.Sprint(i), Event{Attempt: "junk", Step: StepAuthorize, Outcome: "invalid_client"})
	}
	r.RecordLimited("local:alice", Event{Attempt: "junk", Step: StepAuthorize, Outcome: "invalid_client"})
	before := r.Limited()
	for range KeyBurst + 10 {
		r.RecordSignedIn("local:mallory", Event{Attempt: "m", UserID: "local:mallory", Step: StepTokenRefresh, Outcome: OutcomeOK})
	}
	if got := r.Limited() - before; got != 10 {
		t.Errorf("%d of mallory's %d steps left out, want 10", got, KeyBurst+10)
	}
	for i := range MaxKeys {
		r.people[fmt.Sprint("made-up-", i)] = rate.NewLimiter(rate.Every(KeyEvery), KeyBurst)
	}
	before = r.Limited()
	r.RecordSignedIn("local:alice", Event{Attempt: "a", UserID: "local:alice", Step: StepLogin, Outcome: OutcomeOK})
	if r.Limited() != before {
		t.Errorf("alice's step was left out while every bucket was taken; want it recorded")
	}
}
