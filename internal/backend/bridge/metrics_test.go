package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/metrics/metricstest"
)

// The stdio server processes running are a gauge per resource: one per
// user while they run, none once the pool has stopped them.
func TestStdioProcessesGauge(t *testing.T) {
	m := metrics.New()
	f := newFixture(t, StdioOptions{Metrics: m})
	running := func() float64 {
		return metricstest.Gather(t, m.Registry()).Value("mcpgate_stdio_processes", "resource", "/mcp")
	}
	f.connect(t, "alice", "", nil)
	f.connect(t, "bob", "", nil)
	if got := running(); got != 2 {
		t.Fatalf("%v processes counted, want 2", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); running() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v processes counted after Close, want 0", running())
		}
	}
	if got := metricstest.Gather(t, m.Registry()).Value("mcpgate_backend_errors_total", "resource", "/mcp"); got != 0 {
		t.Errorf("%v backend errors for servers stopped on purpose, want 0", got)
	}
}
