package flows

import (
	"context"
	"fmt"
	"runtime"
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
