package bench

import (
	"bytes"
	"context"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// burnForProfile burns d of this process's CPU time (d of wall time where
// that cannot be read), within 10 s: on a busy machine d of wall time may
// get much less CPU. Whether or not the compiler inlines it, the profile
// names it: inlined frames are part of a sample's stack.
func burnForProfile(d time.Duration) uint64 {
	var x uint64 = 1
	start, t0 := SampleCPU(), time.Now()
	for {
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		now := SampleCPU()
		switch {
		case time.Since(t0) > 10*time.Second,
			start.ok && now.ok && now.self-start.self >= d,
			!(start.ok && now.ok) && time.Since(t0) >= d:
			return x
		}
	}
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

// A profile made by hand: the CPU is split exactly by label and by
// frame, inlined frames included, leaf first.
func TestParseCPUProfileSplit(t *testing.T) {
	burn := &profile.Function{ID: 1, Name: "burn"}
	serve := &profile.Function{ID: 2, Name: "serve"}
	gc := &profile.Function{ID: 3, Name: "runtime.gcBgMarkWorker"}
	inlined := &profile.Location{ID: 1, Line: []profile.Line{{Function: burn}, {Function: serve}}} // burn inlined into serve
	gcLoc := &profile.Location{ID: 2, Line: []profile.Line{{Function: gc}}}
	ms := int64(time.Millisecond)
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10 * ms,
		Function:   []*profile.Function{burn, serve, gc},
		Location:   []*profile.Location{inlined, gcLoc},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{inlined}, Value: []int64{3, 30 * ms}, Label: map[string][]string{"server": {"gateway"}}},
			{Location: []*profile.Location{inlined}, Value: []int64{5, 50 * ms}, Label: map[string][]string{"server": {"backend"}}},
			{Location: []*profile.Location{inlined}, Value: []int64{1, 10 * ms}, Label: map[string][]string{"server": {"gateway"}}},
			{Location: []*profile.Location{gcLoc}, Value: []int64{2, 20 * ms}},
		},
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ParseCPUProfile(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if got.Period != 10*time.Millisecond || got.Total() != 110*time.Millisecond || len(got.Samples) != 4 {
		t.Fatalf("period %v, total %v, %d samples; want 10ms, 110ms, 4", got.Period, got.Total(), len(got.Samples))
	}
	if s := got.Samples[0].Stack; len(s) != 2 || s[0] != "burn" || s[1] != "serve" {
		t.Errorf("stack %q, want [burn serve]", s)
	}
	by := got.Sum(func(s *ProfileSample) string {
		switch {
		case s.Labels != nil && s.Has("burn"):
			return s.Labels["server"]
		case s.Labels == nil && s.Has("runtime.gcBgMarkWorker"):
			return "gc"
		}
		return "other"
	})
	want := map[string]time.Duration{"gateway": 40 * time.Millisecond, "backend": 50 * time.Millisecond, "gc": 20 * time.Millisecond}
	if len(by) != len(want) {
		t.Errorf("classes %v, want %v", by, want)
	}
	for k, v := range want {
		if by[k] != v {
			t.Errorf("%s: %v, want %v", k, by[k], v)
		}
	}

	// Without a nanoseconds value, the count times the period.
	p.SampleType = p.SampleType[:1]
	for _, s := range p.Sample {
		s.Value = s.Value[:1]
	}
	buf.Reset()
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if got, err = ParseCPUProfile(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	if got.Total() != 110*time.Millisecond {
		t.Errorf("counts only: total %v, want 110ms", got.Total())
	}
}

func TestParseCPUProfileRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{{0x1f, 0x8b, 0, 1}, {0x0a, 0xff}, {}} {
		if _, err := ParseCPUProfile(b); err == nil {
			t.Errorf("%x: no error", b)
		}
	}
	// A well-formed profile of something else: allocations.
	var heap bytes.Buffer
	if err := pprof.Lookup("allocs").WriteTo(&heap, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCPUProfile(heap.Bytes()); err == nil {
		t.Error("an allocation profile was taken for a CPU profile")
	}
}
