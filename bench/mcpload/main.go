// Command mcpload measures what mcpgate's token check costs an MCP server:
// the throughput and latency of tools/call through the gateway's /mcp
// against the same MCP server served directly, in one process.
//
// It starts, on loopback listeners:
//
//   - A: a Gateway from mcpgate.New with one resource, /mcp, served by
//     mcpgate.DemoServer (the demo server of mcpgate serve, tools whoami
//     and echo) through mcpgate.MCPHandler, a SQLite store on a temporary
//     file and a local user. The harness gets an access token once through the real
//     flow: POST /register, /authorize walked by the headless browser of
//     e2e/browser (login and consent), POST /token. Every MCP request then
//     carries it, and the gateway checks it on every request.
//   - B: the same go-sdk server (mcpgate.DemoServer served by mcpgate.MCPHandler,
//     as in A) without any auth.
//
// Each of -conns sessions per target does initialize and
// notifications/initialized once, then loops tools/call of echo with its
// Mcp-Session-Id, one request in flight, reading and checking every answer
// (HTTP 200 and the echoed text). After a warm-up of each target, rounds
// alternate A, B, A, B… and the command prints a Markdown table to stdout:
// requests/s, p50 and p99 latency per round and in total, and the A/B
// throughput ratio (the mean of the per-round ratios and the ratio of the
// totals). Progress goes to stderr.
//
// With -target proxy, A is instead the gateway as a reverse proxy, as
// `mcpgate serve --upstream` builds it: mcpgate.New with the resource
// {Path: "/mcp", Upstream: B's URL}, B being a go-sdk MCP server
// (mcpgate.DemoServer behind a default mcp.NewStreamableHTTPHandler, sessions on)
// on a loopback listener of its own, called directly. The report adds the A/B targets of the proxy, a check
// that Mcp-Session-Id flows through (A's session IDs are the backend's, the
// backend opens no new session during the rounds, foreign and made-up IDs
// are refused), and mcpgate's CPU per proxied request: every half-round
// runs under a CPU profile of its own, the gateway's server goroutines
// carry the pprof label server=gateway and the backend's server=backend,
// and the gateway is charged with its labelled CPU plus the unlabelled
// runtime CPU (GC workers, scheduler) a request through it costs beyond a
// direct one.
//
// With -gateway PATH as well, A is a built mcpgate binary in a process of
// its own, as it runs in production: mcpload starts `PATH serve --listen
// 127.0.0.1:PORT --data-dir TMP --store memory --local-user bench:…
// --upstream <B>/mcp --log-format text` (-log json for json), with the
// binary's log going to a file in TMP, waits until /healthz answers, gets
// the token through the same flow, and at the end stops it (SIGTERM, then
// SIGKILL after 10 s) and removes TMP, on failure too. mcpgate's CPU per
// proxied request is then the CPU time of that process (its CPU-time
// clock: every thread, in nanoseconds) during the A rounds over their
// requests; the label split does not apply. That CPU belongs to the
// system under test: CPU/req A counts it and the "other processes" figure
// that marks rounds disturbed leaves it out. The sessions check is the
// same, the backend being in this process still. To compare two trees,
// build a binary from each and run -gateway OLD and -gateway NEW in turn.
//
// With -streams N,… as well (-target proxy -gateway PATH), mcpload
// measures idle GET event streams instead of the A/B rounds (streams.go):
// for each N, on a fresh backend and gateway (started with a second local
// user whose sessions hold the streams, per-user caps of 10,000 sessions
// and streams, no cap per address, and GODEBUG=gctrace=1), it runs -rounds
// rounds of tool calls at -conns connections, reads the gateway's RSS
// (VmRSS, once it stops moving) and Go memory (the last gctrace line of its
// log: live heap and stacks), opens N real MCP sessions (initialize,
// notifications/initialized) each with its GET stream (Accept:
// text/event-stream, Mcp-Session-Id) on a connection of its own, reads
// them again, runs the calls again with the streams open, closes the
// streams and runs the calls a third time; it reports the memory per
// stream and the calls with streams against without. It raises the
// open-file limit first (the gateway inherits it); each stream takes two
// descriptors in each process.
//
// Any failed request (warm-up included) is reported loudly on stderr and
// makes the command exit with status 1.
//
// Usage:
//
//	cd bench   # the harness is a module of its own
//	go run ./mcpload [-conns 32] [-rounds 15] [-duration 2s] [-warmup 2s]
//	go run ./mcpload -conns 1 -rounds 3 -duration 5s   # latency
//	go run ./mcpload -cpuprofile cpu.pprof
//	go tool pprof -tagfocus=server=A -top cpu.pprof          # the gateway's share
//	go run ./mcpload -target proxy                      # the reverse proxy
//	go run ./mcpload -target proxy -cpuprofile cpu.pprof
//	go tool pprof -tagfocus=server=gateway -top cpu.A*.pprof  # its A half-rounds
//	go -C .. build -o /tmp/new/mcpgate ./cmd/mcpgate
//	go run ./mcpload -target proxy -gateway /tmp/new/mcpgate  # a binary, its own process
//	go run ./mcpload -target proxy -gateway /tmp/new/mcpgate -streams 1000,9000 -rounds 3
//
// With -cpuprofile, the measured rounds are profiled. The goroutines serving
// A carry the pprof label server=A, those serving B server=B (server=gateway
// and server=backend with -target proxy), and the load generator's load=A
// and load=B. With -target proxy there is one profile per target and round,
// cpu.A01.pprof, cpu.B01.pprof, …; go tool pprof merges the files it is
// given. -memprofile writes an allocation profile at the end.
//
// Load and servers share the machine: the figures are for comparing A with
// B on the same run, not absolute capacity. Each round also reports this
// process's CPU time per request, which moves much less than requests/s
// when other processes take CPU, and how much CPU other processes took
// (from /proc/stat). See docs/benchmarks.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/bench"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store/sqlite"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	user     = "bench"
	password = "mcpload bench password 1"
	callback = "http://127.0.0.1:33420/callback" // never requested: the browser stops at the redirect
)

type options struct {
	bench.Options
	target      string // targetEmbedded or targetProxy
	gwcpu       bool   // proxy mode: profile each half-round to split CPU by label
	gateway     string // proxy mode: a built mcpgate binary to run as A, instead of mcpgate.New in this process
	streamsFlag string
	streams     []int // with gateway: counts of idle event streams to measure, instead of the A/B rounds
	metrics     bool  // the in-process gateway counts in Prometheus metrics (Config.Metrics)
}

func main() {
	var o options
	flag.DurationVar(&o.Duration, "duration", 2*time.Second, "length of each measured round, per target")
	flag.IntVar(&o.Rounds, "rounds", 15, "measured rounds per target (A and B alternate); many short rounds average out a noisy machine better than a few long ones")
	flag.IntVar(&o.Conns, "conns", 32, "concurrent sessions per target, each with its own keep-alive connection and one request in flight")
	flag.DurationVar(&o.Warmup, "warmup", 2*time.Second, "warm-up per target before the rounds (not reported; errors still count)")
	flag.Int64Var(&o.MaxOps, "max-requests", 2_000_000, "cap on the requests of one round of one target")
	flag.DurationVar(&o.Timeout, "timeout", 10*time.Second, "timeout of one request")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile (go tool pprof -sample_index=alloc_space) to this file at the end")
	flag.Float64Var(&o.Quiet, "quiet", 0.1, "a round is quiet when other processes took at most this many cores (from /proc/stat); disturbed rounds are marked and left out of a second summary")
	flag.StringVar(&o.target, "target", targetEmbedded, "what A is: embedded (the gateway's own /mcp, the demo server inside it) or proxy (the gateway as a reverse proxy, as with `mcpgate serve --upstream`, to a go-sdk server that B calls directly)")
	flag.BoolVar(&o.gwcpu, "gwcpu", true, "with -target proxy: take a CPU profile of every half-round and split the CPU by pprof label, to report mcpgate's CPU per proxied request (not with -gateway: the gateway is another process, measured whole)")
	flag.StringVar(&o.gateway, "gateway", "", "with -target proxy: a built mcpgate binary; A is then `PATH serve --upstream B` in a process of its own, and mcpgate's CPU is that process's")
	flag.StringVar(&o.streamsFlag, "streams", "", "with -target proxy -gateway: counts of idle GET event streams, like 1000,10000; for each, on a fresh gateway, the gateway's memory per stream and tool calls at -conns connections with and without them open (-rounds rounds of -duration in each state), instead of the A/B rounds")
	flag.BoolVar(&o.metrics, "metrics", false, "the in-process gateway (not -gateway) keeps Prometheus metrics (mcpgate.Config.Metrics, as --metrics-listen does), to measure what they cost")
	flag.StringVar(&o.LogFormat, "log", "text", "the gateway's log: text (as mcpgate serve logs, one line per request), json, or discard (mcpgate.New's default); text and json write to io.Discard: formatting cost, no I/O. With -gateway: the binary's --log-format, written to a temporary file")
	bench.Main("mcpload", "Compares tools/call through mcpgate's /mcp (A) with the same MCP server without auth (B).\nWith -target proxy, A is the gateway proxying to a go-sdk server and B is that server, called directly.", o.check,
		func(ctx context.Context, stdout, stderr io.Writer) (int, error) { return run(ctx, o, stdout, stderr) })
}

func (o *options) check() error {
	if err := o.Options.Check("-max-requests"); err != nil {
		return err
	}
	switch o.target {
	case targetEmbedded, targetProxy:
	case "":
		o.target = targetEmbedded
	default:
		return fmt.Errorf("-target %q: want %s or %s", o.target, targetEmbedded, targetProxy)
	}
	if o.gateway != "" {
		switch {
		case o.target != targetProxy:
			return errors.New("-gateway needs -target proxy")
		case o.LogFormat == "discard":
			return errors.New("-log discard: the mcpgate binary always logs; use text (its default) or json")
		case runtime.GOOS != "linux":
			return errors.New("-gateway needs Linux (the gateway's CPU time is read from the kernel)")
		}
		o.gwcpu = false
	}
	if o.streamsFlag != "" {
		if o.gateway == "" {
			return errors.New("-streams needs -target proxy -gateway PATH")
		}
		var err error
		if o.streams, err = parseStreams(o.streamsFlag); err != nil {
			return err
		}
	}
	return nil
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) (code int, err error) {
	if len(o.streams) > 0 {
		return runStreams(ctx, o, stdout, stderr)
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	// B, and in proxy mode A's upstream: the go-sdk server.
	var (
		baseA, baseB string
		backend      *mcp.Server // proxy mode: the server behind both A and B
		bin          *binaryInfo // -gateway: A is that binary, in a process of its own
	)
	if o.target == targetProxy {
		backend = mcpgate.DemoServer("bench")
		// A stock go-sdk handler, default options (DNS-rebinding
		// protection on, sessions), as a third-party backend would be.
		h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return backend }, nil)
		var stopB func()
		if baseB, stopB, err = bench.Serve(ctx, labelBackend, h); err != nil {
			return 0, err
		}
		defer stopB()
	}
	if o.gateway != "" {
		gp, gerr := startGateway(setupCtx, o.gateway, baseB+"/mcp", o.LogFormat, nil, nil)
		if gerr != nil {
			return 0, gerr
		}
		// Deferred before the sessions' Close below, so run after it:
		// the sessions through A end while the gateway still runs.
		defer func() { err = errors.Join(err, gp.stop()) }()
		bin = &binaryInfo{proc: gp}
		baseA = gp.base
		logf("gateway: %s (%s, sha256 %s…), pid %d, log in %s", gp.path, gp.version, gp.sum, gp.cmd.Process.Pid, gp.logPath)
	} else {
		upstream := ""
		if o.target == targetProxy {
			upstream = baseB + "/mcp"
		}
		var stopA func()
		if baseA, stopA, err = inProcessGateway(ctx, setupCtx, o, upstream); err != nil {
			return 0, err
		}
		defer stopA()
	}
	if o.target == targetEmbedded {
		// B: the same go-sdk server, no auth.
		var stopB func()
		if baseB, stopB, err = bench.Serve(ctx, "B", mcpgate.MCPHandler(mcpgate.DemoServer("bench"))); err != nil {
			return 0, err
		}
		defer stopB()
	}

	token, err := accessToken(setupCtx, baseA, user, password)
	if err != nil {
		return 0, fmt.Errorf("getting an access token: %w", err)
	}
	if err := mustRefuse(setupCtx, baseA+"/mcp"); err != nil {
		return 0, err
	}
	if o.target == targetProxy {
		logf("A: %s/mcp through mcpgate, proxied to %s/mcp (token %d bytes, checked on every request)", baseA, baseB, len(token))
		logf("B: %s/mcp, the same go-sdk server direct, no auth", baseB)
	} else {
		logf("A: %s/mcp through mcpgate (token %d bytes, checked on every request)", baseA, len(token))
		logf("B: %s/mcp direct, no auth", baseB)
	}

	a := &bench.Target{Name: "A", URL: baseA + "/mcp", Token: token, Client: bench.NewClient(o.Conns, o.Timeout)}
	b := &bench.Target{Name: "B", URL: baseB + "/mcp", Client: bench.NewClient(o.Conns, o.Timeout)}
	sessA, err := bench.OpenAll(setupCtx, a, o.Conns)
	if err != nil {
		return 0, err
	}
	sessB, err := bench.OpenAll(setupCtx, b, o.Conns)
	if err != nil {
		return 0, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, s := range append(sessA, sessB...) {
			s.Close(cctx)
		}
	}()
	logf("%d sessions per target; GOMAXPROCS=%d", o.Conns, runtime.GOMAXPROCS(0))

	var px *proxyInfo
	if o.target == targetProxy {
		px = &proxyInfo{upstream: baseB + "/mcp", profiled: o.gwcpu, binary: bin}
		if px.sessions, err = checkSessions(setupCtx, backend, a, b, sessA, sessB); err != nil {
			return 0, fmt.Errorf("sessions through the proxy: %w", err)
		}
		logf("sessions: %s", px.sessions.summary())
	}

	// The sessions of A and B, in the order of a round's halves.
	targets := []struct {
		name string
		ss   []*bench.Session
	}{{"A", sessA}, {"B", sessB}}
	var warmErrs int64
	var warmFirst string
	if o.Warmup > 0 {
		for _, t := range targets {
			r := bench.Run(ctx, t.name, t.ss, o.Warmup, o.MaxOps)
			logf("warm-up %s: %.0f req/s, %d errors", t.name, r.RPS(), r.Errors)
			warmErrs += r.Errors
			if warmFirst == "" {
				warmFirst = r.FirstError
			}
		}
	}

	// In proxy mode every half-round has its own CPU profile, so that the
	// CPU no goroutine label explains (GC workers, the scheduler) can be
	// told apart between A and B rounds. Otherwise one profile covers all
	// the measured rounds, as before.
	perRound := px != nil && px.profiled
	stopProfile := func() {}
	if o.CPUProfile != "" && !perRound {
		if stopProfile, err = bench.StartCPUProfile(o.CPUProfile); err != nil {
			return 0, err
		}
		defer stopProfile()
	}
	var rounds [][2]*bench.Result
	for i := range o.Rounds {
		if ctx.Err() != nil {
			break
		}
		var res [2]*bench.Result
		for k, t := range targets {
			switch {
			case bin != nil:
				r, err := bin.run(ctx, o, t.name, t.ss)
				if err != nil {
					return 0, err
				}
				res[k] = r
			case perRound:
				r, split, err := profiledRun(ctx, o, t.name, i+1, t.ss)
				if err != nil {
					return 0, err
				}
				res[k] = r
				px.rounds = append(px.rounds, split)
			default:
				res[k] = bench.Run(ctx, t.name, t.ss, o.Duration, o.MaxOps)
			}
		}
		ra, rb := res[0], res[1]
		rounds = append(rounds, res)
		extra := ""
		switch {
		case bin != nil:
			extra = fmt.Sprintf(" | mcpgate process CPU/req %s", bench.FmtDur(bin.perRequest(rounds, i, 0)))
		case perRound:
			n := len(px.rounds)
			extra = fmt.Sprintf(" | mcpgate CPU/req %s", bench.FmtDur(estimateGateway(px.rounds[n-2], px.rounds[n-1]).total))
		}
		logf("round %d: A %.0f req/s (p50 %s, p99 %s, %d errors, others' CPU %s) | B %.0f req/s (p50 %s, p99 %s, %d errors, others' CPU %s) | A/B %.3f%s",
			i+1, ra.RPS(), bench.FmtDur(ra.Latency.Quantile(.5)), bench.FmtDur(ra.Latency.Quantile(.99)), ra.Errors, bench.FmtCPU(ra.CPU),
			rb.RPS(), bench.FmtDur(rb.Latency.Quantile(.5)), bench.FmtDur(rb.Latency.Quantile(.99)), rb.Errors, bench.FmtCPU(rb.CPU), bench.Ratio(ra.RPS(), rb.RPS()), extra)
	}
	if o.CPUProfile != "" {
		if perRound {
			logf("CPU profiles: %s (one per target and round; go tool pprof -tagfocus=server=%s -top %s)", roundProfileName(o.CPUProfile, "*", 0), labelGateway, roundProfileName(o.CPUProfile, "A*", 0))
		} else {
			stopProfile()
			focus := "A"
			switch {
			case bin != nil:
				focus = labelBackend // the gateway is another process
			case o.target == targetProxy:
				focus = labelGateway
			}
			logf("CPU profile: %s (go tool pprof -tagfocus=server=%s -top %s)", o.CPUProfile, focus, o.CPUProfile)
		}
	}
	if len(rounds) == 0 {
		return 0, errors.New("interrupted before the first round")
	}
	if px != nil {
		px.sessions.after(backend)
	}
	if bin != nil {
		if err := bin.proc.exited(); err != nil {
			return 0, err
		}
		bin.logSize = bin.proc.logSize()
	}
	if o.MemProfile != "" {
		if err := bench.WriteAllocProfile(o.MemProfile); err != nil {
			return 0, err
		}
		logf("allocation profile: %s (go tool pprof -sample_index=alloc_space -top %s)", o.MemProfile, o.MemProfile)
	}

	errs := report(stdout, o, rounds, warmErrs, px)
	if errs > 0 {
		first := warmFirst
		for _, r := range rounds {
			for _, x := range r {
				if first == "" {
					first = x.FirstError
				}
			}
		}
		fmt.Fprintf(stderr, "\n!!! mcpload: %d FAILED REQUESTS (warm-up included): the figures are not valid.\n!!! first error: %s\n\n", errs, first)
		return 1, nil
	}
	if px != nil && !px.sessions.ok() {
		fmt.Fprintf(stderr, "\n!!! mcpload: sessions did not flow through the proxy: %s\n\n", px.sessions.summary())
		return 1, nil
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "mcpload: interrupted after %d of %d rounds\n", len(rounds), o.Rounds)
		return 1, nil
	}
	return 0, nil
}

// inProcessGateway serves A in this process: a Gateway from mcpgate.New on
// SQLite (a temporary file) with the local user, and with upstream set, as
// `mcpgate serve --upstream URL` builds it, one resource, /mcp, proxied to
// it. stop shuts it down and removes the file.
func inProcessGateway(ctx, setupCtx context.Context, o options, upstream string) (string, func(), error) {
	var undo []func() // run last first, as deferred calls
	stop := func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	fail := func(err error) (string, func(), error) {
		stop()
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "mcpload-")
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { os.RemoveAll(dir) })
	st, err := sqlite.Open(setupCtx, filepath.Join(dir, "mcpgate.db"))
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { st.Close() })
	cfg, err := bench.GatewayConfig(setupCtx, st, user, password, o.Logger())
	if err != nil {
		return fail(err)
	}
	if o.metrics {
		cfg.Metrics = mcpgate.NewMetrics()
	}
	label := "A"
	if upstream != "" {
		cfg.Resources = []mcpgate.Resource{{Path: "/mcp", Upstream: upstream}}
		label = labelGateway
	}
	gw, err := mcpgate.New(setupCtx, cfg)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, func() { gw.Close(context.Background()) })
	base, stopA, err := bench.Serve(ctx, label, gw)
	if err != nil {
		return fail(err)
	}
	undo = append(undo, stopA)
	return base, stop, nil
}

// summary sums rounds up.
type summary struct {
	n                 int
	total             [2]bench.Result
	mean, lo, hi, tot float64 // A/B req/s: mean, min, max of per-round ratios; ratio of totals
	se, median        float64 // standard error of the mean and median of the per-round ratios
	cpu               float64 // B/A CPU per request
}

func summarize(rounds [][2]*bench.Result) summary {
	s := summary{n: len(rounds), lo: math.Inf(1), hi: math.Inf(-1)}
	var ratios []float64
	for _, r := range rounds {
		for k, x := range r {
			t := &s.total[k]
			t.OK += x.OK
			t.Errors += x.Errors
			t.Elapsed += x.Elapsed
			t.Latency.Merge(&x.Latency)
			t.CPU = bench.AddCPU(t.CPU, x.CPU, t.Elapsed-x.Elapsed, x.Elapsed)
		}
		x := bench.Ratio(r[0].RPS(), r[1].RPS())
		ratios = append(ratios, x)
		s.mean += x
		s.lo, s.hi = min(s.lo, x), max(s.hi, x)
	}
	if s.n > 0 {
		s.mean /= float64(s.n)
		slices.Sort(ratios)
		s.median = (ratios[(s.n-1)/2] + ratios[s.n/2]) / 2
	}
	if s.n > 1 {
		var ss float64
		for _, x := range ratios {
			ss += (x - s.mean) * (x - s.mean)
		}
		s.se = math.Sqrt(ss/float64(s.n-1)) / math.Sqrt(float64(s.n))
	}
	s.tot = bench.Ratio(s.total[0].RPS(), s.total[1].RPS())
	s.cpu = bench.Ratio(float64(s.total[1].CPUPerRequest()), float64(s.total[0].CPUPerRequest()))
	return s
}

// quiet reports whether other processes took at most threshold cores
// during both halves of a round.
func quiet(r [2]*bench.Result, threshold float64) bool {
	return r[0].Quiet(threshold) && r[1].Quiet(threshold)
}

// report prints the Markdown table and returns the number of failed
// requests, warm-up included. px is nil in embedded mode.
func report(w io.Writer, o options, rounds [][2]*bench.Result, warmErrs int64, px *proxyInfo) int64 {
	all := summarize(rounds)
	var clean [][2]*bench.Result
	for _, r := range rounds {
		if quiet(r, o.Quiet) {
			clean = append(clean, r)
		}
	}
	_, gwCol := px.gatewayCPU(rounds, -1)

	switch {
	case px != nil && px.binary != nil:
		gp := px.binary.proc
		fmt.Fprintf(w, "## mcpload -target proxy -gateway: tools/call echo through the mcpgate binary as a reverse proxy, in a process of its own (A) vs the same go-sdk server direct (B)\n\n")
		fmt.Fprintf(w, "%d connections per target, %d rounds of %s per target (A, B alternating), warm-up %s; %s; gateway: `%s serve --upstream %s --store memory --log-format %s` (%s, sha256 %s…), its log to a file; upstream: go-sdk StreamableHTTPHandler in this process, default options, sessions\n\n",
			o.Conns, len(rounds), o.Duration, o.Warmup, bench.Machine(), gp.path, px.upstream, o.LogFormat, gp.version, gp.sum)
	case px != nil:
		fmt.Fprintf(w, "## mcpload -target proxy: tools/call echo through mcpgate as a reverse proxy (A) vs the same go-sdk server direct (B)\n\n")
		fmt.Fprintf(w, "%d connections per target, %d rounds of %s per target (A, B alternating), warm-up %s; %s; gateway log: %s; metrics: %v; store: sqlite (temp file); upstream %s (go-sdk StreamableHTTPHandler, default options, sessions)\n\n",
			o.Conns, len(rounds), o.Duration, o.Warmup, bench.Machine(), o.LogFormat, o.metrics, px.upstream)
	default:
		fmt.Fprintf(w, "## mcpload: tools/call echo through mcpgate /mcp (A) vs the same server direct (B)\n\n")
		fmt.Fprintf(w, "%d connections per target, %d rounds of %s per target (A, B alternating), warm-up %s; %s; gateway log: %s; metrics: %v; store: sqlite (temp file)\n\n",
			o.Conns, len(rounds), o.Duration, o.Warmup, bench.Machine(), o.LogFormat, o.metrics)
	}
	head, align := "", ""
	if gwCol {
		head, align = " mcpgate CPU/req |", "---:|"
	}
	fmt.Fprintf(w, "| round | A req/s | A p50 | A p99 | B req/s | B p50 | B p99 | A/B | CPU/req A | CPU/req B |%s errors A/B | other processes' CPU A/B |\n", head)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|%s---:|---:|\n", align)
	row := func(label string, a, b *bench.Result, gw string) {
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %.0f | %s | %s | %.3f | %s | %s |%s %d/%d | %s/%s |\n", label,
			a.RPS(), bench.FmtDur(a.Latency.Quantile(.5)), bench.FmtDur(a.Latency.Quantile(.99)),
			b.RPS(), bench.FmtDur(b.Latency.Quantile(.5)), bench.FmtDur(b.Latency.Quantile(.99)),
			bench.Ratio(a.RPS(), b.RPS()), bench.FmtDur(a.CPUPerRequest()), bench.FmtDur(b.CPUPerRequest()), gw,
			a.Errors, b.Errors, bench.FmtCPU(a.CPU), bench.FmtCPU(b.CPU))
	}
	for i, r := range rounds {
		label := fmt.Sprint(i + 1)
		if !quiet(r, o.Quiet) {
			label += " (disturbed)"
		}
		gw := ""
		if gwCol {
			d, _ := px.gatewayCPU(rounds, i)
			gw = " " + bench.FmtDur(d) + " |"
		}
		row(label, r[0], r[1], gw)
	}
	gw := ""
	if gwCol {
		d, _ := px.gatewayCPU(rounds, -1)
		gw = " " + bench.FmtDur(d) + " |"
	}
	row("**total**", &all.total[0], &all.total[1], gw)
	fmt.Fprintf(w, "\n")
	fmt.Fprintf(w, "- A/B throughput, mean of per-round ratios: **%.3f** ± %.3f (standard error; median %.3f, min %.3f, max %.3f)\n", all.mean, all.se, all.median, all.lo, all.hi)
	fmt.Fprintf(w, "- A/B throughput, ratio of totals: **%.3f** (A %d requests in %s, B %d in %s)\n",
		all.tot, all.total[0].OK, all.total[0].Elapsed.Round(time.Millisecond), all.total[1].OK, all.total[1].Elapsed.Round(time.Millisecond))
	addedP50 := all.total[0].Latency.Quantile(.5) - all.total[1].Latency.Quantile(.5)
	fmt.Fprintf(w, "- latency: A p50 %s, p99 %s, mean %s; B p50 %s, p99 %s, mean %s; A − B at p50: %s\n",
		bench.FmtDur(all.total[0].Latency.Quantile(.5)), bench.FmtDur(all.total[0].Latency.Quantile(.99)), bench.FmtDur(all.total[0].Latency.Mean()),
		bench.FmtDur(all.total[1].Latency.Quantile(.5)), bench.FmtDur(all.total[1].Latency.Quantile(.99)), bench.FmtDur(all.total[1].Latency.Mean()),
		bench.FmtDur(addedP50))
	if all.total[0].CPU.OK {
		ca, cb := all.total[0].CPUPerRequest(), all.total[1].CPUPerRequest()
		self, perReq := "this process (load generator and servers)", "load generator and server"
		if px != nil && px.binary != nil {
			self, perReq = "this process and the gateway process (load generator, backend, gateway)", "load generator, backend and the gateway process"
		}
		fmt.Fprintf(w, "- CPU of %s: A rounds %.2f cores, B rounds %.2f, of %d; other processes: A rounds %.2f, B rounds %.2f\n",
			self, all.total[0].CPU.Self, all.total[1].CPU.Self, runtime.NumCPU(), all.total[0].CPU.Others, all.total[1].CPU.Others)
		fmt.Fprintf(w, "- CPU per request (%s): A %s, B %s, the gateway adds %s; B/A = **%.3f**, the throughput ratio to expect when CPU-bound (meaningless when not CPU-bound, as with -conns 1)\n",
			perReq, bench.FmtDur(ca), bench.FmtDur(cb), bench.FmtDur(ca-cb), all.cpu)
		switch {
		case len(clean) == len(rounds):
			fmt.Fprintf(w, "- every round was quiet (other processes ≤ %.2f cores)\n", o.Quiet)
		case len(clean) == 0:
			fmt.Fprintf(w, "- **no round was quiet: other processes took more than %.2f cores; the req/s ratios are skewed by them, rerun on a quiet machine**\n", o.Quiet)
		default:
			c := summarize(clean)
			fmt.Fprintf(w, "- **%d of %d rounds disturbed by other processes (> %.2f cores)**; over the %d quiet rounds only: A/B req/s mean of ratios **%.3f** ± %.3f (median %.3f, min %.3f, max %.3f), ratio of totals **%.3f**, CPU per request B/A **%.3f**\n",
				len(rounds)-len(clean), len(rounds), o.Quiet, len(clean), c.mean, c.se, c.median, c.lo, c.hi, c.tot, c.cpu)
		}
	}
	goal := 0.95
	if px != nil {
		goal = proxyRatioGoal
	}
	if o.Conns == 32 {
		best := all
		scope := "all rounds"
		if len(clean) > 0 && len(clean) < len(rounds) {
			best, scope = summarize(clean), "quiet rounds"
		}
		note := ""
		if len(clean) == 0 {
			note = " (inconclusive: no quiet round)"
		}
		fmt.Fprintf(w, "- target A/B ≥ %.2f at 32 connections (%s): req/s ratio of totals %.3f, %s; CPU per request %.3f, %s%s\n",
			goal, scope, best.tot, bench.Verdict(best.tot >= goal), best.cpu, bench.Verdict(best.cpu >= goal), note)
	}
	if px != nil {
		if o.Conns == 1 {
			fmt.Fprintf(w, "- target added p50 latency at one connection ≤ %s: %s, %s\n", bench.FmtDur(maxAddedP50), bench.FmtDur(addedP50), bench.Verdict(addedP50 <= maxAddedP50))
		}
		px.report(w, rounds, &all.total[0], &all.total[1])
	}
	errs := all.total[0].Errors + all.total[1].Errors + warmErrs
	if errs > 0 {
		fmt.Fprintf(w, "- **%d FAILED REQUESTS (%d in the warm-up): these figures are not valid**\n", errs, warmErrs)
	} else {
		fmt.Fprintf(w, "- failed requests: 0 (every answer was HTTP 200 with the echoed text)\n")
	}
	return errs
}

// mustRefuse checks that /mcp of the gateway refuses a request without a
// token, so that A really goes through the token check.
func mustRefuse(ctx context.Context, endpoint string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("the gateway answered HTTP %d to a request without a token, want 401", resp.StatusCode)
	}
	return nil
}

// accessToken runs the real flow once against the gateway at base: dynamic
// client registration, /authorize with PKCE and resource walked by the
// headless browser (login and consent), and the code exchange at /token.
func accessToken(ctx context.Context, base, user, password string) (string, error) {
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	clientID, err := bench.RegisterClient(ctx, client, base, "mcpload", callback)
	if err != nil {
		return "", err
	}
	resource := base + "/mcp"
	code, verifier, err := bench.Authorize(ctx, browser.New(user, password), bench.AuthorizeURL(base, clientID, callback, resource), callback, base)
	if err != nil {
		return "", err
	}

	form := url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {clientID},
		"redirect_uri": {callback}, "code_verifier": {verifier}, "resource": {resource},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token: HTTP %d: %s", resp.StatusCode, body)
	}
	return tok.AccessToken, nil
}
