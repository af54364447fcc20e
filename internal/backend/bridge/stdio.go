package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/privatedir"
	"github.com/mcpgate/mcpgate/internal/sandbox"
)

// Limits on what a stdio server writes.
const (
	maxStderrLine = 4 << 10 // one log line
	sendQueue     = 256     // messages waiting for the server's input
	// maxQueued bounds the bytes of those messages, as a client stream's
	// queue is bounded (SEC-137): a server that stops reading its stdin
	// would otherwise hold 256 requests of the largest body (SEC-182).
	maxQueued = maxMessage
)

// stdioSpec is what NewStdio checked.
type stdioSpec struct {
	command   []string
	env       []string
	dir       string
	private   []string // StdioOptions.Private
	isolation string   // sandbox.Auto or sandbox.None
	readPaths []string
	uids      sandbox.Range // zero unless the gateway is root and has a range
	landlock  int           // the kernel's Landlock ABI, 0 without
}

// isolate checks and records how servers are confined: it fails when
// they could not be (see sandbox.Check).
func (sp *stdioSpec) isolate(opts StdioOptions) error {
	switch opts.Isolation {
	case "", sandbox.Auto:
		sp.isolation = sandbox.Auto
	case sandbox.None:
		sp.isolation = sandbox.None
	default:
		return fmt.Errorf("stdio: isolation %q: want auto or none", opts.Isolation)
	}
	for _, p := range opts.ReadPaths {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("stdio: read path %q is not absolute", p)
		}
		sp.readPaths = append(sp.readPaths, filepath.Clean(p))
	}
	if sp.isolation == sandbox.None {
		if len(sp.readPaths) > 0 {
			return fmt.Errorf("stdio: %w: read paths with isolation none would be ignored (servers read everything): remove them, or use auto", sandbox.ErrRefused)
		}
		return nil
	}
	abi, root := sandbox.Available()
	sp.landlock = abi
	if root {
		sp.uids = opts.UIDs
	}
	if err := sandbox.Check(sp.isolation, !sp.uids.IsZero()); err != nil {
		return fmt.Errorf("stdio: %w", err)
	}
	exe, _ := exec.LookPath(sp.command[0]) // not found yet: checked when it starts
	if err := sandbox.CheckGrants(exe, sp.readPaths, append([]string{sp.dir}, opts.Private...)); err != nil {
		return err
	}
	if sp.uids.IsZero() {
		return nil
	}
	return sandbox.Searchable(dataDir(sp.dir, opts.Private), sp.dir, func(d string) {
		if opts.Logger != nil {
			opts.Logger.Warn("stdio: made a directory searchable (o+x, not readable) so that the servers' uids reach their own directories below it", "dir", d)
		}
	})
}

// makeDir makes the servers' base directory as the store and the key file
// make theirs: parents made above the data directory searchable, inside
// it 0700, of which the sandbox opens to search only what the servers'
// uids traverse (SEC-22).
func (sp *stdioSpec) makeDir() error {
	if err := privatedir.Make(dataDir(sp.dir, sp.private), sp.dir); err != nil {
		return fmt.Errorf("stdio: directory: %w", err)
	}
	return nil
}

// remakeDir makes the base directory again, as NewStdio made it, when it
// is gone: a check's probe that ran while the gateway started removes the
// directories it made, which the gateway had found there and which stay
// empty until a user's first server.
func (sp *stdioSpec) remakeDir(log *slog.Logger) error {
	if _, err := os.Stat(sp.dir); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := sp.makeDir(); err != nil || sp.uids.IsZero() {
		return err
	}
	return sandbox.Searchable(dataDir(sp.dir, sp.private), sp.dir, func(d string) {
		log.Warn("stdio: made a directory searchable (o+x, not readable) so that the servers' uids reach their own directories below it", "dir", d)
	})
}

// dataDir is the highest of the private paths that holds dir (the
// gateway's data directory), or dir itself: the directories whose modes
// the gateway may change.
func dataDir(dir string, private []string) string {
	top := dir
	for _, p := range private {
		abs, err := filepath.Abs(p)
		if err == nil && len(abs) < len(top) && (abs == "/" || strings.HasPrefix(dir, abs+"/")) {
			top = abs
		}
	}
	return top
}

// startCmd starts cmd confined to home, under the user's own uid when
// there is a range, unless isolation is off. It returns the uid the
// server runs as, and that uid's credentials when it is the user's own
// (nil under the gateway's), which sandbox.Ended takes once it exits.
func (sp *stdioSpec) startCmd(cmd *exec.Cmd, home string) (int, *sandbox.Cred, error) {
	if sp.isolation == sandbox.None {
		return os.Geteuid(), nil, cmd.Start()
	}
	p := sandbox.Policy{Home: home, ReadPaths: sp.readPaths}
	if !sp.uids.IsZero() {
		cred, err := sandbox.HomeFor(sp.uids, home)
		if err != nil {
			return 0, nil, err
		}
		p.Cred = cred
	}
	if err := sandbox.Start(cmd, p); err != nil {
		return 0, nil, err
	}
	if p.Cred != nil {
		return int(p.Cred.UID), p.Cred, nil
	}
	return os.Geteuid(), nil, nil
}

// confinement says what holds a server of uid: "landlock ABI 7 + uid
// 2000123" for one under a uid of its own, "landlock ABI 7, gateway's uid
// 0" for one under the gateway's. Capabilities are always dropped.
func (sp *stdioSpec) confinement(uid int) string {
	if sp.isolation == sandbox.None {
		return fmt.Sprintf("none: uid %d, unconfined", uid)
	}
	out := "no landlock"
	if sp.landlock > 0 {
		out = fmt.Sprintf("landlock ABI %d", sp.landlock)
		if sp.landlock < sandbox.ScopedABI {
			out += " (files only)"
		}
	}
	if !sp.uids.IsZero() {
		return fmt.Sprintf("%s + uid %d, no capabilities", out, uid)
	}
	return fmt.Sprintf("%s, gateway's uid %d, no capabilities", out, uid)
}

// stdioConn is a link to a stdio server process.
type stdioConn struct {
	l    *link
	spec *stdioSpec

	out      chan []byte   // lines for stdin, written by writer
	queued   atomic.Int64  // bytes in out, at most maxQueued
	quit     chan struct{} // closed to close stdin
	quitOnce sync.Once

	mu      sync.Mutex
	pid     int
	uid     int           // the server's
	cred    *sandbox.Cred // the user's own uid, when the server runs under it
	stopped bool          // stop was called
}

func newStdioConn(l *link, spec *stdioSpec) *stdioConn {
	return &stdioConn{l: l, spec: spec, out: make(chan []byte, sendQueue), quit: make(chan struct{})}
}

// userDir is the user's working and home directory: a hash of the user ID,
// so that no ID can name a path outside the base directory.
func userDir(base, user string) string {
	sum := sha256.Sum256([]byte(user))
	return filepath.Join(base, hex.EncodeToString(sum[:16]))
}

// environ is the server's whole environment: nothing of the gateway's
// (which holds its secrets) but PATH, LANG and TZ, then StdioOptions.Env,
// then HOME and the user, which StdioOptions.Env cannot override.
func (s *stdioConn) environ(c *identity.Caller, home string) []string {
	env := []string{"PATH=" + defaultPath()}
	for _, k := range []string{"LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, s.spec.env...)
	env = append(env, "HOME="+home)
	add := func(k, v string) {
		if v == "" {
			return
		}
		if !identity.Printable(v) {
			s.l.log.Warn("identity value left out of the stdio server's environment: it holds control characters", "variable", k)
			return
		}
		env = append(env, k+"="+v)
	}
	add("MCPGATE_USER", c.User.ID)
	add("MCPGATE_USER_NAME", c.User.Username)
	if c.User.EmailVerified {
		add("MCPGATE_USER_EMAIL", c.User.Email)
	}
	add("MCPGATE_USER_GROUPS", identity.JoinGroups(c.User.Groups))
	return env
}

func defaultPath() string {
	if v := os.Getenv("PATH"); v != "" {
		return v
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

// open starts the server in the user's directory, with the user in its
// environment.
func (s *stdioConn) open(c *identity.Caller) error {
	l := s.l
	home := userDir(s.spec.dir, l.user)
	if err := s.spec.remakeDir(l.log); err != nil {
		l.log.Error("stdio server: creating the servers' directory failed", "error", err)
		l.finish()
		return errStart
	}
	// Mkdir, not MkdirAll: a base directory gone again meanwhile fails
	// this start, and the next makes it as NewStdio did, never 0700 above.
	if err := os.Mkdir(home, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		l.log.Error("stdio server: creating the user's directory failed", "error", err)
		l.finish()
		return errStart
	}
	p, err := openPipes()
	if err != nil {
		l.finish()
		return errStart
	}
	cmd := exec.Command(s.spec.command[0], s.spec.command[1:]...)
	cmd.Env = s.environ(c, home)
	cmd.Dir = home
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.child[0], p.child[1], p.child[2]
	setProcAttrs(cmd)
	err = s.start(cmd, home)
	// The child has its copies; the parent keeps only its own ends, so
	// that reads see EOF when the child's side closes.
	closeFiles(p.child[:])
	if err != nil {
		closeFiles(p.parent[:])
		if err != errClosed {
			l.log.Error("stdio server could not be started", "command", s.spec.command[0], "error", err)
			err = errStart
		}
		l.finish()
		return err
	}
	l.log = l.log.With("pid", s.pid)
	l.log.Info("stdio server started", "command", s.spec.command[0], "isolation", s.spec.isolation, "uid", s.uid, "confinement", s.spec.confinement(s.uid))
	s.supervise(cmd, p.parent[0], p.parent[1], p.parent[2])
	return nil
}

// stdioPipes are the server's stdin, stdout and stderr.
type stdioPipes struct {
	child  [3]*os.File // the server's ends: stdin's reading one, stdout's and stderr's writing ones
	parent [3]*os.File // the gateway's ends
}

func openPipes() (*stdioPipes, error) {
	var p stdioPipes
	for i := range 3 {
		r, w, err := os.Pipe()
		if err != nil {
			closeFiles(p.child[:])
			closeFiles(p.parent[:])
			return nil, err
		}
		if i == 0 {
			p.child[i], p.parent[i] = r, w
		} else {
			p.child[i], p.parent[i] = w, r
		}
	}
	return &p, nil
}

func closeFiles(fs []*os.File) {
	for _, f := range fs {
		if f != nil {
			f.Close()
		}
	}
}

// start starts cmd, unless stop came first (errClosed).
func (s *stdioConn) start(cmd *exec.Cmd, home string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errClosed
	}
	uid, cred, err := s.spec.startCmd(cmd, home)
	if err != nil {
		return err
	}
	s.pid, s.uid, s.cred = cmd.Process.Pid, uid, cred
	s.l.pool.opts.metrics.StdioProcesses(s.l.pool.opts.resource, 1)
	return nil
}

// supervise runs what a started server needs: a writer for its stdin, a
// reader for its stdout and one for its stderr, and the wait for its exit,
// which ends the link.
func (s *stdioConn) supervise(cmd *exec.Cmd, stdin, stdout, stderr *os.File) {
	var readers sync.WaitGroup
	go s.writer(stdin)
	readers.Go(func() { s.logStderr(stderr) })
	readers.Go(func() {
		defer stdout.Close()
		s.readStdout(stdout)
	})
	readersDone := make(chan struct{})
	go func() {
		readers.Wait()
		close(readersDone)
	}()
	go s.wait(cmd, readersDone, stdin, stdout, stderr)
}

// wait waits for the server to exit, and ends the link once its last
// lines are read. pipes are the gateway's ends of the server's.
func (s *stdioConn) wait(cmd *exec.Cmd, readerDone <-chan struct{}, pipes ...*os.File) {
	l := s.l
	err := cmd.Wait()
	m, resource := l.pool.opts.metrics, l.pool.opts.resource
	m.StdioProcesses(resource, -1)
	// Children that outlive the server would hold its pipes open and run
	// on unsupervised: end the whole group, and under the user's own uid
	// every process of it once no server of the user's runs (SEC-22).
	killGroup(s.pid)
	if s.cred != nil {
		if err := sandbox.Ended(s.cred); err != nil {
			l.log.Warn("stdio: ending what the server left running under its uid failed", "uid", s.uid, "error", err)
		}
	}
	// Let the last lines the server wrote be read, briefly: its last words
	// on stderr come before the line that says it exited.
	select {
	case <-readerDone:
	case <-time.After(time.Second):
	}
	// A process that left the group (setsid) may hold the server's ends
	// still: closing ours ends the readers and a write blocked on a full
	// stdin, instead of holding them, their descriptors and goroutines
	// for as long as it lives (SEC-205).
	closeFiles(pipes)
	s.mu.Lock()
	stopped := s.stopped
	s.mu.Unlock()
	if stopped {
		l.log.Info(msgStopped, "status", exitStatus(err))
	} else {
		l.log.Warn(msgExited, "status", exitStatus(err))
		m.BackendError(resource, failExited)
	}
	l.pool.forget(l)
	s.closeInput()
	l.finish()
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (s *stdioConn) closeInput() { s.quitOnce.Do(func() { close(s.quit) }) }

func (s *stdioConn) writer(w *os.File) {
	defer w.Close()
	for {
		select {
		case b := <-s.out:
			_, err := w.Write(b)
			s.queued.Add(-int64(len(b))) // held until written
			if err != nil {
				s.l.log.Debug("writing to the stdio server failed", "error", err)
				return
			}
		case <-s.quit:
			return
		}
	}
}

func (s *stdioConn) logStderr(r *os.File) {
	defer r.Close()
	defer func() { s.l.noise.report(s.l.log) }()
	scanLines(r, maxStderrLine, func(line []byte, truncated bool) {
		if !s.l.noise.allow(s.l.log) {
			return
		}
		if truncated {
			s.l.log.Info(msgStderr, "line", string(line), "truncated", true)
			return
		}
		s.l.log.Info(msgStderr, "line", string(line))
	})
}

// readStdout routes every message the server writes, one per line.
func (s *stdioConn) readStdout(r *os.File) {
	scanLines(r, maxMessage, func(line []byte, truncated bool) {
		if truncated {
			if s.l.noise.allow(s.l.log) {
				s.l.log.Warn("stdio server wrote a message over the size limit; skipped", "limit", maxMessage)
			}
			return
		}
		s.l.receive(line)
	})
}

// send queues one message for the server's stdin; it never blocks. The
// caller is in the server's environment already.
func (s *stdioConn) send(_ context.Context, b []byte, _ *identity.Caller) error { return s.enqueue(b) }

func (s *stdioConn) enqueue(b []byte) error {
	if s.l.isDead() {
		return errDead
	}
	line := append(b, '\n')
	if s.queued.Add(int64(len(line))) > maxQueued {
		s.queued.Add(-int64(len(line)))
		return errQueue
	}
	select {
	case s.out <- line:
		return nil
	default:
		s.queued.Add(-int64(len(line)))
		return errQueue
	}
}

// stop ends the server: SIGTERM to its group and stdin closed, then
// SIGKILL after grace. It returns when the server has exited.
func (s *stdioConn) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopped = true
	pid := s.pid
	s.mu.Unlock()
	if pid == 0 {
		// Never started (or start failed): open sees stopped.
		<-s.l.done
		return
	}
	s.closeInput()
	terminateGroup(pid)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.l.done:
		return
	case <-t.C:
	}
	if grace > 0 {
		s.l.log.Warn("stdio server did not stop in time; killing it", "grace", grace)
	}
	killGroup(pid)
	<-s.l.done
}

func (s *stdioConn) kill() {
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid != 0 {
		killGroup(pid)
	}
}
