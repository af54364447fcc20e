package stdio

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// Defaults of Options.
const (
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultMaxProcesses = 16
	DefaultStartTimeout = 30 * time.Second
	DefaultMaxBodyBytes = 4 << 20
)

// stopGrace is how long a stopped server has between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// Options configure a Pool. Command is required; zero values of the others
// take their defaults.
type Options struct {
	// Command is the server's argv; Command[0] is looked up in the
	// gateway's PATH. See SplitCommand for a command line.
	Command []string
	// Env holds KEY=VALUE pairs added to every server's environment, which
	// otherwise holds only PATH, LANG, TZ, HOME and the MCPGATE_USER*
	// variables. They may override PATH, LANG and TZ, not the others.
	Env []string
	// Dir is the base directory of the users' directories: each user's
	// server runs in Dir/<hex of the first 16 bytes of sha256(user ID)>,
	// created 0700, which is also its HOME. Default: mcpgate-stdio under
	// the system's temporary directory.
	Dir string
	// IdleTimeout stops a server that has had no request in flight for
	// this long (DefaultIdleTimeout). An open GET stream does not count.
	IdleTimeout time.Duration
	// MaxProcesses caps the servers running at once (DefaultMaxProcesses).
	MaxProcesses int
	// StartTimeout bounds the wait for a new server's initialize answer
	// (DefaultStartTimeout).
	StartTimeout time.Duration
	// MaxBodyBytes limits a request body (DefaultMaxBodyBytes); larger
	// bodies get 413.
	MaxBodyBytes int64
	// Resource names the protected resource in log lines.
	Resource string
	Logger   *slog.Logger
}

// Pool runs one stdio MCP server per user and serves them over the
// streamable HTTP transport. It is an http.Handler to mount behind the
// resource guard; Close stops every server.
type Pool struct {
	opts Options
	log  *slog.Logger
	ids  atomic.Int64 // bridge request ids

	mu       sync.Mutex
	procs    map[string]*process  // user ID → server
	sessions map[string]*session  // Mcp-Session-Id → session
	streams  map[string][]*stream // user ID → open GET streams, oldest first
	seq      int64
	closed   bool
	sweptAt  time.Time
}

var _ http.Handler = (*Pool)(nil)

// New checks opts and returns a Pool. It starts nothing: a user's server
// starts on that user's first request.
func New(opts Options) (*Pool, error) {
	if len(opts.Command) == 0 || opts.Command[0] == "" {
		return nil, errors.New("stdio: no command")
	}
	for _, kv := range opts.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(kv, "\x00") {
			return nil, fmt.Errorf("stdio: environment entry %q is not KEY=VALUE", kv)
		}
		switch k {
		case "HOME", "MCPGATE_USER", "MCPGATE_USER_NAME", "MCPGATE_USER_EMAIL", "MCPGATE_USER_GROUPS":
			return nil, fmt.Errorf("stdio: environment variable %s is set by mcpgate", k)
		}
	}
	opts.Env = append([]string(nil), opts.Env...)
	opts.Command = append([]string(nil), opts.Command...)
	if opts.Dir == "" {
		opts.Dir = filepath.Join(os.TempDir(), "mcpgate-stdio")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("stdio: directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("stdio: directory: %w", err)
	}
	opts.Dir = dir
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxProcesses <= 0 {
		opts.MaxProcesses = DefaultMaxProcesses
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Pool{
		opts:     opts,
		log:      opts.Logger,
		procs:    map[string]*process{},
		sessions: map[string]*session{},
		streams:  map[string][]*stream{},
	}, nil
}

// acquire returns the user's initialized server, starting it (with init)
// when none runs, and counts a request in flight on it; release undoes
// that. At the cap it evicts the least recently used idle server, or fails
// with errBusy.
func (p *Pool) acquire(ctx context.Context, c *identity.Caller, init initParams) (*process, error) {
	user := c.User.ID
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	pr := p.procs[user]
	var victim *process
	if pr == nil {
		if len(p.procs) >= p.opts.MaxProcesses {
			for _, q := range p.procs {
				if q.inflight == 0 && (victim == nil || q.useSeq < victim.useSeq) {
					victim = q
				}
			}
			if victim == nil {
				p.mu.Unlock()
				return nil, errBusy
			}
			delete(p.procs, victim.user)
			if victim.idle != nil {
				victim.idle.Stop()
			}
		}
		pr = newProcess(p, user)
		p.procs[user] = pr
		go pr.run(c, init)
	}
	pr.inflight++
	p.seq++
	pr.useSeq = p.seq
	if pr.idle != nil {
		pr.idle.Stop()
	}
	p.mu.Unlock()
	if victim != nil {
		victim.log.Info("stdio server evicted for another user's (process cap reached)", "max_processes", p.opts.MaxProcesses)
		go victim.stop(stopGrace)
	}
	select {
	case <-pr.ready:
	case <-ctx.Done():
		p.release(pr)
		return nil, ctx.Err()
	}
	if pr.initErr != nil {
		p.release(pr)
		return nil, pr.initErr
	}
	return pr, nil
}

func (p *Pool) release(pr *process) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pr.inflight--
	pr.lastUse = time.Now()
	if pr.inflight == 0 && p.procs[pr.user] == pr {
		p.armIdle(pr, p.opts.IdleTimeout)
	}
}

// armIdle schedules the idle check of pr; p.mu is held.
func (p *Pool) armIdle(pr *process, d time.Duration) {
	if pr.idle == nil {
		pr.idle = time.AfterFunc(d, func() { p.reapIfIdle(pr) })
		return
	}
	pr.idle.Reset(d)
}

func (p *Pool) reapIfIdle(pr *process) {
	p.mu.Lock()
	if p.procs[pr.user] != pr || pr.inflight > 0 {
		p.mu.Unlock()
		return
	}
	if left := p.opts.IdleTimeout - time.Since(pr.lastUse); left > 0 {
		p.armIdle(pr, left)
		p.mu.Unlock()
		return
	}
	delete(p.procs, pr.user)
	p.mu.Unlock()
	pr.log.Info("stopping an idle stdio server", "idle_timeout", p.opts.IdleTimeout)
	pr.stop(stopGrace)
}

// forget removes pr from the pool if it is still the user's server.
func (p *Pool) forget(pr *process) {
	p.mu.Lock()
	if p.procs[pr.user] == pr {
		delete(p.procs, pr.user)
	}
	if pr.idle != nil {
		pr.idle.Stop()
	}
	p.mu.Unlock()
}

// current is the user's running server, or nil; it never starts one.
func (p *Pool) current(user string) *process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.procs[user]
}

// Close stops every server (SIGTERM to its process group, SIGKILL after
// a grace period or when ctx ends first) and ends every GET stream. Later
// requests get 503. It returns ctx.Err() if ctx ended before every server
// had exited.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	procs := make([]*process, 0, len(p.procs))
	for _, pr := range p.procs {
		procs = append(procs, pr)
		if pr.idle != nil {
			pr.idle.Stop()
		}
	}
	p.procs = map[string]*process{}
	var streams []*stream
	for _, ss := range p.streams {
		streams = append(streams, ss...)
	}
	p.mu.Unlock()
	for _, st := range streams {
		st.end()
	}
	grace := stopGrace
	if dl, ok := ctx.Deadline(); ok {
		grace = min(grace, time.Until(dl))
	}
	var wg sync.WaitGroup
	for _, pr := range procs {
		wg.Go(func() { pr.stop(grace) })
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		for _, pr := range procs {
			pr.mu.Lock()
			pid := pr.pid
			pr.mu.Unlock()
			if pid != 0 {
				killGroup(pid)
			}
		}
		return ctx.Err()
	}
}
