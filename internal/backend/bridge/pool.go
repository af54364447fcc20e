package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/backend/proxy"
	"github.com/mcpgate/mcpgate/internal/bytebudget"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/sandbox"
)

// The kinds of backend failure the bridge counts (metrics.BackendError);
// a pool's series of each start at zero.
const (
	failUnavailable = "unavailable" // a server or connection that could not start
	failBusy        = "busy"        // the cap reached, none idle
	failSend        = "send"        // a message the server did not take
	failExited      = "exited"      // a stdio server that exited unasked
)

// Log messages of a stdio server's life that ProbeStdio reads back.
const (
	msgStderr  = "stdio server stderr"
	msgExited  = "stdio server exited"
	msgStopped = "stdio server stopped"
	msgLeftOut = "server's lines left out of the log"
)

// What one server (a stdio process, an SSE connection) makes the gateway
// log of its own text, its stderr lines and what it sent that is no
// message, at most: logBurst lines at once, then logRate a second.
const (
	logBurst = 100
	logRate  = 10
)

// Defaults of StdioOptions and SSEOptions.
const (
	DefaultIdleTimeout  = 10 * time.Minute
	DefaultMaxProcesses = 16 // StdioOptions.MaxProcesses, SSEOptions.MaxConnections
	DefaultStartTimeout = 30 * time.Second
	DefaultMaxBodyBytes = 4 << 20
	DefaultPostTimeout  = 30 * time.Second
)

// stopGrace is how long a stopped server has between SIGTERM and SIGKILL.
const stopGrace = 5 * time.Second

// StdioOptions configure a Pool of stdio server processes. Command is
// required; zero values of the others take their defaults.
type StdioOptions struct {
	// Command is the server's argv; Command[0] is looked up in the
	// gateway's PATH (config.SplitCommand turns a command line into one).
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
	// Isolation confines every server (internal/sandbox): "" or "auto"
	// uses Landlock, restricting a server's filesystem to its directory,
	// the system's read-only paths and ReadPaths and keeping it from
	// signalling anything outside its domain; NewStdio fails when the
	// kernel offers nothing. "none" runs servers unconfined, with a
	// warning in the log.
	Isolation string
	// ReadPaths are absolute paths (files or directories) every server
	// may read and execute from besides the system's: where its program,
	// scripts and data live when that is not under /usr.
	ReadPaths []string
	// UIDs, when the gateway runs as root, give each user's server a uid
	// (and gid) of its own from this range, recorded as the owner of the
	// user's directory (sandbox.HomeFor); zero gives none.
	UIDs sandbox.Range
	// Private are paths no server may read, such as the gateway's data
	// directory and logs: NewStdio fails when a path servers may read
	// holds one (Dir is always private).
	Private []string
	// Resource names the protected resource in log lines.
	Resource string
	// Metrics counts the processes running and the backend's failures;
	// nil: none.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// SSEOptions configure a Pool of connections to a legacy HTTP+SSE MCP
// server (protocol 2024-11-05). URL is required; zero values of the
// others take their defaults.
type SSEOptions struct {
	// URL is the server's SSE endpoint (absolute http or https, without
	// user info or fragment): a GET there opens a user's connection.
	URL string
	// IdentityHeaders name the headers that carry the caller on the GET
	// and on every POST, with the proxy's defaults (X-Forwarded-User, …);
	// "-" sends nothing for a field.
	IdentityHeaders proxy.IdentityHeaders
	// IdentityToken, when set, is called for the GET and every POST and
	// its result sent in IdentityHeaders.Token (default X-Mcpgate-Identity).
	// An error fails that request; it is never sent without the token.
	IdentityToken func(c *identity.Caller) (string, error)
	// Transport reaches the server; nil means proxy.NewTransport().
	// Redirects are never followed.
	Transport http.RoundTripper
	// PostTimeout bounds one POST of a message (DefaultPostTimeout).
	PostTimeout time.Duration
	// IdleTimeout closes a connection that has had no request in flight
	// for this long (DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxConnections caps the users' connections open at once
	// (DefaultMaxProcesses).
	MaxConnections int
	// StartTimeout bounds the wait for the endpoint event, and then for
	// the server's initialize answer (DefaultStartTimeout).
	StartTimeout time.Duration
	// MaxBodyBytes limits a request body (DefaultMaxBodyBytes); larger
	// bodies get 413.
	MaxBodyBytes int64
	// Resource names the protected resource in log lines.
	Resource string
	// Metrics counts the backend's failures; nil: none.
	Metrics *metrics.Metrics
	Logger  *slog.Logger
}

// common are the settings both kinds of link share.
type common struct {
	idleTimeout  time.Duration
	maxLinks     int
	startTimeout time.Duration
	maxBodyBytes int64
	resource     string
	metrics      *metrics.Metrics
	logger       *slog.Logger
	tail         bool // logger is a probe's tail of the server's lines, not the gateway's log
}

func (c *common) defaults() {
	if c.idleTimeout <= 0 {
		c.idleTimeout = DefaultIdleTimeout
	}
	if c.maxLinks <= 0 {
		c.maxLinks = DefaultMaxProcesses
	}
	if c.startTimeout <= 0 {
		c.startTimeout = DefaultStartTimeout
	}
	if c.maxBodyBytes <= 0 {
		c.maxBodyBytes = DefaultMaxBodyBytes
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
}

// Pool serves one MCP server link per user — a stdio process or an SSE
// connection — over the streamable HTTP transport. It is an http.Handler
// to mount behind the resource guard; Close ends every link.
type Pool struct {
	opts    common
	noun    string                 // what a link is, in log lines: "stdio server"
	lost    string                 // what a call in flight is answered when its link ends
	newConn func(l *link) linkConn // the kind of link
	log     *slog.Logger
	ids     atomic.Int64      // bridge request ids
	replica string            // the first part of its session ids, random
	dir     string            // a stdio pool's base of the users' directories
	answers bytebudget.Budget // the answers being written to their clients (SEC-204)

	mu       sync.Mutex
	links    map[string]*link     // user ID → link
	sessions map[string]*session  // Mcp-Session-Id → session
	streams  map[string][]*stream // user ID → open GET streams, oldest first
	seq      int64
	closed   bool
	sweptAt  time.Time
}

var _ http.Handler = (*Pool)(nil)

func newPool(opts common, noun, lost string, newConn func(*link) linkConn) *Pool {
	opts.defaults()
	return &Pool{
		opts:     opts,
		noun:     noun,
		lost:     lost,
		newConn:  newConn,
		log:      opts.logger,
		replica:  newReplicaID(),
		answers:  bytebudget.Budget{Total: maxAnswersTotal, PerUser: maxAnswersPerUser},
		links:    map[string]*link{},
		sessions: map[string]*session{},
		streams:  map[string][]*stream{},
	}
}

// NewStdio checks opts and returns a Pool of stdio server processes. It
// starts nothing: a user's server starts on that user's first request.
func NewStdio(opts StdioOptions) (*Pool, error) {
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
	spec := &stdioSpec{
		command: append([]string(nil), opts.Command...),
		env:     append([]string(nil), opts.Env...),
		dir:     opts.Dir,
	}
	if spec.dir == "" {
		spec.dir = filepath.Join(os.TempDir(), "mcpgate-stdio")
	}
	// A command with a path is the operator's file, relative to the
	// gateway's working directory: made absolute, it is neither looked up
	// in the server's working directory (the user's HOME) nor its
	// directory granted as ".".
	if strings.Contains(spec.command[0], "/") {
		abs, err := filepath.Abs(spec.command[0])
		if err != nil {
			return nil, fmt.Errorf("stdio: command: %w", err)
		}
		spec.command[0] = abs
	}
	dir, err := filepath.Abs(spec.dir)
	if err != nil {
		return nil, fmt.Errorf("stdio: directory: %w", err)
	}
	spec.dir, spec.private = dir, opts.Private
	if err := spec.makeDir(); err != nil {
		return nil, err
	}
	if err := spec.isolate(opts); err != nil {
		return nil, err
	}
	c := common{idleTimeout: opts.IdleTimeout, maxLinks: opts.MaxProcesses, startTimeout: opts.StartTimeout,
		maxBodyBytes: opts.MaxBodyBytes, resource: opts.Resource, metrics: opts.Metrics, logger: opts.Logger}
	if spec.isolation == sandbox.Auto && opts.Logger != nil {
		// Says what the kernel offers, which securityfs may not show.
		opts.Logger.Info("stdio isolation", "resource", opts.Resource, "landlock_abi", spec.landlock, "scoped", spec.landlock >= sandbox.ScopedABI,
			"uid_per_user", !spec.uids.IsZero())
	}
	if _, err := exec.LookPath(spec.command[0]); err != nil && opts.Logger != nil {
		// It may be installed later; until then each server's start
		// fails, and what a client sees says only "unavailable".
		opts.Logger.Warn("stdio: the command is not found: every server start fails until it is there", "resource", opts.Resource, "command", spec.command[0], "error", err.Error())
	}
	if spec.isolation == sandbox.None && opts.Logger != nil {
		opts.Logger.Warn("stdio servers run unconfined (stdio_isolation: none): each can read the gateway's key, database and environment, and reach the other users' servers and files", "resource", opts.Resource)
		if os.Geteuid() == 0 {
			opts.Logger.Warn("stdio servers run as root with every capability (stdio_isolation: none as root): each can do anything on this host", "resource", opts.Resource)
		}
	}
	p := newPool(c, "stdio server", "MCP server exited", func(l *link) linkConn { return newStdioConn(l, spec) })
	p.dir = spec.dir
	opts.Metrics.Backend(opts.Resource, true, failUnavailable, failBusy, failSend, failExited)
	return p, nil
}

// NewSSE checks opts and returns a Pool of connections to the legacy
// HTTP+SSE server at opts.URL. It connects to nothing: a user's
// connection opens on that user's first request.
func NewSSE(opts SSEOptions) (*Pool, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return nil, fmt.Errorf("sse: upstream %q must be an absolute http or https URL without user info or fragment", opts.URL)
	}
	spec := &sseSpec{
		url:         u,
		ids:         opts.IdentityHeaders.WithDefaults(),
		token:       opts.IdentityToken,
		postTimeout: opts.PostTimeout,
	}
	if spec.postTimeout <= 0 {
		spec.postTimeout = DefaultPostTimeout
	}
	rt := opts.Transport
	if rt == nil {
		rt = proxy.NewTransport()
	}
	spec.client = &http.Client{
		Transport: rt,
		// Identity headers must never follow a redirect elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := common{idleTimeout: opts.IdleTimeout, maxLinks: opts.MaxConnections, startTimeout: opts.StartTimeout,
		maxBodyBytes: opts.MaxBodyBytes, resource: opts.Resource, metrics: opts.Metrics, logger: logger.With("upstream", safetext.URL(u))}
	opts.Metrics.Backend(opts.Resource, false, failUnavailable, failBusy, failSend)
	return newPool(c, "SSE connection", "MCP server connection lost", func(l *link) linkConn { return newSSEConn(l, spec) }), nil
}

// perUserLinks bounds the links of one user, who has one per client and
// identity (linkKey): a user's many clients cannot take every process,
// and the applications one person runs at once (Claude, Cursor, VS Code,
// an inspector…) each keep theirs. A pool of fewer than twice as many
// gives a user half of it, and at least 2 (perUser): one user's calls,
// each held open, never take every process of a pool of 4 or more, and
// one person's two applications each keep theirs in a pool of 2 or 3.
const perUserLinks = 8

// perUser is how many links one user may hold in a pool of c.maxLinks.
func (c common) perUser() int { return min(perUserLinks, max(2, c.maxLinks/2)) }

// linkKey names the link a caller's requests go to: one per user, OAuth
// client and identity the server is told. Two clients of one user never
// share a server, whose requests to its client (sampling, elicitation,
// roots) and whose notifications go to a stream of that client only, and
// are answered by it only; a user whose groups, name or email changed
// gets a server that is told the new ones (SEC-153).
func linkKey(c *identity.Caller) string {
	email := ""
	if c.User.EmailVerified {
		email = c.User.Email
	}
	h := sha256.New()
	for _, v := range []string{c.User.ID, c.ClientID, c.User.Username, c.User.Name, email, identity.JoinGroups(c.User.Groups)} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// acquire returns the caller's initialized link, opening it (with init)
// when there is none, and counts a request in flight on it; release
// undoes that. At a cap it evicts the least recently used idle link, or
// fails with errBusy.
func (p *Pool) acquire(ctx context.Context, c *identity.Caller, init initParams) (*link, error) {
	key := linkKey(c)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errClosed
	}
	l := p.links[key]
	var victim *link
	if l == nil {
		var ok bool
		if victim, ok = p.room(c.User.ID); !ok {
			p.mu.Unlock()
			return nil, errBusy
		}
		l = newLink(p, c, key)
		p.links[key] = l
		go l.run(init)
	}
	l.inflight++
	p.seq++
	l.useSeq = p.seq
	if l.idle != nil {
		l.idle.Stop()
	}
	p.mu.Unlock()
	if victim != nil {
		victim.log.Info(p.noun+" evicted for another (cap reached)", "max", p.opts.maxLinks, "max_per_user", p.opts.perUser())
		go victim.conn.stop(stopGrace)
	}
	select {
	case <-l.ready:
	case <-ctx.Done():
		p.release(l)
		return nil, ctx.Err()
	}
	if l.initErr != nil {
		p.release(l)
		return nil, l.initErr
	}
	return l, nil
}

// room makes space for a new link of user; p.mu is held. A user holds at
// most perUser and the pool maxLinks: past either, an idle link (the
// user's, or anyone's) gives way, and is returned to be stopped: one with
// no event stream open first (no client listens to it), then the least
// recently used. ok is false when none is idle.
func (p *Pool) room(user string) (victim *link, ok bool) {
	mine := 0
	for _, q := range p.links {
		if q.user == user {
			mine++
		}
	}
	onlyMine := mine >= p.opts.perUser()
	if !onlyMine && len(p.links) < p.opts.maxLinks {
		return nil, true
	}
	better := func(q, than *link) bool {
		qListened, thanListened := len(p.streams[q.key]) > 0, len(p.streams[than.key]) > 0
		if qListened != thanListened {
			return !qListened
		}
		return q.useSeq < than.useSeq
	}
	for _, q := range p.links {
		if (!onlyMine || q.user == user) && q.inflight == 0 && (victim == nil || better(q, victim)) {
			victim = q
		}
	}
	if victim == nil {
		return nil, false
	}
	delete(p.links, victim.key)
	if victim.idle != nil {
		victim.idle.Stop()
	}
	return victim, true
}

func (p *Pool) release(l *link) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.inflight--
	l.lastUse = time.Now()
	if l.inflight == 0 && p.links[l.key] == l {
		p.armIdle(l, p.opts.idleTimeout)
	}
}

// armIdle schedules the idle check of l; p.mu is held.
func (p *Pool) armIdle(l *link, d time.Duration) {
	if l.idle == nil {
		l.idle = time.AfterFunc(d, func() { p.reapIfIdle(l) })
		return
	}
	l.idle.Reset(d)
}

func (p *Pool) reapIfIdle(l *link) {
	p.mu.Lock()
	if p.links[l.key] != l || l.inflight > 0 {
		p.mu.Unlock()
		return
	}
	if left := p.opts.idleTimeout - time.Since(l.lastUse); left > 0 {
		p.armIdle(l, left)
		p.mu.Unlock()
		return
	}
	delete(p.links, l.key)
	p.mu.Unlock()
	l.log.Info("stopping an idle "+p.noun, "idle_timeout", p.opts.idleTimeout)
	l.conn.stop(stopGrace)
}

// forget removes l from the pool if it is still its key's link.
func (p *Pool) forget(l *link) {
	p.mu.Lock()
	if p.links[l.key] == l {
		delete(p.links, l.key)
	}
	if l.idle != nil {
		l.idle.Stop()
	}
	p.mu.Unlock()
}

// current is the caller's link, or nil; it never opens one.
func (p *Pool) current(c *identity.Caller) *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.links[linkKey(c)]
}

// Close ends every link — a stdio server gets SIGTERM to its process
// group, SIGKILL after a grace period or when ctx ends first; an SSE
// connection is closed — and every GET stream. Later requests get 503.
// It returns ctx.Err() if ctx ended before every link had ended.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	links := make([]*link, 0, len(p.links))
	for _, l := range p.links {
		links = append(links, l)
		if l.idle != nil {
			l.idle.Stop()
		}
	}
	p.links = map[string]*link{}
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
	for _, l := range links {
		wg.Go(func() { l.conn.stop(grace) })
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		for _, l := range links {
			l.conn.kill()
		}
		return ctx.Err()
	}
}
