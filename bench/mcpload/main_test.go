package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/bench"
	"github.com/mcpgate/mcpgate/bench/internal/benchtest"
)

// The whole harness, briefly: token flow, sessions, one short round each.
func TestRunSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway and loads it for a moment")
	}
	o := options{Options: bench.Options{Duration: 200 * time.Millisecond, Rounds: 1, Conns: 2, MaxOps: 500,
		Timeout: 5 * time.Second, LogFormat: "discard", Quiet: 0.1}}
	out := benchtest.Run(t, o.check, func(ctx context.Context, stdout, stderr io.Writer) (int, error) {
		return run(ctx, o, stdout, stderr)
	})
	benchtest.ReportHas(t, out, "| **total** |", "failed requests: 0", "A/B throughput, ratio of totals")
}

func TestReportCountsErrors(t *testing.T) {
	a := &bench.Result{Target: "A", Conns: 1, Elapsed: time.Second, OK: 10, Errors: 2}
	b := &bench.Result{Target: "B", Conns: 1, Elapsed: time.Second, OK: 10}
	a.Latency.Record(time.Millisecond)
	b.Latency.Record(time.Millisecond)
	var out bytes.Buffer
	o := options{Options: bench.Options{Duration: time.Second, Rounds: 1, Conns: 1, LogFormat: "discard", Quiet: 0.1}}
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
	o := options{Options: bench.Options{Duration: 300 * time.Millisecond, Rounds: 1, Conns: 2, MaxOps: 500,
		Timeout: 5 * time.Second, LogFormat: "discard", Quiet: 0.1, CPUProfile: filepath.Join(t.TempDir(), "cpu.pprof")},
		target: targetProxy, gwcpu: true}
	out := benchtest.Run(t, o.check, func(ctx context.Context, stdout, stderr io.Writer) (int, error) {
		return run(ctx, o, stdout, stderr)
	})
	benchtest.ReportHas(t, out, "-target proxy", "| **total** |", "failed requests: 0", "**flow through**",
		"the backend held 4 sessions before the rounds and 4 after", "mcpgate CPU per proxied request", "| mcpgate (`server=gateway`")
	for _, f := range []string{"cpu.A01.pprof", "cpu.B01.pprof"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(o.CPUProfile), f)); err != nil {
			t.Error(err)
		}
	}
}

// -gateway, briefly: A is an mcpgate binary built from this tree, in a
// process of its own; sessions flow through it, its process's CPU is
// measured, and it is stopped and its directory removed at the end.
func TestRunGatewayBinarySmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mcpgate, starts it and a backend and loads them for a moment")
	}
	o := options{Options: bench.Options{Duration: 300 * time.Millisecond, Rounds: 1, Conns: 2, MaxOps: 500,
		Timeout: 5 * time.Second, LogFormat: "text", Quiet: 0.1}, target: targetProxy, gwcpu: true}
	if runtime.GOOS != "linux" {
		o.gateway = "mcpgate"
		if err := o.check(); err == nil {
			t.Fatal("-gateway accepted off Linux, where the gateway's CPU cannot be read")
		}
		return
	}
	bin := filepath.Join(t.TempDir(), "mcpgate")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Built by mcpgate's own module, as make build builds it (and as the
	// e2e tests do, so that the build is usually cached).
	if out, err := exec.CommandContext(ctx, "go", "build", "-C", "../..", "-o", bin, "./cmd/mcpgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o.gateway = bin
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp) // where the gateway's directory goes

	out := benchtest.Run(t, o.check, func(ctx context.Context, stdout, stderr io.Writer) (int, error) {
		return run(ctx, o, stdout, stderr)
	})
	benchtest.ReportHas(t, out, "-target proxy -gateway", bin+" serve --upstream", "| **total** |", "failed requests: 0",
		"**flow through**", "the backend held 4 sessions before the rounds and 4 after",
		"the pprof-label estimate of mcpgate's CPU does not apply")
	m := regexp.MustCompile(`mcpgate CPU per proxied request \(the gateway process\): ([0-9.]+) (µs|ms)\*\*`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("report lacks the gateway process's CPU per request:\n%s", out)
	}
	if v, err := strconv.ParseFloat(m[1], 64); err != nil || v <= 0 {
		t.Errorf("the gateway process's CPU per request is %s %s, want a positive figure", m[1], m[2])
	}
	if strings.Contains(out, "server=gateway") {
		t.Errorf("the report gives the in-process pprof-label split, which does not apply to a gateway process:\n%s", out)
	}

	if left, _ := filepath.Glob(filepath.Join(tmp, "mcpload-gateway-*")); len(left) > 0 {
		t.Errorf("the gateway's directory is left: %v", left)
	}
	if pids := running(bin); len(pids) > 0 {
		t.Errorf("the gateway is still running after the run: pids %v", pids)
	}
}

// -streams, briefly: 20 idle streams through an mcpgate binary built from
// this tree, the calls around them, the memory per stream reported, and
// nothing left running.
func TestRunStreamsSmoke(t *testing.T) {
	if testing.Short() || runtime.GOOS != "linux" {
		t.Skip("builds mcpgate, starts it and a backend, opens streams through it")
	}
	bin := filepath.Join(t.TempDir(), "mcpgate")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-C", "../..", "-o", bin, "./cmd/mcpgate").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := options{Options: bench.Options{Duration: 200 * time.Millisecond, Rounds: 1, Conns: 2, MaxOps: 500,
		Timeout: 5 * time.Second, LogFormat: "text", Quiet: 0.1}, target: targetProxy, gateway: bin, streamsFlag: "20"}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	out := benchtest.Run(t, o.check, func(ctx context.Context, stdout, stderr io.Writer) (int, error) {
		return run(ctx, o, stdout, stderr)
	})
	benchtest.ReportHas(t, out, "## mcpload -streams", "| 20 | 20 streams open |", "| 20 | streams closed |",
		"KB of gateway RSS per idle stream", "tool calls with 20 streams open against without")
	// The Go heap comes from the gateway's gctrace, which has a line only
	// once a collection has run: not in every phase of a run this short.
	if strings.Contains(out, "ended while they should have stayed open") {
		t.Errorf("streams ended early:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "mcpload-gateway-*")); len(left) > 0 {
		t.Errorf("the gateway's directory is left: %v", left)
	}
	if pids := running(bin); len(pids) > 0 {
		t.Errorf("the gateway is still running after the run: pids %v", pids)
	}
}

// running lists the processes that run the executable path.
func running(path string) []string {
	var pids []string
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, exe := range exes {
		if target, err := os.Readlink(exe); err == nil && target == path {
			pids = append(pids, filepath.Base(filepath.Dir(exe)))
		}
	}
	return pids
}

func TestCheckGateway(t *testing.T) {
	base := options{Options: bench.Options{Duration: time.Second, Rounds: 1, Conns: 1, MaxOps: 1, Timeout: time.Second, LogFormat: "text"},
		target: targetProxy, gwcpu: true, gateway: "/tmp/mcpgate"}
	for _, c := range []struct {
		name string
		edit func(*options)
		ok   bool
	}{
		{"proxy", func(*options) {}, runtime.GOOS == "linux"},
		{"embedded target", func(o *options) { o.target = targetEmbedded }, false},
		{"log discarded", func(o *options) { o.LogFormat = "discard" }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base
			c.edit(&o)
			err := o.check()
			if (err == nil) != c.ok {
				t.Fatalf("check() = %v, want accepted: %v", err, c.ok)
			}
			if err == nil && o.gwcpu {
				t.Error("-gwcpu left on with -gateway: the in-process label split does not apply")
			}
		})
	}
}

func TestCheckTarget(t *testing.T) {
	o := options{Options: bench.Options{Duration: time.Second, Rounds: 1, Conns: 1, MaxOps: 1, Timeout: time.Second, LogFormat: "text"}, target: "sidecar"}
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

// The arithmetic of -streams: the bytes per stream, the gctrace line, the
// list of counts.
func TestStreamsArithmetic(t *testing.T) {
	for _, c := range []struct {
		before, after int64
		n             int
		want          float64
	}{
		{26 << 20, 266 << 20, 5000, 50331.648}, // the 26 → 266 MB for 5,000 streams: 48 KiB each
		{34_000_000, 50_000_000, 1000, 16_000},
		{50_000_000, 49_000_000, 1000, -1000}, // it fell
		{1, 2, 0, 0},
	} {
		if got := perStream(c.before, c.after, c.n); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("perStream(%d, %d, %d) = %v, want %v", c.before, c.after, c.n, got, c.want)
		}
	}

	log := []byte("time=2026-12-06T17:00:00Z level=INFO msg=listening\n" +
		"gc 1 @0.011s 1%: 0.012+0.51+0.003 ms clock, 0.024+0.1/0.4/0+0.006 ms cpu, 3->3->1 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n" +
		"gc 2 @9.5s 2%: 0.02+12+0.01 ms clock, 0.04+1/11/0+0.02 ms cpu, 70->71->66 MB, 132 MB goal, 8 MB stacks, 1 MB globals, 2 P\n" +
		"gc 3 @9.9s 2%: 0.02+1+0.01 ms clock, garbage that is not a trace line\n")
	g, ok := lastGC(log)
	if !ok || g != (gcTrace{live: 66, goal: 132, stacks: 8}) {
		t.Errorf("lastGC = %+v, %v; want the second line's live 66, goal 132, stacks 8", g, ok)
	}
	if _, ok := lastGC([]byte("no trace\n")); ok {
		t.Error("lastGC found a line in a log without gctrace")
	}

	// Two descriptors per stream in each process: 9,000 fit under a hard
	// limit of 20,000, 10,000 do not.
	if got := filesNeeded(9000); got != 18_512 {
		t.Errorf("filesNeeded(9000) = %d, want 18512", got)
	}
	if got := filesNeeded(10_000); got <= 20_000 {
		t.Errorf("filesNeeded(10000) = %d, want more than 20000", got)
	}

	if got, err := parseStreams("1000, 10000"); err != nil || !slices.Equal(got, []int{1000, 10000}) {
		t.Errorf("parseStreams = %v, %v; want [1000 10000]", got, err)
	}
	for _, bad := range []string{"", "0", "10001", "1000,x", "-5"} {
		if _, err := parseStreams(bad); err == nil {
			t.Errorf("parseStreams(%q) took it", bad)
		}
	}
}
