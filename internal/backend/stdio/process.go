package stdio

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
)

// Limits on what the server writes.
const (
	maxStdoutLine = 16 << 20 // one JSON-RPC message
	maxStderrLine = 4 << 10  // one log line
	sendQueue     = 256      // messages waiting for the server's stdin
)

var (
	errDead   = errors.New("stdio server exited")
	errQueue  = errors.New("stdio server is not reading its input")
	errStart  = errors.New("stdio server could not be started")
	errBusy   = errors.New("too many stdio server processes")
	errClosed = errors.New("stdio backend closed")
)

// initParams are what the bridge's own initialize asks for.
type initParams struct {
	version string
	caps    json.RawMessage
}

// process is one user's server. Fields under "pool" are guarded by
// Pool.mu; those under "mu" by process.mu; a goroutine never holds both.
type process struct {
	pool *Pool
	user string
	log  *slog.Logger

	out   chan []byte   // lines for stdin, written by writer
	quit  chan struct{} // closed to close stdin
	ready chan struct{} // closed when initialized, or when that failed
	done  chan struct{} // closed when the server has exited and every call failed

	// Set before ready is closed.
	initErr    error
	initResult json.RawMessage

	// pool
	inflight int
	lastUse  time.Time
	useSeq   int64
	idle     *time.Timer

	mu       sync.Mutex
	pid      int
	stopped  bool // stop was called
	dead     bool
	pending  map[int64]*call
	outbound map[string]*stream // server→client request id → where it went
	quitOnce sync.Once
}

// call is one request forwarded to the server.
type call struct {
	id       int64           // the bridge's id, unique in the pool
	clientID json.RawMessage // nil for the bridge's own requests
	token    json.RawMessage // the client's progress token, if any
	sess     *session        // nil for stateless clients and the bridge
	proc     *process
	resp     chan []byte // the answer, with the client's id
	notes    chan []byte // progress notifications for this request
}

func newProcess(pool *Pool, user string) *process {
	return &process{
		pool:     pool,
		user:     user,
		log:      pool.log.With("resource", pool.opts.Resource, "user", user),
		out:      make(chan []byte, sendQueue),
		quit:     make(chan struct{}),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		pending:  map[int64]*call{},
		outbound: map[string]*stream{},
	}
}

// userDir is the user's working and home directory: a hash of the user ID,
// so that no ID can name a path outside the base directory.
func userDir(base, user string) string {
	sum := sha256.Sum256([]byte(user))
	return filepath.Join(base, hex.EncodeToString(sum[:16]))
}

// environ is the server's whole environment: nothing of the gateway's
// (which holds its secrets) but PATH, LANG and TZ, then Options.Env, then
// HOME and the user, which Options.Env cannot override.
func (p *process) environ(c *identity.Caller, home string) []string {
	env := []string{"PATH=" + defaultPath()}
	for _, k := range []string{"LANG", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, p.pool.opts.Env...)
	env = append(env, "HOME="+home)
	add := func(k, v string) {
		if v == "" {
			return
		}
		if !validValue(v) {
			p.log.Warn("identity value left out of the stdio server's environment: it holds control characters", "variable", k)
			return
		}
		env = append(env, k+"="+v)
	}
	add("MCPGATE_USER", c.User.ID)
	add("MCPGATE_USER_NAME", c.User.Username)
	if c.User.EmailVerified {
		add("MCPGATE_USER_EMAIL", c.User.Email)
	}
	add("MCPGATE_USER_GROUPS", joinGroups(c.User.Groups))
	return env
}

func defaultPath() string {
	if v := os.Getenv("PATH"); v != "" {
		return v
	}
	return "/usr/local/bin:/usr/bin:/bin"
}

func validValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// joinGroups joins group names with ","; a name holding a comma or a
// control character is left out.
func joinGroups(groups []string) string {
	var b strings.Builder
	for _, g := range groups {
		if g == "" || strings.IndexByte(g, ',') >= 0 || !validValue(g) {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(g)
	}
	return b.String()
}

// run starts the server and initializes it. It closes ready in every case;
// on failure initErr is set and the process is stopped.
func (p *process) run(c *identity.Caller, init initParams) {
	err := p.start(c)
	if err == nil {
		err = p.initialize(init)
	}
	if err != nil {
		p.initErr = err
		p.pool.forget(p)
		close(p.ready)
		p.stop(0)
		return
	}
	close(p.ready)
}

func (p *process) start(c *identity.Caller) error {
	opts := &p.pool.opts
	home := userDir(opts.Dir, p.user)
	if err := os.MkdirAll(home, 0o700); err != nil {
		p.log.Error("stdio server: creating the user's directory failed", "error", err)
		p.finish(nil)
		return errStart
	}
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		p.finish(nil)
		return errStart
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		p.finish(nil)
		return errStart
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdinR.Close()
		stdinW.Close()
		stdoutR.Close()
		stdoutW.Close()
		p.finish(nil)
		return errStart
	}
	cmd := exec.Command(opts.Command[0], opts.Command[1:]...)
	cmd.Env = p.environ(c, home)
	cmd.Dir = home
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdinR, stdoutW, stderrW
	setProcAttrs(cmd)

	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		for _, f := range []*os.File{stdinR, stdinW, stdoutR, stdoutW, stderrR, stderrW} {
			f.Close()
		}
		p.finish(nil)
		return errClosed
	}
	err = cmd.Start()
	if err == nil {
		p.pid = cmd.Process.Pid
	}
	p.mu.Unlock()
	// The child has its copies; the parent keeps only its own ends, so
	// that reads see EOF when the child's side closes.
	stdinR.Close()
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdinW.Close()
		stdoutR.Close()
		stderrR.Close()
		p.log.Error("stdio server could not be started", "command", opts.Command[0], "error", err)
		p.finish(nil)
		return errStart
	}
	p.log = p.log.With("pid", p.pid)
	p.log.Info("stdio server started", "command", opts.Command[0])

	readerDone := make(chan struct{})
	go p.writer(stdinW)
	go p.logStderr(stderrR)
	go func() {
		defer close(readerDone)
		defer stdoutR.Close()
		p.readStdout(stdoutR)
	}()
	go func() {
		err := cmd.Wait()
		// Children that outlive the server would hold its pipes open and
		// run on unsupervised: end the whole group.
		killGroup(p.pid)
		// Let the last lines the server wrote be read, briefly.
		select {
		case <-readerDone:
		case <-time.After(time.Second):
		}
		p.mu.Lock()
		stopped := p.stopped
		p.mu.Unlock()
		if stopped {
			p.log.Info("stdio server stopped", "status", exitStatus(err))
		} else {
			p.log.Warn("stdio server exited", "status", exitStatus(err))
		}
		p.pool.forget(p)
		p.finish(errDead)
	}()
	return nil
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// finish marks the process dead, answers every pending call and closes
// done.
func (p *process) finish(cause error) {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	p.dead = true
	pending := p.pending
	p.pending = nil
	p.outbound = nil
	p.mu.Unlock()
	for _, c := range pending {
		c.fail(codeInternal, "MCP server exited")
	}
	p.quitOnce.Do(func() { close(p.quit) })
	close(p.done)
}

// fail answers the call with a JSON-RPC error.
func (c *call) fail(code int, msg string) {
	select {
	case c.resp <- errorBody(c.clientID, code, msg):
	default:
	}
}

func (p *process) writer(w *os.File) {
	defer w.Close()
	for {
		select {
		case b := <-p.out:
			if _, err := w.Write(b); err != nil {
				p.log.Debug("writing to the stdio server failed", "error", err)
				return
			}
		case <-p.quit:
			return
		}
	}
}

func (p *process) logStderr(r *os.File) {
	defer r.Close()
	scanLines(r, maxStderrLine, func(line []byte, truncated bool) {
		if truncated {
			p.log.Info("stdio server stderr", "line", string(line), "truncated", true)
			return
		}
		p.log.Info("stdio server stderr", "line", string(line))
	})
}

// send queues one message for the server's stdin; it never blocks.
func (p *process) send(b []byte) error {
	p.mu.Lock()
	dead := p.dead
	p.mu.Unlock()
	if dead {
		return errDead
	}
	select {
	case p.out <- append(b, '\n'):
		return nil
	default:
		return errQueue
	}
}

// forward sends a client's request to the server under a bridge id and
// returns its call.
func (p *process) forward(m message, sess *session) (*call, error) {
	c := &call{
		id:       p.pool.ids.Add(1),
		clientID: m["id"],
		sess:     sess,
		proc:     p,
		resp:     make(chan []byte, 1),
		notes:    make(chan []byte, 32),
	}
	idRaw := json.RawMessage(fmt.Sprint(c.id))
	out := m.with("id", idRaw)
	if t, ok := m.progressToken(); ok {
		c.token = t
		out = out.withProgressToken(idRaw)
	}
	if err := p.register(c); err != nil {
		return nil, err
	}
	if err := p.send(out.encode()); err != nil {
		p.take(c.id)
		return nil, err
	}
	return c, nil
}

func (p *process) register(c *call) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dead {
		return errDead
	}
	p.pending[c.id] = c
	return nil
}

// take removes and returns the pending call id, or nil.
func (p *process) take(id int64) *call {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.pending[id]
	delete(p.pending, id)
	return c
}

// cancel abandons c: the server is told with notifications/cancelled.
func (p *process) cancel(c *call, reason string) {
	if p.take(c.id) == nil {
		return // already answered
	}
	p.sendCancel(c.id, reason)
}

func (p *process) sendCancel(id int64, reason string) {
	params, _ := json.Marshal(map[string]any{"requestId": id, "reason": reason})
	p.send(message{"jsonrpc": json.RawMessage(`"2.0"`), "method": json.RawMessage(`"notifications/cancelled"`), "params": params}.encode())
}

// initialize performs the MCP handshake for the bridge and caches the
// server's InitializeResult.
func (p *process) initialize(init initParams) error {
	caps := init.caps
	if len(caps) == 0 {
		caps = json.RawMessage(`{}`)
	}
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": init.version,
		"capabilities":    caps,
		"clientInfo":      map[string]string{"name": "mcpgate", "version": "1"},
	})
	c := &call{id: p.pool.ids.Add(1), proc: p, resp: make(chan []byte, 1), notes: make(chan []byte, 1)}
	if err := p.register(c); err != nil {
		return errStart
	}
	req := message{"jsonrpc": json.RawMessage(`"2.0"`), "id": json.RawMessage(fmt.Sprint(c.id)),
		"method": json.RawMessage(`"initialize"`), "params": params}
	if err := p.send(req.encode()); err != nil {
		return errStart
	}
	timer := time.NewTimer(p.pool.opts.StartTimeout)
	defer timer.Stop()
	var resp []byte
	select {
	case resp = <-c.resp:
	case <-timer.C:
		p.take(c.id)
		p.log.Error("stdio server did not answer initialize in time", "timeout", p.pool.opts.StartTimeout)
		return errStart
	}
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(resp, &r) != nil || r.Error != nil || len(r.Result) == 0 {
		if r.Error != nil {
			p.log.Error("stdio server refused initialize", "code", r.Error.Code, "message", r.Error.Message)
		} else {
			p.log.Error("stdio server did not initialize")
		}
		return errStart
	}
	var full map[string]json.RawMessage
	if json.Unmarshal(r.Result, &full) != nil || full["protocolVersion"] == nil {
		p.log.Error("stdio server sent an initialize result without protocolVersion")
		return errStart
	}
	// What a client learns from the bridge's initialize answer.
	kept := map[string]json.RawMessage{}
	for _, k := range []string{"protocolVersion", "capabilities", "serverInfo", "instructions"} {
		if v, ok := full[k]; ok {
			kept[k] = v
		}
	}
	p.initResult, _ = json.Marshal(kept)
	if err := p.send(message{"jsonrpc": json.RawMessage(`"2.0"`), "method": json.RawMessage(`"notifications/initialized"`)}.encode()); err != nil {
		return errStart
	}
	var v string
	json.Unmarshal(full["protocolVersion"], &v)
	p.log.Debug("stdio server initialized", "protocol_version", v)
	return nil
}

// readStdout routes every message the server writes.
func (p *process) readStdout(r *os.File) {
	scanLines(r, maxStdoutLine, func(line []byte, truncated bool) {
		if truncated {
			p.log.Warn("stdio server wrote a message over the size limit; skipped", "limit", maxStdoutLine)
			return
		}
		m, k, err := parseMessage(line)
		if err != nil {
			p.log.Warn("stdio server wrote a line that is not a JSON-RPC message; skipped", "bytes", len(line), "error", err)
			return
		}
		switch k {
		case kindResponse:
			id, ok := bridgeID(m["id"])
			var c *call
			if ok {
				c = p.take(id)
			}
			if c == nil {
				p.log.Debug("stdio server answered an unknown or abandoned request")
				return
			}
			if c.clientID != nil {
				m = m.with("id", c.clientID)
			}
			c.resp <- append(m.encode(), '\n')
		case kindNotification:
			if m.method() == "notifications/progress" && p.progress(m) {
				return
			}
			p.pool.toClient(p, m, false)
		case kindRequest:
			p.pool.toClient(p, m, true)
		}
	})
}

// progress delivers a progress notification for a forwarded request to
// that request's stream, with the client's own token.
func (p *process) progress(m message) bool {
	params := m.params()
	id, ok := bridgeID(params["progressToken"])
	if !ok {
		return false
	}
	p.mu.Lock()
	c := p.pending[id]
	p.mu.Unlock()
	if c == nil || c.token == nil {
		return false
	}
	params["progressToken"] = c.token
	b, _ := json.Marshal(params)
	select {
	case c.notes <- m.with("params", b).encode():
	default: // the client is slow: progress is advisory
	}
	return true
}

// refuse answers a server→client request that no client can take.
func (p *process) refuse(id json.RawMessage) {
	p.send(bytes.TrimSuffix(errorBody(id, codeInternal, "no client connection is open to take this request"), []byte("\n")))
}

// stop ends the server: SIGTERM to its group and stdin closed, then
// SIGKILL after grace. It returns when the server has exited.
func (p *process) stop(grace time.Duration) {
	p.mu.Lock()
	p.stopped = true
	pid := p.pid
	p.mu.Unlock()
	if pid == 0 {
		// Never started (or start failed): start sees stopped.
		<-p.done
		return
	}
	p.quitOnce.Do(func() { close(p.quit) })
	terminateGroup(pid)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return
	case <-t.C:
	}
	if grace > 0 {
		p.log.Warn("stdio server did not stop in time; killing it", "grace", grace)
	}
	killGroup(pid)
	<-p.done
}
