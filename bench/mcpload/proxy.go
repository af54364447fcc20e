package main

// -target proxy: the gateway as a reverse proxy (mcpgate serve --upstream)
// in front of a go-sdk server, against that server called directly; the
// split of the CPU by pprof label, and the check that sessions flow
// through.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/bench"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	targetEmbedded = "embedded"
	targetProxy    = "proxy"

	// pprof labels (key "server") of the two HTTP servers in proxy mode.
	labelGateway = "gateway"
	labelBackend = "backend"

	// The targets for the proxy mode.
	proxyRatioGoal = 0.85
	maxGatewayCPU  = 60 * time.Microsecond
	maxAddedP50    = 100 * time.Microsecond
)

// Classes of CPU samples; disjoint.
const (
	classGateway  = "gateway"  // goroutines labelled server=gateway
	classBackend  = "backend"  // server=backend
	classLoad     = "load"     // load=A or load=B
	classGC       = "gc"       // unlabelled GC workers, sweeper, scavenger
	classRuntime  = "runtime"  // other unlabelled: scheduler, netpoll, timers…
	classProfiler = "profiler" // runtime/pprof's own writer goroutine
	classOther    = "other"    // any other label
)

// cpuSplit is the CPU of one or more half-rounds of one target, by class.
type cpuSplit struct {
	requests int64
	by       map[string]time.Duration
	assist   time.Duration // GC assists by the gateway's goroutines (part of classGateway)
	alloc    uint64        // bytes allocated by the whole process (runtime/metrics)
	sysr     uint64        // read system calls of the whole process (/proc/self/io syscr)
	sysw     uint64        // write system calls (syscw)
}

func splitCPU(p *bench.CPUProfile, requests int64) cpuSplit {
	c := cpuSplit{requests: requests, by: map[string]time.Duration{}}
	for i := range p.Samples {
		s := &p.Samples[i]
		class := classify(s)
		c.by[class] += s.CPU
		if class == classGateway && s.Has("runtime.gcAssistAlloc") {
			c.assist += s.CPU
		}
	}
	return c
}

func classify(s *bench.ProfileSample) string {
	switch {
	case s.Labels["server"] == labelGateway:
		return classGateway
	case s.Labels["server"] == labelBackend:
		return classBackend
	case s.Labels["load"] != "":
		return classLoad
	case len(s.Labels) > 0:
		return classOther
	case s.Has("runtime/pprof.profileWriter"):
		return classProfiler
	case s.Has("runtime.gcBgMarkWorker") || s.Has("runtime.bgsweep") || s.Has("runtime.bgscavenge"):
		return classGC
	}
	return classRuntime
}

func (c *cpuSplit) add(x cpuSplit) {
	if c.by == nil {
		c.by = map[string]time.Duration{}
	}
	c.requests += x.requests
	c.assist += x.assist
	c.alloc += x.alloc
	c.sysr += x.sysr
	c.sysw += x.sysw
	for k, v := range x.by {
		c.by[k] += v
	}
}

// allocPerRequest is the bytes allocated per request.
func (c cpuSplit) allocPerRequest() float64 { return c.perRequestF(c.alloc) }

func (c cpuSplit) perRequestF(n uint64) float64 {
	if c.requests == 0 {
		return 0
	}
	return float64(n) / float64(c.requests)
}

// perRequest is the CPU of the classes per request.
func (c cpuSplit) perRequest(classes ...string) time.Duration {
	if c.requests == 0 {
		return 0
	}
	var t time.Duration
	for _, k := range classes {
		t += c.by[k]
	}
	return t / time.Duration(c.requests)
}

// profiled is every class but the profiler's own goroutine.
var profiled = []string{classGateway, classBackend, classLoad, classGC, classRuntime, classOther}

// gatewayEstimate is mcpgate's CPU per proxied request.
type gatewayEstimate struct {
	own       time.Duration // its goroutines
	gc, sched time.Duration // unlabelled CPU per request, A − B
	total     time.Duration // own + max(gc + sched, 0)
}

// estimateGateway charges the gateway with the CPU of its own goroutines
// (label server=gateway, GC assists included) and with the runtime work
// that no goroutine label explains (GC workers, scheduler, netpoller) that
// a request through it costs beyond a direct one: the unlabelled CPU per
// request of A rounds minus that of B rounds. The backend and the load
// generator do the same work per request in both, so that difference is
// what the gateway adds (its allocations, its goroutines' stacks to scan,
// its wake-ups). It is noisy, and never subtracted.
func estimateGateway(ta, tb cpuSplit) gatewayEstimate {
	e := gatewayEstimate{own: ta.perRequest(classGateway)}
	e.gc = ta.perRequest(classGC) - tb.perRequest(classGC)
	e.sched = ta.perRequest(classRuntime) - tb.perRequest(classRuntime)
	e.total = e.own + max(e.gc+e.sched, 0)
	return e
}

// profiledRun is bench.Run under a CPU profile of its own, kept in memory
// (and written next to -cpuprofile when given).
func profiledRun(ctx context.Context, o options, name string, round int, ss []*bench.Session) (*bench.Result, cpuSplit, error) {
	var buf bytes.Buffer
	allocs := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	if err := pprof.StartCPUProfile(&buf); err != nil {
		return nil, cpuSplit{}, fmt.Errorf("starting a CPU profile: %w", err)
	}
	metrics.Read(allocs)
	alloc0 := allocs[0].Value.Uint64()
	r0, w0, ioOK0 := syscallCounts()
	r := bench.Run(ctx, name, ss, o.Duration, o.MaxOps)
	r1, w1, ioOK1 := syscallCounts()
	metrics.Read(allocs)
	alloc1 := allocs[0].Value.Uint64()
	pprof.StopCPUProfile()
	if o.CPUProfile != "" {
		if err := os.WriteFile(roundProfileName(o.CPUProfile, name, round), buf.Bytes(), 0o644); err != nil {
			return nil, cpuSplit{}, err
		}
	}
	p, err := bench.ParseCPUProfile(buf.Bytes())
	if err != nil {
		return nil, cpuSplit{}, err
	}
	c := splitCPU(p, r.OK)
	c.alloc = alloc1 - alloc0
	if ioOK0 && ioOK1 {
		c.sysr, c.sysw = r1-r0, w1-w0
	}
	return r, c, nil
}

// syscallCounts reads syscr and syscw of /proc/self/io: the read and write
// system calls of this process so far (Linux only).
func syscallCounts() (reads, writes uint64, ok bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, 0, false
	}
	var nr, nw int
	for line := range strings.Lines(string(b)) {
		k, v, found := strings.Cut(strings.TrimSpace(line), ":")
		if !found {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "syscr":
			reads, nr = n, nr+1
		case "syscw":
			writes, nw = n, nw+1
		}
	}
	return reads, writes, nr == 1 && nw == 1
}

// roundProfileName is cpu.A03.pprof for path cpu.pprof, target A, round 3;
// with round 0, target is a glob (cpu.A*.pprof).
func roundProfileName(path, target string, round int) string {
	ext := filepath.Ext(path)
	base := strings.TrimSuffix(path, ext)
	if ext == "" {
		ext = ".pprof"
	}
	if round == 0 {
		return base + "." + target + ext
	}
	return fmt.Sprintf("%s.%s%02d%s", base, target, round, ext)
}

// proxyInfo is what the proxy mode adds to the report.
type proxyInfo struct {
	upstream string
	profiled bool
	rounds   []cpuSplit // A1, B1, A2, B2, …
	sessions *sessionCheck
	binary   *binaryInfo // -gateway: the gateway is that process
}

// gatewayCPU is mcpgate's CPU per proxied request in round i of rounds, or
// in all of them when i < 0; ok is false when the run did not measure it.
func (p *proxyInfo) gatewayCPU(rounds [][2]*bench.Result, i int) (d time.Duration, ok bool) {
	switch {
	case p == nil:
		return 0, false
	case p.binary != nil:
		return p.binary.perRequest(rounds, i, 0), len(p.binary.rounds) == 2*len(rounds)
	case len(p.rounds) != 2*len(rounds):
		return 0, false
	case i < 0:
		return estimateGateway(p.total(0), p.total(1)).total, true
	}
	return estimateGateway(p.rounds[2*i], p.rounds[2*i+1]).total, true
}

// total sums the splits of target k (0 A, 1 B).
func (p *proxyInfo) total(k int) cpuSplit {
	var c cpuSplit
	for i := k; i < len(p.rounds); i += 2 {
		c.add(p.rounds[i])
	}
	return c
}

// report prints the session check and mcpgate's CPU: the CPU split by
// label, or with -gateway the gateway process's.
func (p *proxyInfo) report(w io.Writer, rounds [][2]*bench.Result, a, b *bench.Result) {
	if p.sessions != nil {
		fmt.Fprintf(w, "- sessions (Mcp-Session-Id): %s\n", p.sessions.summary())
	}
	if p.binary != nil {
		p.binary.report(w, rounds, a, b)
		return
	}
	if !p.profiled || len(p.rounds) == 0 {
		return
	}
	ta, tb := p.total(0), p.total(1)
	e := estimateGateway(ta, tb)
	fmt.Fprintf(w, "- **mcpgate CPU per proxied request: %s**, target ≤ %s: **%s**. That is its own goroutines (pprof label server=%s, GC assists included) %s, plus the unlabelled runtime CPU a request through it costs beyond a direct one (A − B per request): GC workers %s, scheduler/netpoll %s\n",
		bench.FmtDur(e.total), bench.FmtDur(maxGatewayCPU), bench.Verdict(e.total <= maxGatewayCPU), labelGateway, bench.FmtDur(e.own), bench.FmtDur(e.gc), bench.FmtDur(e.sched))
	ca, cb := a.CPUPerRequest(), b.CPUPerRequest()
	fmt.Fprintf(w, "- cross-check, whole process (getrusage) A − B: %s per request: the above plus what the backend and the load generator spend more per request on A (table)\n",
		bench.FmtDur(ca-cb))
	if ta.sysr+ta.sysw+tb.sysr+tb.sysw > 0 {
		fmt.Fprintf(w, "- read/write system calls per request, whole process (/proc/self/io): A %.1f reads + %.1f writes, B %.1f + %.1f\n",
			ta.perRequestF(ta.sysr), ta.perRequestF(ta.sysw), tb.perRequestF(tb.sysr), tb.perRequestF(tb.sysw))
	}
	fmt.Fprintf(w, "\n")

	fmt.Fprintf(w, "CPU per request by pprof label, from a CPU profile of every half-round (%d requests through the gateway, %d direct):\n\n", ta.requests, tb.requests)
	fmt.Fprintf(w, "| per request | A: through mcpgate | B: direct | A − B |\n|---|---:|---:|---:|\n")
	line := func(name string, x, y time.Duration) {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", name, bench.FmtDur(x), bench.FmtDur(y), bench.FmtDur(x-y))
	}
	for _, l := range []struct {
		name    string
		classes []string
	}{
		{"mcpgate (`server=gateway`: its connections, guard, proxy, upstream transport)", []string{classGateway}},
		{"the go-sdk backend (`server=backend`)", []string{classBackend}},
		{"load generator (`load=A` / `load=B`)", []string{classLoad}},
		{"GC background workers, sweeper, scavenger (unlabelled)", []string{classGC}},
		{"scheduler, netpoll, other runtime (unlabelled)", []string{classRuntime}},
	} {
		line(l.name, ta.perRequest(l.classes...), tb.perRequest(l.classes...))
	}
	if ta.by[classOther]+tb.by[classOther] > 0 {
		line("other labels", ta.perRequest(classOther), tb.perRequest(classOther))
	}
	line("all profiled CPU", ta.perRequest(profiled...), tb.perRequest(profiled...))
	line("this process, getrusage", ca, cb)
	fmt.Fprintf(w, "\n")
	if ta.requests > 0 {
		fmt.Fprintf(w, "- of mcpgate's own %s: GC assists %s\n", bench.FmtDur(e.own), bench.FmtDur(ta.assist/time.Duration(ta.requests)))
	}
	fmt.Fprintf(w, "- bytes allocated per request (whole process): A %.0f, B %.0f\n", ta.allocPerRequest(), tb.allocPerRequest())
	fmt.Fprintf(w, "- the profiler's own goroutine: %s per request in A rounds, %s in B rounds (left out above)\n",
		bench.FmtDur(ta.perRequest(classProfiler)), bench.FmtDur(tb.perRequest(classProfiler)))
}

// sessionCheck records that Mcp-Session-Id flows through the proxy both
// ways: the IDs A's sessions got are the backend's own, and the calls
// through A reuse them (the backend, which requires the header, opens no
// new session during the rounds).
type sessionCheck struct {
	nA, nB           int // sessions opened through A and directly
	knownA, knownB   int // of them, IDs the backend holds
	shared           int // IDs both A and B got
	before, afterN   int // sessions the backend holds before and after the rounds
	afterDone        bool
	bogusA, foreignA int // status through A for a made-up ID and for one of B's
	bogusB           int // status directly at the backend for a made-up ID
}

func backendSessions(s *mcp.Server) map[string]bool {
	ids := map[string]bool{}
	for ss := range s.Sessions() {
		ids[ss.ID()] = true
	}
	return ids
}

func checkSessions(ctx context.Context, backend *mcp.Server, a, b *bench.Target, sessA, sessB []*bench.Session) (*sessionCheck, error) {
	ids := backendSessions(backend)
	c := &sessionCheck{nA: len(sessA), nB: len(sessB), before: len(ids)}
	ofA := map[string]bool{}
	for _, s := range sessA {
		ofA[s.ID()] = true
		if ids[s.ID()] {
			c.knownA++
		}
	}
	for _, s := range sessB {
		if ids[s.ID()] {
			c.knownB++
		}
		if ofA[s.ID()] {
			c.shared++
		}
	}
	var err error
	const bogus = "mcpload-made-up-session-id"
	if c.bogusA, err = callStatus(ctx, a, bogus); err != nil {
		return nil, err
	}
	if len(sessB) > 0 {
		if c.foreignA, err = callStatus(ctx, a, sessB[0].ID()); err != nil {
			return nil, err
		}
	}
	if c.bogusB, err = callStatus(ctx, b, bogus); err != nil {
		return nil, err
	}
	return c, nil
}

// after records how many sessions the backend holds after the rounds.
func (c *sessionCheck) after(backend *mcp.Server) {
	c.afterN, c.afterDone = len(backendSessions(backend)), true
}

func (c *sessionCheck) ok() bool {
	return c.knownA == c.nA && c.knownB == c.nB && c.shared == 0 &&
		(!c.afterDone || c.afterN == c.before) &&
		c.bogusA == http.StatusNotFound && c.foreignA == http.StatusNotFound && c.bogusB == http.StatusNotFound
}

func (c *sessionCheck) summary() string {
	var b strings.Builder
	if c.ok() {
		b.WriteString("**flow through** — ")
	} else {
		b.WriteString("**PROBLEM** — ")
	}
	fmt.Fprintf(&b, "the %d sessions opened through the gateway got IDs the backend issued (%d of %d found among its sessions, %d shared with the %d direct ones)", c.nA, c.knownA, c.nA, c.shared, c.nB)
	if c.afterDone {
		fmt.Fprintf(&b, "; the backend held %d sessions before the rounds and %d after, so every call through the gateway carried its session's ID (without it the go-sdk would open a new session)", c.before, c.afterN)
	}
	fmt.Fprintf(&b, "; through the gateway a made-up ID got HTTP %d and an ID opened directly at the backend HTTP %d (the proxy binds sessions to the user who opened them, SESS-3); directly, a made-up ID got HTTP %d", c.bogusA, c.foreignA, c.bogusB)
	return b.String()
}

// callStatus makes one tools/call of echo on t with Mcp-Session-Id sid and
// returns the HTTP status.
func callStatus(ctx context.Context, t *bench.Target, sid string) (int, error) {
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", bench.ProtocolVersion)
	req.Header.Set("Mcp-Session-Id", sid)
	if t.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Token)
	}
	resp, err := t.Client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return resp.StatusCode, nil
}
