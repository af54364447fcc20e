package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench"
)

// The whole harness, briefly: token flow, sessions, one short round each.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway and loads it for a moment")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := options{duration: 200 * time.Millisecond, rounds: 1, conns: 2, maxRequests: 500,
		timeout: 5 * time.Second, logFormat: "discard", quiet: 0.1}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code, err := run(ctx, o, &out, &errs)
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v\n%s\n%s", code, err, out.String(), errs.String())
	}
	for _, want := range []string{"| **total** |", "failed requests: 0", "A/B throughput, ratio of totals"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestReportCountsErrors(t *testing.T) {
	a := &bench.Result{Target: "A", Conns: 1, Elapsed: time.Second, OK: 10, Errors: 2}
	b := &bench.Result{Target: "B", Conns: 1, Elapsed: time.Second, OK: 10}
	a.Latency.Record(time.Millisecond)
	b.Latency.Record(time.Millisecond)
	var out bytes.Buffer
	o := options{duration: time.Second, rounds: 1, conns: 1, logFormat: "discard", quiet: 0.1}
	if n := report(&out, o, [][2]*bench.Result{{a, b}}, 1); n != 3 {
		t.Fatalf("%d errors, want 3", n)
	}
	if !strings.Contains(out.String(), "3 FAILED REQUESTS (1 in the warm-up)") {
		t.Fatalf("no loud error line:\n%s", out.String())
	}
}
