package bench

import (
	"bytes"
	"context"
	"runtime/pprof"
	"testing"
	"time"
)

//go:noinline
func burnForProfile(d time.Duration) uint64 {
	var x uint64 = 1
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 10000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	return x
}

var burnSink uint64

func TestParseCPUProfile(t *testing.T) {
	if testing.Short() {
		t.Skip("burns CPU for a moment")
	}
	var buf bytes.Buffer
	if err := pprof.StartCPUProfile(&buf); err != nil {
		t.Skip("CPU profiling unavailable:", err)
	}
	pprof.Do(context.Background(), pprof.Labels("server", "test"), func(context.Context) {
		burnSink += burnForProfile(300 * time.Millisecond)
	})
	pprof.StopCPUProfile()

	p, err := ParseCPUProfile(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if p.Period != 10*time.Millisecond {
		t.Errorf("period %v, want 10ms", p.Period)
	}
	by := p.Sum(func(s *ProfileSample) string {
		if s.Labels["server"] == "test" && s.Has("github.com/mcpgate/mcpgate/bench.burnForProfile") {
			return "burn"
		}
		return "other"
	})
	// 300 ms of one core, sampled at 100 Hz: expect well over 100 ms.
	if by["burn"] < 100*time.Millisecond {
		t.Fatalf("labelled burn: %v of %v in %d samples, want ≥ 100ms", by["burn"], p.Total(), len(p.Samples))
	}
	if p.Total() < by["burn"] {
		t.Fatalf("total %v < part %v", p.Total(), by["burn"])
	}
}

func TestParseCPUProfileRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{0x1f, 0x8b, 0, 1}, {0x0a, 0xff}, {}} {
		if _, err := ParseCPUProfile(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
}
