// Command flowload measures mcpgate's authorization server under load:
// full authorization-code flows per second and refresh-token rotations per
// second, on the durable SQLite store (or the in-memory one, to compare),
// or on PostgreSQL with one or several replicas.
//
// It builds, in this process, a Gateway from mcpgate.New on a store.Store
// (-store sqlite: store/sqlite on a temporary file, synchronous=FULL, as
// `mcpgate serve` runs it; -store memory: store/memory), with a local user,
// served on a loopback listener. -store postgres starts a PostgreSQL server
// of its own (bench.StartPostgres: Debian's binaries, a temporary
// directory, a loopback port, fsync on) or uses -dsn's database; with
// -replicas N it builds N gateways on that database, each with its own
// pool (-pool sets pool_max_conns) and listener and all with one secret
// key, and sends the requests to them round robin, request by request, all
// with the first one's Host as a load balancer would: a flow's authorize
// and token steps, and a chain's successive refreshes, land on different
// replicas. -grants N stores N grants with refresh tokens through
// CreateGrant before the rounds, so that the lookups of the load search
// among them. With -gateway PATH the replicas are `PATH serve --store DSN`
// processes sharing one --data-dir (so one secret.key), their CPU counted
// as the harness's and their RSS reported. The PostgreSQL server's CPU
// (the postmaster and its backends) is reported per round and is not
// counted as another process's. It registers a public client (POST
// /register) and logs in once through the real pages with the headless
// browser of e2e/browser (login form, consent), which leaves a browser
// session cookie and the user's consent for that client. Then, with -conns
// workers (loopback HTTP, keep-alive, one request in flight each):
//
//   - flows: each iteration is GET /authorize with the session cookie and a
//     fresh PKCE challenge, state and resource, which must answer 302
//     straight to the redirect URI with a code and the state (remembered
//     consent: store.CreateCode), then POST /token with grant_type
//     authorization_code and the PKCE verifier (store.ConsumeCode and
//     store.CreateGrant, an access token minted), which must answer 200 with
//     an access and a refresh token. The latency is that of both requests.
//   - refreshes: each worker holds its own refresh-token chain (obtained by
//     one flow each before the rounds) and loops POST /token with
//     grant_type refresh_token (store.RotateRefresh, an access token
//     minted), replacing its refresh token with the new one every time.
//
// After a warm-up of each, measured rounds alternate flows, refreshes,
// flows, refreshes… and the command prints a Markdown table to stdout: per
// round and in total, operations per second, p50 and p99 latency, this
// process's CPU time per operation (load generator and gateway together),
// the CPU other processes took, and with SQLite the commits (fsyncs) and
// writes per operation from sqlite.Store.Stats. Progress goes to stderr.
//
// Anything but the expected answer (another status, a consent page, an
// error redirect, a missing token) is a failed operation: it is reported
// loudly on stderr and the command exits with status 1.
//
// Usage:
//
//	cd bench   # the harness is a module of its own
//	go run ./flowload                           # sqlite, 64 workers
//	go run ./flowload -store memory             # the same on store/memory
//	go run ./flowload -store postgres -replicas 3 -pool 16 -grants 1000000
//	go run ./flowload -only flows -cpuprofile flows.pprof
//	go tool pprof -tagignore=load=flows -top flows.pprof   # the gateway's share
//
// With -cpuprofile the measured rounds are profiled; the load generator's
// goroutines carry the pprof label load=flows or load=refreshes, the
// gateway's server=gw (the SQLite writer goroutine has no label).
//
// Load and gateway share the machine: the figures are those of a gateway
// with half of it, or less, not a capacity figure; CPU per operation is
// the steadier number on a shared machine. See docs/benchmarks.md.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/trace"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/mcpgate/mcpgate/bench"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

const (
	user          = "bench"
	password      = "flowload bench password 1"
	callback      = "http://127.0.0.1:33421/callback" // never requested: answers stop at the redirect
	sessionCookie = "mcpgate_session"                 // the gateway's login cookie over loopback http

	// The targets of the issue, on 2 cores with SQLite durable.
	targetFlows     = 2000.0
	targetRefreshes = 4000.0
)

// The two loads.
const (
	kindFlows     = "flows"
	kindRefreshes = "refreshes"
)

type options struct {
	bench.Options
	storeKind, only string
	tracefile       string
	dir             string
	fdatasync       bool

	dsn        string // an existing PostgreSQL database (-store postgres)
	pgFsyncOff bool   // the harness's own PostgreSQL server without flushes
	replicas   int
	gateway    string // a built mcpgate binary: the replicas are processes
	pool       int    // pool_max_conns of each replica's pool; 0: the DSN's, else the store's default (16)
	grants     int    // grants seeded before the rounds
}

func main() {
	var o options
	flag.StringVar(&o.storeKind, "store", "sqlite", "sqlite (a temporary file, synchronous=FULL, as mcpgate serve runs it), memory, or postgres (a throwaway server of the harness's own, fsync on, or -dsn)")
	flag.StringVar(&o.dsn, "dsn", "", "with -store postgres: the database to use (postgres://USER:PASSWORD@HOST:PORT/DATABASE; pool_max_conns=N sizes each replica's pool) instead of a server of the harness's own; it must be empty or mcpgate's")
	flag.BoolVar(&o.pgFsyncOff, "pg-fsync-off", false, "with -store postgres and no -dsn: run the harness's server with fsync=off and synchronous_commit=off (not a durable figure)")
	flag.IntVar(&o.replicas, "replicas", 1, "with -store postgres: gateways on the same database, each with its own pool and listener, one secret key; requests go to them round robin")
	flag.IntVar(&o.pool, "pool", 0, "with -store postgres: pool_max_conns of each replica's pool (default: the DSN's, else the store's default, 16)")
	flag.StringVar(&o.gateway, "gateway", "", "with -store postgres: run the replicas as `PATH serve --store DSN` processes sharing one --data-dir (so one secret.key), and report each one's RSS")
	flag.IntVar(&o.grants, "grants", 0, "grants (each with a refresh token) stored through the store's CreateGrant before the rounds, so that the load's lookups search among them")
	flag.StringVar(&o.only, "only", "", "measure only flows or only refreshes (default both, alternating)")
	flag.DurationVar(&o.Duration, "duration", 3*time.Second, "length of each measured round of each load")
	flag.IntVar(&o.Rounds, "rounds", 6, "measured rounds of each load (flows and refreshes alternate)")
	flag.IntVar(&o.Conns, "conns", 64, "concurrent workers, each with one request in flight on a keep-alive connection")
	flag.DurationVar(&o.Warmup, "warmup", 2*time.Second, "warm-up of each load before the rounds (not reported; errors still count)")
	flag.Int64Var(&o.MaxOps, "max-ops", 1_000_000, "cap on the operations of one round of one load")
	flag.DurationVar(&o.Timeout, "timeout", 10*time.Second, "timeout of one HTTP request")
	flag.StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile to this file at the end")
	flag.StringVar(&o.tracefile, "trace", "", "write an execution trace of the first measured round to this file (go tool trace)")
	flag.Float64Var(&o.Quiet, "quiet", 0.1, "a round is quiet when other processes took at most this many cores (from /proc/stat)")
	flag.StringVar(&o.LogFormat, "log", "text", "the gateway's log: text (as mcpgate serve logs), json, or discard; text and json write to io.Discard: formatting cost, no I/O")
	flag.StringVar(&o.dir, "dir", "", "directory for the SQLite file (default: a new temporary directory); it decides which disk the fsyncs hit")
	flag.BoolVar(&o.fdatasync, "fdatasync", false, "make SQLite commit with fdatasync(2) instead of fsync(2) (modernc.org/sqlite.Fdatasync; same durability, cheaper on ext4)")
	bench.Main("flowload", "Measures authorization-code flows/s and refresh rotations/s through mcpgate.", o.check,
		func(ctx context.Context, stdout, stderr io.Writer) (int, error) { return run(ctx, o, stdout, stderr) })
}

func (o *options) check() error {
	switch {
	case o.storeKind != "sqlite" && o.storeKind != "memory" && o.storeKind != "postgres":
		return fmt.Errorf("-store %q: want sqlite, memory or postgres", o.storeKind)
	case o.storeKind != "postgres" && (o.dsn != "" || o.pgFsyncOff || o.replicas != 1 || o.pool != 0 || o.gateway != ""):
		return errors.New("-dsn, -pg-fsync-off, -pool, -replicas and -gateway need -store postgres")
	case o.pool < 0 || o.pool > 256:
		return errors.New("-pool must be in [0, 256]")
	case o.dsn != "" && o.pgFsyncOff:
		return errors.New("-pg-fsync-off is for the harness's own server: it cannot change -dsn's")
	case o.replicas < 1 || o.replicas > 16:
		return errors.New("-replicas must be in [1, 16]")
	case o.grants < 0 || o.grants > 10_000_000:
		return errors.New("-grants must be in [0, 10000000]")
	case o.only != "" && o.only != kindFlows && o.only != kindRefreshes:
		return fmt.Errorf("-only %q: want %s or %s", o.only, kindFlows, kindRefreshes)
	}
	return o.Options.Check("-max-ops")
}

func (o *options) kinds() []string {
	if o.only != "" {
		return []string{o.only}
	}
	return []string{kindFlows, kindRefreshes}
}

// harness is the gateway under load and what the workers share.
type harness struct {
	base      string // http://127.0.0.1:PORT
	clientID  string
	resource  string
	authorize string // the /authorize URL up to the per-flow parameters
	route     *router
	pgPid     int               // the harness's PostgreSQL server (its postmaster), 0 if none
	dsn       string            // with -store postgres, each replica's (with -pool's pool_max_conns)
	procs     []*gatewayProcess // with -gateway
	cookie    string            // the Cookie header of /authorize: the browser's session
	client    *http.Client
	sqlite    *sqlite.Store // nil with -store memory

	// The form parameters of each grant at /token after the per-request
	// ones, escaped once.
	codeParams    string // client_id, redirect_uri, resource
	refreshParams string // client_id, resource
}

// worker is the state of one load goroutine.
type worker struct {
	refresh string // the worker's refresh token chain: its latest token
	body    bytes.Buffer
	form    []byte
}

func run(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	setupCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	if o.fdatasync {
		if _, err := msqlite.Fdatasync(true); err != nil {
			return 0, fmt.Errorf("-fdatasync: %w", err)
		}
		defer msqlite.Fdatasync(false)
	}
	h := &harness{}
	open, seedStore, storeDesc, closeStore, err := openStore(setupCtx, o, h, logf)
	if err != nil {
		return 0, err
	}
	defer closeStore()
	var reps []*replica
	if o.gateway == "" {
		var closeReps func()
		reps, closeReps, err = startReplicas(setupCtx, o.replicas, open, o.Logger)
		if err != nil {
			return 0, err
		}
		defer closeReps()
	} else {
		var stopAll func()
		h.procs, stopAll, err = startBinaries(setupCtx, o.gateway, h.dsn, o.replicas, o.LogFormat)
		if err != nil {
			return 0, err
		}
		defer stopAll()
		for _, g := range h.procs {
			reps = append(reps, &replica{base: g.base})
		}
		storeDesc += fmt.Sprintf("; the replicas are `%s serve` processes (their CPU counts as this process's)", o.gateway)
	}
	h.route = newRouter(reps)
	base := reps[0].base
	h.base = base
	h.resource = base + "/mcp"
	h.client = bench.NewClient(o.Conns, o.Timeout)

	if err := h.login(setupCtx); err != nil {
		return 0, fmt.Errorf("logging in through the gateway's pages: %w", err)
	}
	if o.replicas > 1 {
		where := "in this process"
		if o.gateway != "" {
			where = "as processes"
		}
		storeDesc += fmt.Sprintf("; %d replicas %s (%s), one secret key, each with its own pool and listener, requests round robin across them with Host %s", o.replicas, where, strings.Join(h.route.bases, ", "), h.route.host)
	}
	if o.grants > 0 {
		st := reps[0].st
		if seedStore != nil { // PostgreSQL: a pool of its own
			if st, err = seedStore(ctx); err != nil {
				return 0, err
			}
		}
		took, err := seedGrants(ctx, st, h.clientID, h.resource, o.grants, stderr)
		if seedStore != nil {
			st.Close()
		}
		if err != nil {
			return 0, err
		}
		logf("seeded %d grants through CreateGrant in %s (%.0f/s)", o.grants, took.Round(time.Second), float64(o.grants)/took.Seconds())
		storeDesc += fmt.Sprintf("; %d grants seeded before the rounds", o.grants)
	}
	logf("gateway %s, store %s; client %s; logged in once through the real pages (session cookie and consent kept)", base, storeDesc, h.clientID)

	workers := make([]*worker, o.Conns)
	for i := range workers {
		workers[i] = &worker{}
	}
	// The first flow of each worker checks the path end to end; with
	// refreshes, its refresh token starts the worker's chain.
	// A setup bound of its own: seeding grants may take minutes.
	chainCtx, cancelChains := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelChains()
	if err := h.startChains(chainCtx, workers); err != nil {
		return 0, fmt.Errorf("first flows: %w", err)
	}
	logf("%d workers, each with its own refresh-token chain; GOMAXPROCS=%d", o.Conns, runtime.GOMAXPROCS(0))

	ops := map[string]func(ctx context.Context, i int) (time.Duration, error){
		kindFlows:     func(ctx context.Context, i int) (time.Duration, error) { return h.flow(ctx, workers[i]) },
		kindRefreshes: func(ctx context.Context, i int) (time.Duration, error) { return h.rotate(ctx, workers[i]) },
	}
	kinds := o.kinds()
	var warm bench.Result
	if o.Warmup > 0 {
		for _, k := range kinds {
			r := bench.RunWorkers(ctx, k, o.Conns, o.Warmup, o.MaxOps, ops[k])
			logf("warm-up %s: %.0f/s, %d errors", k, r.RPS(), r.Errors)
			warm.Add(r)
		}
	}

	stopProfile := func() {}
	if o.CPUProfile != "" {
		if stopProfile, err = bench.StartCPUProfile(o.CPUProfile); err != nil {
			return 0, err
		}
		defer stopProfile()
	}
	var rounds []round
	for i := range o.Rounds {
		for _, k := range kinds {
			if ctx.Err() != nil {
				break
			}
			before, pg0, gw0 := h.stats(), h.pgCPU(), binariesCPU(h.procs)
			stopTrace := startTrace(o.tracefile, len(rounds) == 0)
			r := bench.RunWorkers(ctx, k, o.Conns, o.Duration, o.MaxOps, ops[k])
			if err := stopTrace(); err != nil {
				return 0, err
			}
			rd := round{n: i + 1, kind: k, res: r, sqlite: h.sqlite != nil, stats: h.stats().minus(before)}
			rd.pgCPU(pg0, h.pgCPU())
			rd.gatewaysCPU(gw0, binariesCPU(h.procs))
			rounds = append(rounds, rd)
			logf("round %d %-9s %6.0f/s  p50 %-9s p99 %-9s CPU/op %-7s %s%s errors %d, others' CPU %s",
				rd.n, k, r.RPS(), bench.FmtDur(r.Latency.Quantile(.5)), bench.FmtDur(r.Latency.Quantile(.99)),
				bench.FmtDur(r.CPUPerRequest()), rd.commitsText(), rd.pgText(), r.Errors, bench.FmtCPU(r.CPU))
		}
	}
	if o.CPUProfile != "" {
		stopProfile()
		logf("CPU profile: %s (go tool pprof -tagignore=load=%s -top %s for the gateway)", o.CPUProfile, strings.Join(kinds, "|load="), o.CPUProfile)
	}
	if len(rounds) == 0 {
		return 0, errors.New("interrupted before the first round")
	}
	if o.MemProfile != "" {
		if err := bench.WriteAllocProfile(o.MemProfile); err != nil {
			return 0, err
		}
		logf("allocation profile: %s (go tool pprof -sample_index=alloc_space -top %s)", o.MemProfile, o.MemProfile)
	}

	mem := memoryText(o.replicas)
	if h.procs != nil {
		if mem, err = binariesMemory(h.procs); err != nil {
			return 0, err
		}
		logf("memory: %s", mem)
	}
	errs := report(stdout, o, storeDesc, mem, rounds, &warm)
	if errs > 0 {
		first := warm.FirstError
		for _, r := range rounds {
			if first == "" {
				first = r.res.FirstError
			}
		}
		fmt.Fprintf(stderr, "\n!!! flowload: %d FAILED OPERATIONS (warm-up included): the figures are not valid.\n!!! first error: %s\n\n", errs, first)
		return 1, nil
	}
	if ctx.Err() != nil {
		fmt.Fprintf(stderr, "flowload: interrupted after %d rounds\n", len(rounds))
		return 1, nil
	}
	return 0, nil
}

// startTrace starts an execution trace into path when path is set and on
// is true, and returns what stops it.
func startTrace(path string, on bool) func() error {
	if path == "" || !on {
		return func() error { return nil }
	}
	f, err := os.Create(path)
	if err != nil {
		return func() error { return err }
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return func() error { return err }
	}
	return func() error {
		trace.Stop()
		return f.Close()
	}
}

// storeStats is what the SQLite writer did during a round.
type storeStats struct {
	commits, writes uint64
	busy, commit    time.Duration // the writer's time in transactions, and in COMMIT
}

func (h *harness) stats() storeStats {
	if h.sqlite == nil {
		return storeStats{}
	}
	s := h.sqlite.Stats()
	return storeStats{commits: s.Commits, writes: s.Writes, busy: s.Busy, commit: s.Commit}
}

func (s storeStats) minus(o storeStats) storeStats {
	return storeStats{commits: s.commits - o.commits, writes: s.writes - o.writes, busy: s.busy - o.busy, commit: s.commit - o.commit}
}

func (s *storeStats) add(o storeStats) {
	s.commits += o.commits
	s.writes += o.writes
	s.busy += o.busy
	s.commit += o.commit
}

// commitsPer is the commits (fsyncs) per operation, of ops.
func (s storeStats) commitsPer(ops int64) float64 {
	return bench.Ratio(float64(s.commits), float64(ops))
}

func (s storeStats) writesPerCommit() float64 {
	return bench.Ratio(float64(s.writes), float64(s.commits))
}

// commitTime is the mean time of a COMMIT.
func (s storeStats) commitTime() time.Duration {
	if s.commits == 0 {
		return 0
	}
	return s.commit / time.Duration(s.commits)
}

// busyShares are the shares of elapsed, in percent, the writer spent in
// transactions and in COMMIT.
func (s storeStats) busyShares(elapsed time.Duration) (busy, commit float64) {
	return 100 * s.busy.Seconds() / elapsed.Seconds(), 100 * s.commit.Seconds() / elapsed.Seconds()
}

// round is one measured round of one load.
type round struct {
	n      int
	kind   string
	res    *bench.Result
	sqlite bool
	stats  storeStats
	pg     float64 // cores the harness's PostgreSQL server took; -1 when not known
}

func (r *round) commitsText() string {
	if !r.sqlite {
		return ""
	}
	busy, commit := r.stats.busyShares(r.res.Elapsed)
	return fmt.Sprintf("commits/op %.3f (%.1f writes/commit), writer busy %.0f%% (COMMIT %.0f%%, %s per commit)",
		r.stats.commitsPer(r.res.Total()), r.stats.writesPerCommit(), busy, commit, bench.FmtDur(r.stats.commitTime()))
}

// login registers the public client and walks one authorization through
// the gateway's real pages with the headless browser: login form, consent
// (allow), redirect with a code. The browser's session cookie is kept for
// the flows, and the consent it gave makes later /authorize requests
// answer at once.
func (h *harness) login(ctx context.Context) error {
	var err error
	// With replicas, registered on the last, logged in on the first.
	if h.clientID, err = bench.RegisterClient(ctx, h.client, h.route.bases[len(h.route.bases)-1], "flowload", callback); err != nil {
		return err
	}
	h.authorize = bench.AuthorizeURL(h.base, h.clientID, callback, h.resource)
	clientID, resource := url.QueryEscape(h.clientID), url.QueryEscape(h.resource)
	h.codeParams = "&client_id=" + clientID + "&redirect_uri=" + url.QueryEscape(callback) + "&resource=" + resource
	h.refreshParams = "&client_id=" + clientID + "&resource=" + resource

	b := browser.New(user, password)
	code, verifier, err := bench.Authorize(ctx, b, h.authorize, callback, h.base)
	if err != nil {
		return err
	}
	u, _ := url.Parse(h.base)
	for _, c := range b.Client.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			h.cookie = sessionCookie + "=" + c.Value
		}
	}
	if h.cookie == "" {
		return fmt.Errorf("no %s cookie after logging in", sessionCookie)
	}
	var w worker
	if err := h.exchange(ctx, &w, code, verifier); err != nil {
		return fmt.Errorf("exchanging the browser's code: %w", err)
	}
	return nil
}

// startChains runs one flow per worker, a few at a time, each keeping its
// refresh token.
func (h *harness) startChains(ctx context.Context, workers []*worker) error {
	sem := make(chan struct{}, 8)
	errs := make([]error, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			_, errs[i] = h.flow(ctx, w)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// flow is one authorization-code flow: /authorize with the session (302
// to the client with a code), then the code exchange at /token.
func (h *harness) flow(ctx context.Context, w *worker) (time.Duration, error) {
	verifier, state := bench.NewSecret(), bench.NewSecret()
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.route.pick()+bench.AuthorizeRequest(h.authorize[len(h.base):], verifier, state), nil)
	if err != nil {
		return 0, err
	}
	req.Host = h.route.host
	req.Header.Set("Cookie", h.cookie)
	resp, err := h.client.Do(req)
	if err != nil {
		return time.Since(start), fmt.Errorf("authorize: %w", err)
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return time.Since(start), fmt.Errorf("authorize: reading the answer: %w", err)
	}
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, callback+"?") {
		return time.Since(start), fmt.Errorf("authorize: HTTP %d, Location %q, want 302 to %s with a code: %s", resp.StatusCode, loc, callback, bench.Snippet(w.body.Bytes()))
	}
	q, err := url.ParseQuery(loc[len(callback)+1:])
	if err != nil {
		return time.Since(start), fmt.Errorf("authorize: redirect %q: %w", loc, err)
	}
	code := q.Get("code")
	if q.Get("error") != "" || code == "" || q.Get("state") != state || q.Get("iss") != h.base {
		return time.Since(start), fmt.Errorf("authorize: redirect %q: want a code, state %q and iss %q", loc, state, h.base)
	}
	err = h.exchange(ctx, w, code, verifier)
	return time.Since(start), err
}

// tokenAnswer is the part of a token response the harness checks.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// exchange redeems a code at /token; the refresh token becomes the
// worker's.
func (h *harness) exchange(ctx context.Context, w *worker, code, verifier string) error {
	w.form = append(w.form[:0], "grant_type=authorization_code&code="...)
	w.form = append(w.form, url.QueryEscape(code)...)
	w.form = append(w.form, "&code_verifier="...)
	w.form = append(w.form, verifier...)
	w.form = append(w.form, h.codeParams...)
	tok, _, err := h.token(ctx, w)
	if err != nil {
		return fmt.Errorf("token (authorization_code): %w", err)
	}
	w.refresh = tok.RefreshToken
	return nil
}

// rotate is one refresh: the worker's refresh token for a new pair.
func (h *harness) rotate(ctx context.Context, w *worker) (time.Duration, error) {
	w.form = append(w.form[:0], "grant_type=refresh_token&refresh_token="...)
	w.form = append(w.form, url.QueryEscape(w.refresh)...)
	w.form = append(w.form, h.refreshParams...)
	tok, d, err := h.token(ctx, w)
	if err != nil {
		return d, fmt.Errorf("token (refresh_token): %w", err)
	}
	w.refresh = tok.RefreshToken
	return d, nil
}

// token posts w.form to /token and checks for 200 with both tokens.
func (h *harness) token(ctx context.Context, w *worker) (*tokenAnswer, time.Duration, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.route.pick()+"/token", bytes.NewReader(w.form))
	if err != nil {
		return nil, 0, err
	}
	req.Host = h.route.host
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, time.Since(start), err
	}
	w.body.Reset()
	_, err = w.body.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return nil, d, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, d, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bench.Snippet(w.body.Bytes()))
	}
	var tok tokenAnswer
	if err := json.Unmarshal(w.body.Bytes(), &tok); err != nil || tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 {
		return nil, d, fmt.Errorf("want an access and a refresh token: %s", bench.Snippet(w.body.Bytes()))
	}
	return &tok, d, nil
}
