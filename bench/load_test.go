package bench

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
)

func TestBuckets(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 255, 256, 257, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucket of %d = %d, before %d", v, i, prev)
		}
		if i >= numBuckets {
			t.Fatalf("bucket of %d = %d, out of range", v, i)
		}
		lo, hi := bucketRange(i)
		if v < lo || (v >= hi && hi != 0) {
			t.Fatalf("%d in bucket %d = [%d, %d)", v, i, lo, hi)
		}
		if v >= 256 && float64(hi-lo)/float64(lo) > 1.0/128 {
			t.Fatalf("bucket %d = [%d, %d) too wide", i, lo, hi)
		}
		prev = i
	}
}

func TestQuantile(t *testing.T) {
	var h Histogram
	if h.Quantile(.5) != 0 {
		t.Fatal("empty histogram")
	}
	r := rand.New(rand.NewPCG(1, 2))
	var all []time.Duration
	for range 10000 {
		d := time.Duration(r.ExpFloat64() * float64(time.Millisecond))
		all = append(all, d)
		h.Record(d)
	}
	slices.Sort(all)
	for _, q := range []float64{.5, .9, .99, 1} {
		want := all[max(int(q*float64(len(all)))-1, 0)]
		got := h.Quantile(q)
		if diff := float64(got-want) / float64(want); diff > .01 || diff < -.01 {
			t.Errorf("q%.2f = %v, want %v ±1%%", q, got, want)
		}
	}
	var m Histogram
	m.Merge(&h)
	m.Merge(&h)
	if m.Count() != 20000 || m.Quantile(.5) != h.Quantile(.5) || m.Max() != h.Max() {
		t.Fatal("merge")
	}
}

// A short, bounded load on the demo server: every call is answered and
// checked.
func TestRunDemo(t *testing.T) {
	srv := httptest.NewServer(mcpgate.MCPHandler(mcpgate.DemoServer("test")))
	defer srv.Close()
	ctx := context.Background()
	tgt := &Target{Name: "T", URL: srv.URL, Client: NewClient(4, 5*time.Second)}
	ss, err := OpenAll(ctx, tgt, 4)
	if err != nil {
		t.Fatal(err)
	}
	r := Run(ctx, "T", ss, 2*time.Second, 200)
	if r.Errors != 0 || r.OK != 200 {
		t.Fatalf("%d ok, %d errors (%s)", r.OK, r.Errors, r.FirstError)
	}
	if r.Latency.Count() != 200 || r.Latency.Quantile(.5) <= 0 || r.RPS() <= 0 {
		t.Fatalf("latency %d %v", r.Latency.Count(), r.Latency.Quantile(.5))
	}
	for _, s := range ss {
		s.Close(ctx)
	}
}

// Wrong answers count as errors.
func TestRunCountsWrongAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Mcp-Session-Id", "s1")
		switch {
		case r.Header.Get("Mcp-Session-Id") == "":
			w.Write([]byte(`{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25"}}`))
		case strings.Contains(r.Header.Get("Accept"), "text/event-stream") && r.ContentLength > 60:
			w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"something else"}]}}`))
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	tgt := &Target{Name: "W", URL: srv.URL, Client: NewClient(1, 5*time.Second)}
	ss, err := OpenAll(ctx, tgt, 1)
	if err != nil {
		t.Fatal(err)
	}
	r := Run(ctx, "W", ss, 2*time.Second, 5)
	if r.OK != 0 || r.Errors != 5 || !strings.Contains(r.FirstError, "unexpected answer") {
		t.Fatalf("%d ok, %d errors (%s)", r.OK, r.Errors, r.FirstError)
	}
}
