package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	if n := report(&out, o, [][2]*bench.Result{{a, b}}, 1, nil); n != 3 {
		t.Fatalf("%d errors, want 3", n)
	}
	if !strings.Contains(out.String(), "3 FAILED REQUESTS (1 in the warm-up)") {
		t.Fatalf("no loud error line:\n%s", out.String())
	}
}

// The proxy mode, briefly: the gateway as a reverse proxy to a go-sdk
// server, sessions checked, per-round CPU profiles split by label.
func TestRunProxySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway and a backend and loads them for a moment")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := options{duration: 300 * time.Millisecond, rounds: 1, conns: 2, maxRequests: 500,
		timeout: 5 * time.Second, logFormat: "discard", quiet: 0.1, target: targetProxy, gwcpu: true,
		cpuprofile: filepath.Join(t.TempDir(), "cpu.pprof")}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	code, err := run(ctx, o, &out, &errs)
	if err != nil || code != 0 {
		t.Fatalf("code %d, err %v\n%s\n%s", code, err, out.String(), errs.String())
	}
	for _, want := range []string{"-target proxy", "| **total** |", "failed requests: 0", "**flow through**",
		"the backend held 4 sessions before the rounds and 4 after", "mcpgate CPU per proxied request", "| mcpgate (`server=gateway`"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	for _, f := range []string{"cpu.A01.pprof", "cpu.B01.pprof"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(o.cpuprofile), f)); err != nil {
			t.Error(err)
		}
	}
}

func TestCheckTarget(t *testing.T) {
	o := options{duration: time.Second, rounds: 1, conns: 1, maxRequests: 1, timeout: time.Second, logFormat: "text", target: "sidecar"}
	if err := o.check(); err == nil {
		t.Fatal("-target sidecar accepted")
	}
	o.target = ""
	if err := o.check(); err != nil || o.target != targetEmbedded {
		t.Fatalf("empty -target: %v, %q", err, o.target)
	}
}

func TestRoundProfileName(t *testing.T) {
	for _, c := range []struct {
		path, target string
		round        int
		want         string
	}{
		{"cpu.pprof", "A", 3, "cpu.A03.pprof"},
		{"/tmp/x/cpu.pprof", "B", 12, "/tmp/x/cpu.B12.pprof"},
		{"cpu", "A", 1, "cpu.A01.pprof"},
		{"cpu.pprof", "A*", 0, "cpu.A*.pprof"},
	} {
		if got := roundProfileName(c.path, c.target, c.round); got != c.want {
			t.Errorf("roundProfileName(%q, %q, %d) = %q, want %q", c.path, c.target, c.round, got, c.want)
		}
	}
}

func TestEstimateGateway(t *testing.T) {
	us := time.Microsecond
	a := cpuSplit{requests: 1000, by: map[string]time.Duration{
		classGateway: 50_000 * us, classBackend: 100_000 * us, classGC: 30_000 * us, classRuntime: 20_000 * us}}
	b := cpuSplit{requests: 2000, by: map[string]time.Duration{
		classBackend: 200_000 * us, classGC: 40_000 * us, classRuntime: 30_000 * us}}
	e := estimateGateway(a, b)
	if e.own != 50*us || e.gc != 10*us || e.sched != 5*us || e.total != 65*us {
		t.Fatalf("%+v", e)
	}
	// Less unlabelled CPU per request through the gateway (noise) is not
	// subtracted from its own.
	b.by[classGC] = 100_000 * us
	if e := estimateGateway(a, b); e.total != 50*us {
		t.Fatalf("%+v", e)
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		s    bench.ProfileSample
		want string
	}{
		{bench.ProfileSample{Labels: map[string]string{"server": labelGateway}, Stack: []string{"runtime.gcAssistAlloc"}}, classGateway},
		{bench.ProfileSample{Labels: map[string]string{"server": labelBackend}}, classBackend},
		{bench.ProfileSample{Labels: map[string]string{"load": "A"}}, classLoad},
		{bench.ProfileSample{Labels: map[string]string{"x": "y"}}, classOther},
		{bench.ProfileSample{Stack: []string{"runtime.gcDrain", "runtime.gcBgMarkWorker"}}, classGC},
		{bench.ProfileSample{Stack: []string{"runtime.netpoll", "runtime.findRunnable"}}, classRuntime},
		{bench.ProfileSample{Stack: []string{"runtime/pprof.profileWriter"}}, classProfiler},
	} {
		if got := classify(&c.s); got != c.want {
			t.Errorf("%+v: %s, want %s", c.s, got, c.want)
		}
	}
}
