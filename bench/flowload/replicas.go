package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/bench"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/store/postgres"
	"github.com/mcpgate/mcpgate/store/sqlite"
)

// replica is one gateway under load: its own store handle (with
// PostgreSQL its own pool, as a process of its own would have), its own
// listener.
type replica struct {
	base string // http://127.0.0.1:PORT, where its listener is
	gw   *mcpgate.Gateway
	st   store.Store
}

// startReplicas builds n gateways on stores that open returns, all with
// the same secret key, one after the other (the first creates the signing
// key, the others read it), each served on a loopback listener of its own.
// close stops them all.
func startReplicas(ctx context.Context, n int, open func(ctx context.Context) (store.Store, error), newLogger func() *slog.Logger) (reps []*replica, closeAll func(), err error) {
	key := make([]byte, 32)
	rand.Read(key)
	var closers []func()
	closeAll = func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()
	for i := range n {
		st, err := open(ctx)
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, func() { st.Close() })
		cfg, err := bench.GatewayConfig(ctx, st, user, password, newLogger())
		if err != nil {
			return nil, closeAll, err
		}
		cfg.SecretKey = key
		gw, err := mcpgate.New(ctx, cfg)
		if err != nil {
			return nil, closeAll, fmt.Errorf("replica %d: %w", i+1, err)
		}
		closers = append(closers, func() { gw.Close(context.Background()) })
		base, stop, err := bench.Serve(ctx, "gw", gw)
		if err != nil {
			return nil, closeAll, err
		}
		closers = append(closers, stop)
		reps = append(reps, &replica{base: base, gw: gw, st: st})
	}
	return reps, closeAll, nil
}

// router spreads requests over the replicas round robin, request by
// request: the steps of one flow, and the refreshes of one chain, land on
// different replicas. Every request carries the Host of the first replica,
// as a load balancer passes the public host through, so that every replica
// derives the same issuer and resource from it.
type router struct {
	bases []string
	host  string // the public host: the first replica's host:port
	next  atomic.Uint64
}

func newRouter(reps []*replica) *router {
	r := &router{}
	for _, rep := range reps {
		r.bases = append(r.bases, rep.base)
	}
	u, _ := url.Parse(r.bases[0])
	r.host = u.Host
	return r
}

// pick is the base URL of the replica for the next request.
func (r *router) pick() string {
	if len(r.bases) == 1 {
		return r.bases[0]
	}
	return r.bases[(r.next.Add(1)-1)%uint64(len(r.bases))]
}

// withPostgresParams adds runtime parameters to a postgres:// DSN.
func withPostgresParams(dsn string, params url.Values) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("-dsn: want a postgres://USER@HOST:PORT/DATABASE URL")
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// seedGrants stores n grants of clientID, each with an unrotated refresh
// token, through st's CreateGrant, from 16 goroutines: the load's own
// grants are then looked up among n others. With PostgreSQL, st is a pool
// of its own whose sessions commit without waiting for the WAL flush
// (synchronous_commit=off): the seeding's durability is not measured.
func seedGrants(ctx context.Context, st store.Store, clientID, resource string, n int, progress io.Writer) (time.Duration, error) {
	const workers = 16
	start := time.Now()
	var done atomic.Int64
	errs := make([]error, workers)
	now := time.Now()
	u := identity.User{ID: "local:" + user, Username: user}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var id [16]byte
			for i := w; i < n && ctx.Err() == nil; i += workers {
				rand.Read(id[:])
				g := &store.Grant{ID: fmt.Sprintf("seed-%x", id), ClientID: clientID, User: u, Resource: resource,
					Scopes: []string{}, CreatedAt: now}
				h := sha256.Sum256(id[:])
				rt := &store.RefreshToken{Hash: h[:], GrantID: g.ID, Generation: 1, Scopes: []string{},
					CreatedAt: now, ExpiresAt: now.Add(30 * 24 * time.Hour)}
				if err := st.CreateGrant(ctx, g, rt); err != nil {
					errs[w] = fmt.Errorf("seeding grant %d: %w", i, err)
					return
				}
				if d := done.Add(1); d%100_000 == 0 {
					fmt.Fprintf(progress, "seeded %d grants (%.0f/s)\n", d, float64(d)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), ctx.Err()
}

// openPostgres opens a store on dsn, with the runtime parameters extra.
func openPostgres(dsn string, extra url.Values) func(ctx context.Context) (store.Store, error) {
	return func(ctx context.Context) (store.Store, error) {
		d, err := withPostgresParams(dsn, extra)
		if err != nil {
			return nil, err
		}
		return postgres.Open(ctx, d)
	}
}

// memoryText is what the process holds after the rounds: its resident set
// (every replica, their pools and the load generator together) and the Go
// heap in use.
func memoryText(replicas int) string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := "?"
	if b, err := bench.ProcessRSS(os.Getpid()); err == nil {
		rss = fmt.Sprintf("%.0f MB", float64(b)/1e6)
	}
	return fmt.Sprintf("this process (%d replica%s and the load generator): RSS %s, Go heap in use %.0f MB, Go runtime total %.0f MB",
		replicas, strings.Repeat("s", min(replicas-1, 1)), rss, float64(ms.HeapInuse)/1e6, float64(ms.Sys)/1e6)
}

// openStore prepares the store of -store: open gives each replica its
// handle, seed (PostgreSQL only) a handle for seeding grants, closeStore
// what stays after the replicas are closed (the files, the server).
func openStore(ctx context.Context, o options, h *harness, logf func(string, ...any)) (open, seed func(context.Context) (store.Store, error), desc string, closeStore func(), err error) {
	closeStore = func() {}
	switch o.storeKind {
	case "memory":
		st := memory.New()
		return once(st), nil, "memory (store/memory)", closeStore, nil
	case "sqlite":
		dir := o.dir
		var cleanups []func()
		closeStore = func() {
			for _, c := range cleanups {
				c()
			}
		}
		if dir == "" {
			d, err := os.MkdirTemp("", "flowload-")
			if err != nil {
				return nil, nil, "", closeStore, err
			}
			cleanups = append(cleanups, func() { os.RemoveAll(d) })
			dir = d
		}
		path := filepath.Join(dir, fmt.Sprintf("flowload-%d.db", os.Getpid()))
		if o.dir != "" {
			cleanups = append(cleanups, func() {
				for _, p := range []string{path, path + "-wal", path + "-shm"} {
					os.Remove(p)
				}
			})
		}
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, nil, "", closeStore, err
		}
		h.sqlite = s
		syncCall := "fsync"
		if o.fdatasync {
			syncCall = "fdatasync"
		}
		return once(s), nil, fmt.Sprintf("sqlite (store/sqlite, WAL, synchronous=FULL, %s; file on %s)", syncCall, bench.FSType(dir)), closeStore, nil
	}
	dsn, desc := o.dsn, "postgres (store/postgres, the database of -dsn)"
	if dsn == "" {
		srv, err := bench.StartPostgres(ctx, bench.PostgresOptions{FsyncOff: o.pgFsyncOff, Dir: o.dir})
		if err != nil {
			return nil, nil, "", closeStore, err
		}
		closeStore = func() {
			if err := srv.Stop(); err != nil {
				logf("stopping PostgreSQL: %v", err)
			}
		}
		h.pgPid = srv.Pid()
		dsn, desc = srv.DSN, "postgres (store/postgres; "+srv.Desc+"; a server of the harness's own)"
	}
	if _, err := withPostgresParams(dsn, nil); err != nil {
		return nil, nil, "", closeStore, err
	}
	seedParams := url.Values{"synchronous_commit": {"off"}, "pool_max_conns": {"16"}, "application_name": {"flowload-seed"}}
	var params url.Values
	if o.pool > 0 {
		params = url.Values{"pool_max_conns": {strconv.Itoa(o.pool)}}
		desc += fmt.Sprintf("; pool_max_conns=%d per replica", o.pool)
	}
	if h.dsn, err = withPostgresParams(dsn, params); err != nil {
		return nil, nil, "", closeStore, err
	}
	return openPostgres(dsn, params), openPostgres(dsn, seedParams), desc, closeStore, nil
}

// once hands out st to the first caller only: SQLite and memory stores
// cannot be shared by replicas (check refuses -replicas with them).
func once(st store.Store) func(context.Context) (store.Store, error) {
	var used bool
	return func(context.Context) (store.Store, error) {
		if used {
			return nil, errors.New("this store serves one replica")
		}
		used = true
		return st, nil
	}
}

// pgCPU is the CPU time the harness's PostgreSQL server has used so far,
// or -1 when there is none or it cannot be read.
func (h *harness) pgCPU() time.Duration {
	if h.pgPid == 0 {
		return -1
	}
	d, err := bench.ChildrenCPU(h.pgPid)
	if err != nil {
		return -1
	}
	return d
}

// pgCPU records the PostgreSQL server's CPU between two readings, in
// cores, and takes it out of the other processes' share: the server is
// part of what is measured, not a disturbance.
func (r *round) pgCPU(from, to time.Duration) {
	r.pg = -1
	if from < 0 || to < 0 || r.res.Elapsed <= 0 {
		return
	}
	r.pg = (to - from).Seconds() / r.res.Elapsed.Seconds()
	if r.res.CPU.OK {
		r.res.CPU.Others = max(r.res.CPU.Others-r.pg, 0)
	}
}

// pgPerOp is the server's CPU per operation.
func (r *round) pgPerOp() time.Duration {
	if r.pg < 0 || r.res.OK == 0 {
		return 0
	}
	return time.Duration(r.pg * float64(r.res.Elapsed) / float64(r.res.OK))
}

func (r *round) pgText() string {
	if r.pg < 0 {
		return ""
	}
	return fmt.Sprintf("PostgreSQL %.2f cores (%s/op), ", r.pg, bench.FmtDur(r.pgPerOp()))
}

// gatewaysCPU moves the gateway processes' CPU between two readings from
// the other processes' share to this process's: with -gateway they are
// what is measured, as the in-process gateways are.
func (r *round) gatewaysCPU(from, to time.Duration) {
	if from < 0 || to < 0 || !r.res.CPU.OK || r.res.Elapsed <= 0 {
		return
	}
	c := (to - from).Seconds() / r.res.Elapsed.Seconds()
	r.res.CPU.Self += c
	r.res.CPU.Others = max(r.res.CPU.Others-c, 0)
}
