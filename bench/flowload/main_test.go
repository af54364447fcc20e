package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
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
	for _, st := range []string{"sqlite", "memory", "postgres"} {
		t.Run(st, func(t *testing.T) {
			o := options{storeKind: st, Options: bench.Options{Duration: 200 * time.Millisecond, Rounds: 1, Conns: 4, MaxOps: 200,
				Timeout: 5 * time.Second, LogFormat: "discard", Quiet: 0.1}, replicas: 1, grants: 50}
			if st == "postgres" {
				// Three gateways on the harness's own server: every step of a
				// flow and every refresh goes to another replica than the one
				// before, and every answer is checked.
				o.replicas, o.pool = 3, 4
			}
			out := benchtest.Run(t, o.check, func(ctx context.Context, stdout, stderr io.Writer) (int, error) {
				return run(ctx, o, stdout, stderr)
			})
			want := []string{"| **total** | flows |", "| **total** | refreshes |", "failed operations: 0", "target ≥ 2000/s", "target ≥ 4000/s"}
			want = append(want, "50 grants seeded", "memory after the rounds: this process")
			switch st {
			case "sqlite":
				want = append(want, "SQLite:", "writes per commit")
			case "postgres":
				want = append(want, "fsync on", "3 replicas in this process", "pool_max_conns=4 per replica", "the PostgreSQL server")
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
	if n := report(&out, o, "memory", "", []round{{n: 1, kind: kindFlows, res: r, pg: -1}}, warm); n != 3 {
		t.Fatalf("%d errors, want 3", n)
	}
	if !strings.Contains(out.String(), "3 FAILED OPERATIONS (1 in the warm-up)") {
		t.Fatalf("no loud error line:\n%s", out.String())
	}
}

func TestOptionsCheck(t *testing.T) {
	good := options{storeKind: "sqlite", replicas: 1, Options: bench.Options{Duration: time.Second, Rounds: 1, Conns: 1, MaxOps: 1, Timeout: time.Second, LogFormat: "text"}}
	if err := good.check(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []func(*options){
		func(o *options) { o.storeKind = "mysql" },
		func(o *options) { o.replicas = 3 }, // replicas share a PostgreSQL database only
		func(o *options) { o.dsn = "postgres://x@127.0.0.1/db" },
		func(o *options) { o.pool = 8 },
		func(o *options) { o.gateway = "/usr/bin/mcpgate" },
		func(o *options) { o.storeKind, o.replicas = "postgres", 0 },
		func(o *options) { o.storeKind, o.replicas = "postgres", 17 },
		func(o *options) { o.storeKind, o.pool = "postgres", -1 },
		func(o *options) { o.storeKind, o.dsn, o.pgFsyncOff = "postgres", "postgres://x@127.0.0.1/db", true },
		func(o *options) { o.grants = -1 },
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

// Requests alternate over the replicas, one by one, and keep the first
// replica's host as their Host.
func TestRouterRoundRobin(t *testing.T) {
	r := newRouter([]*replica{{base: "http://127.0.0.1:1001"}, {base: "http://127.0.0.1:1002"}, {base: "http://127.0.0.1:1003"}})
	var got []string
	for range 6 {
		got = append(got, r.pick())
	}
	want := "http://127.0.0.1:1001 http://127.0.0.1:1002 http://127.0.0.1:1003 http://127.0.0.1:1001 http://127.0.0.1:1002 http://127.0.0.1:1003"
	if strings.Join(got, " ") != want || r.host != "127.0.0.1:1001" {
		t.Fatalf("picked %v, host %q", got, r.host)
	}
}

func TestWithPostgresParams(t *testing.T) {
	got, err := withPostgresParams("postgres://u:p@127.0.0.1:5432/db?sslmode=disable", url.Values{"pool_max_conns": {"16"}})
	if err != nil || got != "postgres://u:p@127.0.0.1:5432/db?pool_max_conns=16&sslmode=disable" {
		t.Fatalf("%q, %v", got, err)
	}
	if _, err := withPostgresParams("host=127.0.0.1 user=u", nil); err == nil || strings.Contains(err.Error(), "user=u") {
		t.Fatalf("a key=value DSN: %v", err)
	}
}
