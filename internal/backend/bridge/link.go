package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// maxMessage limits one message the server sends (a stdout line, an SSE
// event).
const maxMessage = 16 << 20

// maxProgress limits the params of a progress notification relayed to a
// client, whose call queues up to 32 of them.
const maxProgress = 64 << 10

// A session keeps its client's initialize params for as long as it lives
// (a day idle), and a user may open many: they are bounded, far above
// what a client sends (SEC-183).
const (
	maxVersionLen   = 64
	maxCapabilities = 64 << 10
)

// A server's requests that a client has read and not answered yet are
// remembered by their id, at most maxAwaited per link, each id at most
// maxServerID bytes; past either the server's request is refused at once
// (SEC-184).
const (
	maxAwaited  = 256
	maxServerID = 256
)

var (
	errDead   = errors.New("MCP server link ended")
	errQueue  = errors.New("MCP server is not taking messages")
	errStart  = errors.New("MCP server link could not be opened")
	errSend   = errors.New("MCP server did not accept a message")
	errBusy   = errors.New("too many MCP server links")
	errClosed = errors.New("bridge closed")
)

// linkConn is the kind-specific half of a link: a stdio process or an SSE
// connection. It hands every message the server sends to link.receive and
// calls link.finish exactly once, when it has ended (also when open
// fails).
type linkConn interface {
	// open starts the server or connects to it as caller c.
	open(c *identity.Caller) error
	// send delivers one message on behalf of c (nil: the caller that
	// opened the link). A process queues it for its stdin; an SSE
	// connection POSTs it, with the trace context of ctx (the client's
	// request; only its span is used, not its cancellation), and returns
	// once the server has accepted it (errSend when it did not).
	send(ctx context.Context, b []byte, c *identity.Caller) error
	// enqueue sends a message of the bridge's own (a cancellation, a
	// refusal) without waiting: it never blocks.
	enqueue(b []byte) error
	// stop ends the link and returns once it has ended, forcing it after
	// grace.
	stop(grace time.Duration)
	// kill ends the link at once, without waiting.
	kill()
}

// initParams are what the bridge's own initialize asks for.
type initParams struct {
	version string
	caps    json.RawMessage
}

// link is one user's MCP server: the shared half (initialization, calls
// in flight, routing of what the server sends) of a stdio process or an
// SSE connection. Fields under "pool" are guarded by Pool.mu; those under
// "mu" by link.mu; a goroutine never holds both.
type link struct {
	pool   *Pool
	key    string // linkKey of who opened it
	user   string
	caller *identity.Caller // who opened it
	log    *slog.Logger     // the conn may add to it before ready is closed
	noise  *logBudget       // what the server makes log of its own text (SEC-124)
	conn   linkConn

	ready chan struct{} // closed when initialized, or when that failed
	done  chan struct{} // closed when the link has ended and every call failed

	// Set before ready is closed.
	initErr    error
	initResult json.RawMessage

	// pool
	inflight int
	lastUse  time.Time
	useSeq   int64
	idle     *time.Timer

	mu       sync.Mutex
	dead     bool
	pending  map[int64]*call
	outbound map[string]*stream // server→client request id → where it went
}

// call is one request forwarded to the server.
type call struct {
	id       int64           // the bridge's id, unique in the pool
	clientID json.RawMessage // nil for the bridge's own requests
	token    json.RawMessage // the client's progress token, if any
	sess     *session        // nil for stateless clients and the bridge
	link     *link
	resp     chan []byte // the answer, with the client's id
	notes    chan []byte // progress notifications for this request
}

func newLink(pool *Pool, c *identity.Caller, key string) *link {
	l := &link{
		pool:     pool,
		key:      key,
		user:     c.User.ID,
		caller:   c,
		log:      pool.log.With("resource", pool.opts.resource, "user", c.User.ID, "client_id", c.ClientID),
		noise:    newLogBudget(pool.opts.tail),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		pending:  map[int64]*call{},
		outbound: map[string]*stream{},
	}
	l.conn = pool.newConn(l)
	return l
}

// run opens the link and initializes the server. It closes ready in every
// case; on failure initErr is set and the link is stopped.
func (l *link) run(init initParams) {
	err := l.conn.open(l.caller)
	if err == nil {
		err = l.initialize(init)
	}
	if err != nil {
		l.initErr = err
		l.pool.forget(l)
		close(l.ready)
		l.conn.stop(0)
		return
	}
	close(l.ready)
}

func (l *link) isDead() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dead
}

// finish marks the link dead, answers every pending call and closes done.
func (l *link) finish() {
	l.mu.Lock()
	if l.dead {
		l.mu.Unlock()
		return
	}
	l.dead = true
	l.noise.report(l.log)
	pending := l.pending
	l.pending = nil
	l.outbound = nil
	l.mu.Unlock()
	for _, c := range pending {
		c.fail(jsonrpc.CodeInternalError, l.pool.lost)
	}
	close(l.done)
}

// awaitAgain records again that the server's request id awaits the
// client's answer on st, after an answer taken for it was not delivered;
// a link that has ended meanwhile awaits nothing.
func (l *link) awaitAgain(id json.RawMessage, st *stream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.outbound != nil {
		l.outbound[idKey(id)] = st
	}
}

// fail answers the call with a JSON-RPC error.
func (c *call) fail(code int, msg string) {
	select {
	case c.resp <- append(jsonrpc.AppendError(nil, c.clientID, code, msg), '\n'):
	default:
	}
}

// forward sends a client's request to the server under a bridge id, on
// behalf of caller, and returns its call.
func (l *link) forward(ctx context.Context, m message, sess *session, caller *identity.Caller) (*call, error) {
	c := &call{
		id:       l.pool.ids.Add(1),
		clientID: m["id"],
		sess:     sess,
		link:     l,
		resp:     make(chan []byte, 1),
		notes:    make(chan []byte, 32),
	}
	idRaw := json.RawMessage(fmt.Sprint(c.id))
	out := m.with("id", idRaw)
	if t, ok := m.progressToken(); ok {
		c.token = t
		out = out.withProgressToken(idRaw)
	}
	if err := l.register(c); err != nil {
		return nil, err
	}
	if err := l.conn.send(ctx, out.encode(), caller); err != nil {
		pending := l.take(c.id) != nil
		if errors.Is(err, errSend) {
			if !pending {
				// Answered meanwhile, or failed as the link ended: relay that.
				return c, nil
			}
			// The server may have it all the same.
			l.sendCancel(c.id, "not delivered")
		}
		return nil, err
	}
	return c, nil
}

func (l *link) register(c *call) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.dead {
		return errDead
	}
	l.pending[c.id] = c
	return nil
}

// take removes and returns the pending call id, or nil.
func (l *link) take(id int64) *call {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.pending[id]
	delete(l.pending, id)
	return c
}

// cancel abandons c: the server is told with notifications/cancelled.
func (l *link) cancel(c *call, reason string) {
	if l.take(c.id) == nil {
		return // already answered
	}
	l.sendCancel(c.id, reason)
}

func (l *link) sendCancel(id int64, reason string) {
	params, _ := json.Marshal(map[string]any{"requestId": id, "reason": reason})
	l.conn.enqueue(message{"jsonrpc": json.RawMessage(`"2.0"`), "method": json.RawMessage(`"notifications/cancelled"`), "params": params}.encode())
}

// refuse answers a server→client request that no client can take.
func (l *link) refuse(id json.RawMessage) {
	l.refuseWith(id, "no client connection is open to take this request")
}

// refuseWith answers a server's request with an error saying why.
func (l *link) refuseWith(id json.RawMessage, why string) {
	l.conn.enqueue(jsonrpc.AppendError(nil, id, jsonrpc.CodeInternalError, why))
}

// initialize performs the MCP handshake for the bridge and caches the
// server's InitializeResult.
func (l *link) initialize(init initParams) error {
	noun := l.pool.noun
	caps := init.caps
	if len(caps) == 0 {
		caps = json.RawMessage(`{}`)
	}
	params, _ := json.Marshal(map[string]any{
		"protocolVersion": init.version,
		"capabilities":    caps,
		"clientInfo":      map[string]string{"name": "mcpgate", "version": "1"},
	})
	c := &call{id: l.pool.ids.Add(1), link: l, resp: make(chan []byte, 1), notes: make(chan []byte, 1)}
	if err := l.register(c); err != nil {
		return errStart
	}
	req := message{"jsonrpc": json.RawMessage(`"2.0"`), "id": json.RawMessage(fmt.Sprint(c.id)),
		"method": json.RawMessage(`"initialize"`), "params": params}
	if err := l.conn.send(context.Background(), req.encode(), nil); err != nil {
		l.take(c.id)
		return errStart
	}
	timer := time.NewTimer(l.pool.opts.startTimeout)
	defer timer.Stop()
	var resp []byte
	select {
	case resp = <-c.resp:
	case <-timer.C:
		l.take(c.id)
		l.log.Error(noun+": no answer to initialize in time", "timeout", l.pool.opts.startTimeout)
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
			l.log.Error(noun+": initialize refused", "code", r.Error.Code, "message", r.Error.Message)
		} else {
			l.log.Error(noun + ": not initialized")
		}
		return errStart
	}
	var full map[string]json.RawMessage
	if json.Unmarshal(r.Result, &full) != nil || full["protocolVersion"] == nil {
		l.log.Error(noun + ": an initialize result without protocolVersion")
		return errStart
	}
	// What a client learns from the bridge's initialize answer.
	kept := map[string]json.RawMessage{}
	for _, k := range []string{"protocolVersion", "capabilities", "serverInfo", "instructions"} {
		if v, ok := full[k]; ok {
			kept[k] = v
		}
	}
	l.initResult, _ = json.Marshal(kept)
	if err := l.conn.send(context.Background(), message{"jsonrpc": json.RawMessage(`"2.0"`), "method": json.RawMessage(`"notifications/initialized"`)}.encode(), nil); err != nil {
		return errStart
	}
	var v string
	json.Unmarshal(full["protocolVersion"], &v)
	l.log.Debug(noun+" initialized", "protocol_version", v)
	return nil
}

// receive routes one message the server sent.
func (l *link) receive(b []byte) {
	m, k, err := parseMessage(b)
	if err != nil {
		if l.noise.allow(l.log) {
			l.log.Warn(l.pool.noun+" sent something that is not a JSON-RPC message; skipped", "bytes", len(b), "error", err)
		}
		return
	}
	switch k {
	case jsonrpc.Response:
		id, ok := bridgeID(m["id"])
		var c *call
		if ok {
			c = l.take(id)
		}
		if c == nil {
			if l.noise.allow(l.log) {
				l.log.Debug(l.pool.noun + " answered an unknown or abandoned request")
			}
			return
		}
		if c.clientID != nil {
			m = m.with("id", c.clientID)
		}
		c.resp <- append(m.encode(), '\n')
	case jsonrpc.Notification:
		if m.method() == "notifications/progress" && l.progress(m) {
			return
		}
		if m.method() == "notifications/cancelled" {
			// The server gave up a request of its own (a timeout): its
			// client will not answer, and it awaits no answer more.
			l.mu.Lock()
			delete(l.outbound, idKey(m.params()["requestId"]))
			l.mu.Unlock()
		}
		l.pool.toClient(l, m, false)
	case jsonrpc.Request:
		l.pool.toClient(l, m, true)
	}
}

// progress delivers a progress notification for a forwarded request to
// that request's stream, with the client's own token.
func (l *link) progress(m message) bool {
	params := m.params()
	id, ok := bridgeID(params["progressToken"])
	if !ok {
		return false
	}
	l.mu.Lock()
	c := l.pending[id]
	l.mu.Unlock()
	if c == nil || c.token == nil {
		return false
	}
	params["progressToken"] = c.token
	b, _ := json.Marshal(params)
	if len(b) > maxProgress {
		// Progress is a number and a short message: a server that sends
		// megabytes of it would fill the call's queue with them (SEC-137).
		l.log.Debug("progress notification over its size limit; dropped", "limit", maxProgress)
		return true
	}
	select {
	case c.notes <- m.with("params", b).encode():
	default: // the client is slow: progress is advisory
	}
	return true
}
