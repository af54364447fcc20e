package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench"
	"github.com/mcpgate/mcpgate/bench/internal/benchtest"
)

// The whole harness, briefly, on both stores: login through the pages,
// chains, one short round of each load, every answer checked.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway and loads it for a moment")
	}
	for _, st := range []string{"sqlite", "memory"} {
		t.Run(st, func(t *testing.T) {
			o := options{storeKind: st, Options: bench.Options{Duration: 200 * time.Millisecond, Rounds: 1, Conns: 4, MaxOps: 200,
				Timeout: 5 * time.Second, LogFormat: "discard", Quiet: 0.1}}
			out := benchtest.Run(t, o.check, func(ctx context.Context, stdout, stderr io.Writer) (int, error) {
				return run(ctx, o, stdout, stderr)
			})
			want := []string{"| **total** | flows |", "| **total** | refreshes |", "failed operations: 0", "target ≥ 2000/s", "target ≥ 4000/s"}
			if st == "sqlite" {
				want = append(want, "SQLite:", "writes per commit")
			}
			benchtest.ReportHas(t, out, want...)
		})
	}
}

func TestReportCountsErrors(t *testing.T) {
	r := &bench.Result{Target: kindFlows, Conns: 1, Elapsed: time.Second, OK: 10, Errors: 2}
	r.Latency.Record(time.Millisecond)
	warm := &bench.Result{Errors: 1}
	var out bytes.Buffer
	o := options{storeKind: "memory", only: kindFlows, Options: bench.Options{Duration: time.Second, Rounds: 1, Conns: 1, LogFormat: "discard", Quiet: 0.1}}
	if n := report(&out, o, "memory", []round{{n: 1, kind: kindFlows, res: r}}, warm); n != 3 {
		t.Fatalf("%d errors, want 3", n)
	}
	if !strings.Contains(out.String(), "3 FAILED OPERATIONS (1 in the warm-up)") {
		t.Fatalf("no loud error line:\n%s", out.String())
	}
}

func TestOptionsCheck(t *testing.T) {
	good := options{storeKind: "sqlite", Options: bench.Options{Duration: time.Second, Rounds: 1, Conns: 1, MaxOps: 1, Timeout: time.Second, LogFormat: "text"}}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*options){
		func(o *options) { o.storeKind = "postgres" },
		func(o *options) { o.only = "everything" },
		func(o *options) { o.Conns = 0 },
		func(o *options) { o.Duration = 0 },
		func(o *options) { o.LogFormat = "xml" },
	} {
		o := good
		bad(&o)
		if o.check() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
