package audit

import (
	"context"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"sync"
	"time"
)

// Recent keeps the last events it was given, at most its bound, in
// memory: what the admin console shows as recent tool calls. It holds one
// Event per slot and never grows past the bound, however busy the
// gateway (SEC-112).
type Recent struct {
	mu   sync.Mutex
	ring []Entry
	next int  // where the next event goes
	full bool // every slot holds one
	now  func() time.Time
}

// MaxRecentText bounds each text an Entry keeps (tool, user, client,
// resource, outcome, request id): a tool name is the client's text, as
// long as a request body, and the ring's bound must hold for its bytes
// as for its events (SEC-112). A longer text is cut, marked with "…".
const MaxRecentText = 256

// Entry is one recorded event and when it was recorded.
type Entry struct {
	Event
	At time.Time
}

// NewRecent returns a Recent that keeps the last n events (n at least 1);
// now may be nil (time.Now).
func NewRecent(n int, now func() time.Time) *Recent {
	if now == nil {
		now = time.Now
	}
	return &Recent{ring: make([]Entry, max(n, 1)), now: now}
}

// Record keeps e, dropping the oldest event when full.
func (r *Recent) Record(_ context.Context, e Event) {
	at := r.now()
	e.Tool, e.User, e.Client, e.Resource, e.RequestID = clip(e.Tool), clip(e.User), clip(e.Client), clip(e.Resource), clip(e.RequestID)
	e.Outcome = Outcome(clip(string(e.Outcome)))
	r.mu.Lock()
	r.ring[r.next] = Entry{Event: e, At: at}
	r.next++
	if r.next == len(r.ring) {
		r.next, r.full = 0, true
	}
	r.mu.Unlock()
}

// clip cuts s to MaxRecentText bytes.
func clip(s string) string { return safetext.Clip(s, MaxRecentText) }

// Last returns the events kept, newest first.
func (r *Recent) Last() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}

// Tee records every event to each of recorders, in order.
func Tee(recorders ...Recorder) Recorder { return tee(recorders) }

type tee []Recorder

func (t tee) Record(ctx context.Context, e Event) {
	for _, r := range t {
		r.Record(ctx, e)
	}
}
