package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench"
)

// The whole harness, briefly, on both stores: login through the pages,
// chains, one short round of each load, every answer checked.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway and loads it for a moment")
	}
	for _, st := range []string{"sqlite", "memory"} {
		t.Run(st, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o := options{storeKind: st, duration: 200 * time.Millisecond, rounds: 1, conns: 4, maxOps: 200,
				timeout: 5 * time.Second, logFormat: "discard", quiet: 0.1}
			if err := o.check(); err != nil {
				t.Fatal(err)
			}
			var out, errs bytes.Buffer
			code, err := run(ctx, o, &out, &errs)
			if err != nil || code != 0 {
				t.Fatalf("code %d, err %v\n%s\n%s", code, err, out.String(), errs.String())
			}
			want := []string{"| **total** | flows |", "| **total** | refreshes |", "failed operations: 0", "target ≥ 2000/s", "target ≥ 4000/s"}
			if st == "sqlite" {
				want = append(want, "SQLite:", "writes per commit")
			}
			for _, w := range want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestReportCountsErrors(t *testing.T) {
	r := &bench.Result{Target: kindFlows, Conns: 1, Elapsed: time.Second, OK: 10, Errors: 2}
	r.Latency.Record(time.Millisecond)
	warm := &bench.Result{Errors: 1}
	var out bytes.Buffer
	o := options{storeKind: "memory", only: kindFlows, duration: time.Second, rounds: 1, conns: 1, logFormat: "discard", quiet: 0.1}
	if n := report(&out, o, "memory", []round{{n: 1, kind: kindFlows, res: r}}, warm); n != 3 {
		t.Fatalf("%d errors, want 3", n)
	}
	if !strings.Contains(out.String(), "3 FAILED OPERATIONS (1 in the warm-up)") {
		t.Fatalf("no loud error line:\n%s", out.String())
	}
}

func TestOptionsCheck(t *testing.T) {
	good := options{storeKind: "sqlite", duration: time.Second, rounds: 1, conns: 1, maxOps: 1, timeout: time.Second, logFormat: "text"}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*options){
		func(o *options) { o.storeKind = "postgres" },
		func(o *options) { o.only = "everything" },
		func(o *options) { o.conns = 0 },
		func(o *options) { o.duration = 0 },
		func(o *options) { o.logFormat = "xml" },
	} {
		o := good
		bad(&o)
		if o.check() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
