package flows

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
)

// typical is an /authorize step refused for its redirect URI, the
// longest kind of event a real client causes: five details and a reason
// that lists the registered URIs.
func typical(i int) Event {
	return Event{
		Attempt:  fmt.Sprintf("attempt-%016d", i),
		ClientID: fmt.Sprintf("6f1c0e2a-%04d-4b7e-9a51-3c2d7e8f9a0b", i%10000),
		Step:     StepAuthorize,
		Outcome:  "invalid_redirect_uri",
		Reason: fmt.Sprintf("redirect_uri http://127.0.0.1:%d/callback is not registered for this client; registered: "+
			"http://127.0.0.1:33418/callback, http://localhost:33418/callback", 30000+i%30000),
		Details: map[string]string{
			"redirect_uri":  fmt.Sprintf("http://127.0.0.1:%d/callback", 30000+i%30000),
			"resource":      "https://mcp.example.com/mcp",
			"scope":         "mcp offline_access",
			"pkce":          "S256",
			"response_type": "code",
		},
	}
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// The memory the flow debugger holds at its bound (docs/benchmarks.md,
// "Flow debugger memory"): a recorder whose queue is full while the store
// does not answer, and the memory store holding MaxEvents. go test -run
// TestFlowDebuggerMemory -v ./internal/flows prints the numbers; the
// test fails if they grow past twice what was measured.
func TestFlowDebuggerMemory(t *testing.T) {
	const queue = 10_000
	st := &gatedStore{open: make(chan struct{})}
	before := heap()
	r := NewRecorder(Options{Store: st, Queue: queue})
	for i := range queue + 200 { // the writer holds one batch at the store
		r.Record(typical(i))
	}
	queued := heap() - before
	close(st.open)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorder, queue full (%d events waiting): %.1f MiB, %d bytes an event", queue, mib(queued), queued/queue)

	ms := memory.New()
	before = heap()
	batch := make([]store.FlowEvent, 0, 100)
	for i := range MaxEvents {
		batch = append(batch, clean(typical(i), at))
		if len(batch) == cap(batch) {
			if err := ms.AppendFlowEvents(context.Background(), batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	kept := heap() - before
	runtime.KeepAlive(ms)
	t.Logf("memory store at the bound (%d events): %.1f MiB, %d bytes an event", MaxEvents, mib(kept), kept/MaxEvents)

	if queued > 16<<20 {
		t.Errorf("a full queue holds %.1f MiB, more than 16", mib(queued))
	}
	if kept > 160<<20 {
		t.Errorf("the memory store at its bound holds %.1f MiB, more than 160", mib(kept))
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// largest is an event whose every field and allowed detail a client
// filled to MaxField: what a caller who wants the queue to hold as much
// as it can sends.
func largest(i int) Event {
	long := func(c byte) string { return fmt.Sprintf("%08d", i) + strings.Repeat(string(c), 2*MaxField) }
	e := Event{Attempt: long('a'), ClientID: long('c'), UserID: long('u'), Step: StepAuthorize, Outcome: long('o'), Reason: long('r'),
		Details: map[string]string{}}
	for k := range DetailKeys {
		e.Details[k] = long('d')
	}
	return e
}

// The queue's bound holds for the bytes of its events too: a full queue
// of the largest events a client can make holds no more than about its
// byte budget (QueueBytes, 8 MiB), where the count alone (10,000) would
// let it hold over 100 MiB; the events over the budget are dropped and
// counted (SEC-115).
func TestFlowDebuggerMemoryLargestEvents(t *testing.T) {
	const queue = 10_000
	st := &gatedStore{open: make(chan struct{})}
	before := heap()
	r := NewRecorder(Options{Store: st, Queue: queue})
	for i := range queue + 200 {
		r.Record(largest(i))
	}
	held := heap() - before
	dropped := r.Dropped()
	close(st.open)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorder, queue full of the largest events: %.1f MiB, %d of %d dropped", mib(held), dropped, queue+200)
	if held > 16<<20 {
		t.Errorf("a queue of the largest events holds %.1f MiB, more than 16", mib(held))
	}
	if dropped == 0 {
		t.Error("no event dropped, want those over the byte budget")
	}
}
