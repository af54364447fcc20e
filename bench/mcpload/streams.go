package main

// -streams N,…: what idle GET event streams through the mcpgate binary
// cost it, in memory per stream, and whether tool calls at -conns
// connections feel them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/bench"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const (
	// The local user whose sessions hold the streams: the per-user caps
	// (max_sessions_per_user, max_streams_per_user) then count them alone,
	// not the call sessions of user.
	streamUser     = "streamer"
	streamPassword = "mcpload stream password 1"
	maxStreams     = 10_000 // the gateway's cap of streams per user
	openWorkers    = 64     // streams opened at once
	// settleTimeout bounds the wait for the gateway's RSS to stop moving.
	settleTimeout = 10 * time.Second
	// streamTarget is the target, per idle stream.
	streamTarget = 16 << 10
)

// parseStreams reads -streams: a comma-separated list of stream counts.
func parseStreams(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxStreams {
			return nil, fmt.Errorf("-streams %q: want counts from 1 to %d, separated by commas", s, maxStreams)
		}
		out = append(out, n)
	}
	return out, nil
}

// raiseFileLimit raises this process's open-file limit, soft and hard, to
// at least need when it may (raising the hard one takes CAP_SYS_RESOURCE),
// else the soft one to the hard one. The gateway it starts inherits the
// limit.
func raiseFileLimit(need uint64) (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	want := syscall.Rlimit{Cur: max(l.Cur, need), Max: max(l.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want = syscall.Rlimit{Cur: l.Max, Max: l.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return 0, err
		}
	}
	return want.Cur, nil
}

// filesNeeded is the open files n streams need in this process (each
// stream's client connection and the backend's end of the gateway's) and
// in the gateway (the client's connection and its own to the backend),
// with room for the calls, listeners and logs.
func filesNeeded(n int) uint64 { return uint64(2*n + 512) }

// gcTrace is one line of the Go runtime's GODEBUG=gctrace=1 output, in MB.
type gcTrace struct {
	live, goal, stacks int64
}

var gcTraceLine = regexp.MustCompile(`^gc \d+ @.*, \d+->\d+->(\d+) MB, (\d+) MB goal, (\d+) MB stacks`)

// lastGC is the last gctrace line in log, or ok false.
func lastGC(log []byte) (g gcTrace, ok bool) {
	for line := range bytes.Lines(log) {
		m := gcTraceLine.FindSubmatch(bytes.TrimSpace(line))
		if m == nil {
			continue
		}
		g.live, _ = strconv.ParseInt(string(m[1]), 10, 64)
		g.goal, _ = strconv.ParseInt(string(m[2]), 10, 64)
		g.stacks, _ = strconv.ParseInt(string(m[3]), 10, 64)
		ok = true
	}
	return g, ok
}

// perStream is the memory each of n streams costs when the total went from
// before to after, in bytes; negative if it fell.
func perStream(before, after int64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(after-before) / float64(n)
}

// phase is what one state of the gateway measured: its memory, and the
// tool calls run in it.
type phase struct {
	rss     int64 // VmRSS once settled, before the calls, bytes
	rssEnd  int64 // VmRSS after the calls
	gc      gcTrace
	gcOK    bool
	calls   *bench.Result
	cpu     time.Duration // the gateway process's, during the calls
	streams int           // open during the calls
}

// streamRun is one -streams count measured on a fresh gateway and backend.
type streamRun struct {
	n              int
	open           time.Duration // opening them all
	without, with  phase
	closed         phase        // once they have ended
	ended          atomic.Int64 // streams that ended while they should be open
	limit          uint64
	gatewayVersion string
}

// runStreams measures each count of o.streams on a gateway of its own.
func runStreams(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	most := 0
	for _, n := range o.streams {
		most = max(most, n)
	}
	limit, err := raiseFileLimit(filesNeeded(most))
	if err != nil {
		return 0, err
	}
	if need := filesNeeded(most); limit < need {
		return 0, fmt.Errorf("%d streams need %d open files in this process and in the gateway, and the limit is %d: raise the hard limit (ulimit -Hn, which takes CAP_SYS_RESOURCE) or ask for at most %d streams", most, need, limit, (limit-512)/2)
	}
	var runs []*streamRun
	for _, n := range o.streams {
		if ctx.Err() != nil {
			break
		}
		r, err := measureStreams(ctx, o, n, logf)
		if err != nil {
			return 0, fmt.Errorf("%d streams: %w", n, err)
		}
		r.limit = limit
		runs = append(runs, r)
	}
	if len(runs) == 0 {
		return 1, errors.New("interrupted before the first count")
	}
	if bad := reportStreams(stdout, o, runs); bad {
		fmt.Fprintf(stderr, "\n!!! mcpload: failed requests or streams that ended: the figures are not valid.\n\n")
		return 1, nil
	}
	return 0, nil
}

// measureStreams starts a backend and a gateway, runs tool calls without
// streams, opens n idle streams, and runs the calls again.
func measureStreams(ctx context.Context, o options, n int, logf func(string, ...any)) (r *streamRun, err error) {
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	backend := mcpgate.DemoServer("bench")
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return backend }, nil)
	baseB, stopB, err := bench.Serve(ctx, labelBackend, h)
	if err != nil {
		return nil, err
	}
	defer stopB()
	extra := []string{
		"--local-user", streamUser + ":" + streamPassword,
		"--max-sessions-per-user", strconv.Itoa(maxStreams),
		"--max-streams-per-user", strconv.Itoa(maxStreams),
		"--max-connections-per-address", "off",
	}
	gp, err := startGateway(setupCtx, o.gateway, baseB+"/mcp", o.LogFormat, extra, []string{"GODEBUG=gctrace=1"})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, gp.stop()) }()
	logf("gateway: %s (%s, sha256 %s…), pid %d, log in %s", gp.path, gp.version, gp.sum, gp.cmd.Process.Pid, gp.logPath)
	r = &streamRun{n: n, gatewayVersion: gp.version}

	callToken, err := accessToken(setupCtx, gp.base, user, password)
	if err != nil {
		return nil, fmt.Errorf("getting an access token: %w", err)
	}
	streamToken, err := accessToken(setupCtx, gp.base, streamUser, streamPassword)
	if err != nil {
		return nil, fmt.Errorf("getting an access token: %w", err)
	}
	a := &bench.Target{Name: "A", URL: gp.base + "/mcp", Token: callToken, Client: bench.NewClient(o.Conns, o.Timeout)}
	calls, err := bench.OpenAll(setupCtx, a, o.Conns)
	if err != nil {
		return nil, err
	}
	if o.Warmup > 0 {
		w := bench.Run(ctx, "A", calls, o.Warmup, o.MaxOps)
		logf("warm-up: %.0f req/s, %d errors", w.RPS(), w.Errors)
	}
	if r.without, err = callPhase(ctx, o, gp, calls, 0); err != nil {
		return nil, err
	}
	logf("without streams: RSS %.1f MB, %.0f req/s", float64(r.without.rss)/1e6, r.without.calls.RPS())

	streamsCtx, endStreams := context.WithCancel(ctx)
	var wg sync.WaitGroup // the streams' readers
	var closeOnce sync.Once
	closeStreams := func() {
		closeOnce.Do(func() {
			endStreams()
			wg.Wait()
		})
	}
	defer closeStreams()
	s := &bench.Target{Name: "S", URL: gp.base + "/mcp", Token: streamToken, Client: bench.NewClient(openWorkers, o.Timeout)}
	start := time.Now()
	if err := openStreams(setupCtx, streamsCtx, s, n, &wg, &r.ended); err != nil {
		return nil, err
	}
	r.open = time.Since(start)
	logf("%d streams open in %s", n, r.open.Round(time.Millisecond))
	if r.with, err = callPhase(ctx, o, gp, calls, n); err != nil {
		return nil, err
	}
	logf("with %d streams: RSS %.1f MB, %.0f req/s, %d ended early", n, float64(r.with.rss)/1e6, r.with.calls.RPS(), r.ended.Load())
	closeStreams()
	if r.closed, err = callPhase(ctx, o, gp, calls, 0); err != nil {
		return nil, err
	}
	logf("streams closed: RSS %.1f MB, %.0f req/s", float64(r.closed.rss)/1e6, r.closed.calls.RPS())
	return r, gp.exited()
}

// callPhase waits for the gateway's RSS to settle, reads it, then runs
// o.Rounds rounds of tool calls and reads the gateway's CPU around them,
// and the last GC of its log after them.
func callPhase(ctx context.Context, o options, gp *gatewayProcess, calls []*bench.Session, streams int) (phase, error) {
	p := phase{streams: streams}
	var err error
	if p.rss, err = settledRSS(ctx, gp.cmd.Process.Pid); err != nil {
		return p, err
	}
	c0, err := gp.cpu()
	if err != nil {
		return p, err
	}
	for range o.Rounds {
		res := bench.Run(ctx, "A", calls, o.Duration, o.MaxOps)
		if p.calls == nil {
			p.calls = res
		} else {
			p.calls.Add(res)
		}
	}
	c1, err := gp.cpu()
	if err != nil {
		return p, err
	}
	p.cpu = c1.Sub(c0).Total
	if c := &p.calls.CPU; c.OK && p.calls.Elapsed > 0 {
		// The gateway is the system under test, not another process.
		cores := p.cpu.Seconds() / p.calls.Elapsed.Seconds()
		c.Self += cores
		c.Others = max(c.Others-cores, 0)
	}
	if p.rssEnd, err = bench.ProcessRSS(gp.cmd.Process.Pid); err != nil {
		return p, err
	}
	log, err := os.ReadFile(gp.logPath)
	if err != nil {
		return p, err
	}
	p.gc, p.gcOK = lastGC(log)
	return p, nil
}

// settledRSS polls the RSS of pid until two readings 250 ms apart differ
// by less than 0.5 %, or settleTimeout passes; it returns the last.
func settledRSS(ctx context.Context, pid int) (int64, error) {
	deadline := time.Now().Add(settleTimeout)
	prev, err := bench.ProcessRSS(pid)
	if err != nil {
		return 0, err
	}
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return prev, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		cur, err := bench.ProcessRSS(pid)
		if err != nil {
			return 0, err
		}
		if d := cur - prev; d < 0 && -d < cur/200 || d >= 0 && d < cur/200 {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// openStreams opens n sessions on t, each with its idle GET event stream,
// openWorkers at a time, and returns once every stream has answered 200
// with text/event-stream. Each stream is then read by a goroutine of wg
// until streamsCtx ends; one that ends before counts in ended.
func openStreams(ctx, streamsCtx context.Context, t *bench.Target, n int, wg *sync.WaitGroup, ended *atomic.Int64) error {
	get := &http.Client{Transport: t.Client.Transport} // no timeout: the stream lasts
	next := atomic.Int64{}
	errs := make([]error, openWorkers)
	var open sync.WaitGroup
	for w := range openWorkers {
		open.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && errs[w] == nil; i = int(next.Add(1)) - 1 {
				errs[w] = openStream(ctx, streamsCtx, t, get, i, wg, ended)
			}
		})
	}
	open.Wait()
	return errors.Join(errs...)
}

// openStream opens session i and its GET stream.
func openStream(ctx, streamsCtx context.Context, t *bench.Target, get *http.Client, i int, wg *sync.WaitGroup, ended *atomic.Int64) error {
	sess, err := bench.Open(ctx, t, i)
	if err != nil {
		return err
	}
	// The headers must come within the request timeout; the body may last.
	sctx, cancel := context.WithCancel(streamsCtx)
	late := time.AfterFunc(t.Client.Timeout, cancel)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, t.URL, nil)
	if err != nil {
		cancel()
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+t.Token)
	req.Header.Set("Mcp-Session-Id", sess.ID())
	req.Header.Set("Mcp-Protocol-Version", bench.ProtocolVersion)
	resp, err := get.Do(req)
	if !late.Stop() && err == nil {
		err = fmt.Errorf("no headers within %s", t.Client.Timeout)
		resp.Body.Close()
	}
	if err != nil {
		cancel()
		return fmt.Errorf("stream %d: %w", i, err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		cancel()
		return fmt.Errorf("stream %d: HTTP %d %s: %s", i, resp.StatusCode, resp.Header.Get("Content-Type"), bench.Snippet(b))
	}
	wg.Go(func() {
		defer cancel()
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		if streamsCtx.Err() == nil {
			ended.Add(1)
		}
	})
	return nil
}

// reportStreams prints the Markdown report; bad is true when a request
// failed or a stream ended early.
func reportStreams(w io.Writer, o options, runs []*streamRun) (bad bool) {
	fmt.Fprintf(w, "## mcpload -streams: idle GET event streams through the mcpgate binary (`serve --upstream`), memory per stream and tool calls beside them\n\n")
	fmt.Fprintf(w, "%s; gateway: `%s serve --upstream <go-sdk server in this process> --store memory --log-format %s --max-sessions-per-user %d --max-streams-per-user %d --max-connections-per-address off` (%s), GODEBUG=gctrace=1, a fresh gateway and backend per count; open-file limit %d; tool calls: %d connections, %d rounds of %s in each state, warm-up %s\n\n",
		bench.Machine(), o.gateway, o.LogFormat, maxStreams, maxStreams, runs[0].gatewayVersion, runs[0].limit, o.Conns, o.Rounds, o.Duration, o.Warmup)
	fmt.Fprintf(w, "| streams | state | gateway RSS before the calls | after them | Go heap live | goroutine stacks | tool calls req/s | p50 | p99 | gateway CPU/call | other processes' CPU | errors |\n")
	fmt.Fprintf(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	mb := func(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }
	gc := func(p phase, f func(gcTrace) int64) string {
		if !p.gcOK {
			return "?"
		}
		return fmt.Sprintf("%d MB", f(p.gc))
	}
	row := func(n int, state string, p phase) {
		c := p.calls
		perCall := time.Duration(0)
		if c.OK > 0 {
			perCall = p.cpu / time.Duration(c.OK)
		}
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %.0f | %s | %s | %s | %.2f cores | %d |\n", n, state, mb(p.rss), mb(p.rssEnd),
			gc(p, func(g gcTrace) int64 { return g.live }), gc(p, func(g gcTrace) int64 { return g.stacks }),
			c.RPS(), bench.FmtDur(c.Latency.Quantile(.5)), bench.FmtDur(c.Latency.Quantile(.99)), bench.FmtDur(perCall), c.CPU.Others, c.Errors)
		bad = bad || c.Errors > 0
	}
	for _, r := range runs {
		row(r.n, "without streams", r.without)
		row(r.n, fmt.Sprintf("%d streams open", r.n), r.with)
		row(r.n, "streams closed", r.closed)
	}
	fmt.Fprintf(w, "\n")
	for _, r := range runs {
		rss := perStream(r.without.rss, r.with.rss, r.n)
		fmt.Fprintf(w, "- **%d streams: %.1f KB of gateway RSS per idle stream** (%s → %s; after the calls %.1f KB: %s → %s), target ≤ %d KB: %s", r.n, rss/1024, mb(r.without.rss), mb(r.with.rss),
			perStream(r.without.rssEnd, r.with.rssEnd, r.n)/1024, mb(r.without.rssEnd), mb(r.with.rssEnd), streamTarget>>10, bench.Verdict(rss <= streamTarget))
		if r.without.gcOK && r.with.gcOK {
			fmt.Fprintf(w, "; of it Go heap live after the last GC %.1f KB and goroutine stacks %.1f KB per stream (gctrace, whole MB)",
				perStream(r.without.gc.live<<20, r.with.gc.live<<20, r.n)/1024, perStream(r.without.gc.stacks<<20, r.with.gc.stacks<<20, r.n)/1024)
		}
		fmt.Fprintf(w, "; opened in %s\n", r.open.Round(time.Millisecond))
		var none bench.Result // the calls without streams: before they opened and after they closed
		none.Add(r.without.calls)
		none.Add(r.closed.calls)
		perCall := func(ps ...phase) time.Duration {
			var cpu time.Duration
			var n int64
			for _, p := range ps {
				cpu, n = cpu+p.cpu, n+p.calls.OK
			}
			if n == 0 {
				return 0
			}
			return cpu / time.Duration(n)
		}
		fmt.Fprintf(w, "- tool calls with %d streams open against without (before and after): req/s ratio %.3f, gateway CPU per call %s against %s (ratio %.3f), p50 %s against %s, p99 %s against %s\n", r.n,
			bench.Ratio(r.with.calls.RPS(), none.RPS()),
			bench.FmtDur(perCall(r.with)), bench.FmtDur(perCall(r.without, r.closed)), bench.Ratio(float64(perCall(r.with)), float64(perCall(r.without, r.closed))),
			bench.FmtDur(r.with.calls.Latency.Quantile(.5)), bench.FmtDur(none.Latency.Quantile(.5)),
			bench.FmtDur(r.with.calls.Latency.Quantile(.99)), bench.FmtDur(none.Latency.Quantile(.99)))
		if e := r.ended.Load(); e > 0 {
			fmt.Fprintf(w, "- **%d of %d streams ended while they should have stayed open: not valid**\n", e, r.n)
			bad = true
		}
	}
	return bad
}
