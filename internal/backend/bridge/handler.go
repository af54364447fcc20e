package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/sse"
)

const (
	sessionHeader  = "Mcp-Session-Id"
	versionHeader  = "Mcp-Protocol-Version"
	statelessSince = "2026-07-28"
	// bridgeVersion is what the bridge's own initialize asks for when no
	// client's initialize chose: the newest version that has one.
	bridgeVersion = "2025-11-25"
	keepAlive     = 25 * time.Second
)

// ServeHTTP serves the streamable HTTP transport: POST for messages, GET
// for a session's event stream, DELETE to end a session.
func (p *Pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller := identity.FromContext(r.Context())
	if caller == nil {
		// The guard did not run: a wiring mistake, never serve.
		p.log.Error("MCP bridge reached without a verified caller; is the resource guard in front?", "path", r.URL.Path)
		jsonrpc.WriteError(w, http.StatusInternalServerError, nil, jsonrpc.CodeInternalError, "internal error")
		return
	}
	switch r.Method {
	case http.MethodPost:
		p.post(w, r, caller)
	case http.MethodGet:
		p.get(w, r, caller)
	case http.MethodDelete:
		p.delete(w, r, caller)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		jsonrpc.WriteError(w, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest, "method not allowed")
	}
}

// stateless reports a 2026-07-28 (or later) client without a session: it
// neither initializes nor holds a session.
func stateless(r *http.Request) bool {
	v := r.Header.Get(versionHeader)
	return len(v) == len(statelessSince) && v >= statelessSince && r.Header.Get(sessionHeader) == ""
}

// sessionOf resolves the request's session. It answers the request itself
// (and returns ok false) when the id is missing but needed, or unknown,
// deleted or another user's (404, SESS-3).
func (p *Pool) sessionOf(w http.ResponseWriter, r *http.Request, caller *identity.Caller, id json.RawMessage) (*session, bool) {
	sid := r.Header.Get(sessionHeader)
	if sid == "" {
		if stateless(r) {
			return nil, true
		}
		jsonrpc.WriteError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidRequest, "missing Mcp-Session-Id header: send initialize first")
		return nil, false
	}
	s := p.session(sid, linkKey(caller))
	if s == nil && p.elsewhere(sid) {
		// Its server runs in the replica that opened it; one started
		// here would be another process, without the session's state.
		p.log.Warn("bridge session refused: it was opened through another replica, which runs its "+p.noun+"; route a session's requests to one replica (affinity by Mcp-Session-Id)",
			"resource", p.opts.resource, "user", caller.User.ID)
		jsonrpc.WriteError(w, http.StatusNotFound, id, codeNoSession, "session not found: it belongs to another replica of the gateway")
		return nil, false
	}
	if s == nil {
		p.log.Info("bridge session refused: unknown, ended or another user's", "resource", p.opts.resource, "user", caller.User.ID)
		jsonrpc.WriteError(w, http.StatusNotFound, id, codeNoSession, "session not found")
		return nil, false
	}
	return s, true
}

func (p *Pool) post(w http.ResponseWriter, r *http.Request, caller *identity.Caller) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			jsonrpc.WriteError(w, http.StatusUnsupportedMediaType, nil, jsonrpc.CodeInvalidRequest, "Content-Type must be application/json")
			return
		}
	}
	if r.ContentLength > p.opts.maxBodyBytes {
		w.Header().Set("Connection", "close")
		jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, "request body too large")
		return
	}
	body, err := jsonrpc.ReadBody(w, r, p.opts.maxBodyBytes)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, "request body too large")
			return
		}
		p.log.Debug("reading the request body failed", "error", err)
		jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeParseError, "could not read the request body")
		return
	}
	msg, m, err := readClient(body)
	if err != nil {
		e, _ := errors.AsType[*jsonrpc.Error](err)
		jsonrpc.WriteError(w, http.StatusBadRequest, msg.ID, e.Code, e.Message)
		return
	}
	if msg.Kind == jsonrpc.Request && msg.Method == "initialize" {
		if r.Header.Get(sessionHeader) != "" {
			// A session begins with an initialize without one (the
			// streamable HTTP transport); one that names a session is
			// not a new session's, and the per-user cap would not see it
			// (SEC-35).
			jsonrpc.WriteError(w, http.StatusBadRequest, msg.ID, jsonrpc.CodeInvalidRequest, "initialize opens a session: send it without Mcp-Session-Id")
			return
		}
		p.initialize(w, r, caller, msg.ID, m)
		return
	}
	var id json.RawMessage
	if msg.Kind == jsonrpc.Request {
		id = msg.ID
	}
	sess, ok := p.sessionOf(w, r, caller, id)
	if !ok {
		return
	}
	switch msg.Kind {
	case jsonrpc.Notification:
		p.notification(w, r, caller, sess, msg.Method, m)
	case jsonrpc.Response:
		// The client's answer to a server→client request, taken only
		// from the session whose stream carried the request, once
		// (SEC-153).
		if l := p.current(caller); l != nil {
			l.mu.Lock()
			st, asked := l.outbound[idKey(msg.ID)]
			if asked && st.sess == sess {
				delete(l.outbound, idKey(msg.ID))
			}
			l.mu.Unlock()
			switch {
			case !asked || st.sess != sess:
				l.log.Debug("client response dropped: no request of the server is waiting for it in this session")
			default:
				if err := l.conn.send(r.Context(), m.encode(), caller); err != nil {
					l.awaitAgain(msg.ID, st) // the client may send it again
					p.undelivered(w, l, err)
					return
				}
			}
		}
		w.WriteHeader(http.StatusAccepted)
	case jsonrpc.Request:
		p.request(w, r, caller, sess, msg, m)
	}
}

// initialize answers a client's initialize from the server's cached
// InitializeResult (starting the server if needed) and opens a session.
func (p *Pool) initialize(w http.ResponseWriter, r *http.Request, caller *identity.Caller, id json.RawMessage, m message) {
	var version string
	if !m.paramMember("protocolVersion", &version) || version == "" || len(version) > maxVersionLen {
		jsonrpc.WriteError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidParams, "initialize needs params.protocolVersion, a date such as 2025-06-18")
		return
	}
	init := initParams{version: version}
	var caps json.RawMessage
	if m.paramMember("capabilities", &caps) {
		init.caps = caps
	}
	if len(init.caps) > maxCapabilities {
		jsonrpc.WriteError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidParams, "initialize params.capabilities is over 64 KiB")
		return
	}
	l, ok := p.acquireOrAnswer(w, r, caller, init, id)
	if !ok {
		return
	}
	defer p.release(l)
	s := p.newSession(linkKey(caller), init)
	p.log.Debug("bridge session opened", "resource", p.opts.resource, "user", caller.User.ID)
	w.Header().Set(sessionHeader, s.id)
	jsonrpc.WriteJSON(w, http.StatusOK, append(message{"jsonrpc": json.RawMessage(`"2.0"`), "id": id, "result": l.initResult}.encode(), '\n'))
}

// acquireOrAnswer is acquire that answers the request itself on failure.
func (p *Pool) acquireOrAnswer(w http.ResponseWriter, r *http.Request, caller *identity.Caller, init initParams, id json.RawMessage) (*link, bool) {
	l, err := p.acquire(r.Context(), caller, init)
	switch {
	case err == nil:
		return l, true
	case errors.Is(err, errBusy):
		p.opts.metrics.BackendError(p.opts.resource, failBusy)
		p.log.Warn(p.noun+" refused: the cap is reached and none is idle", "resource", p.opts.resource, "user", caller.User.ID,
			"max", p.opts.maxLinks, "max_per_user", p.opts.perUser())
		w.Header().Set("Retry-After", "5")
		jsonrpc.WriteError(w, http.StatusServiceUnavailable, id, codeBusy, "server busy: too many MCP servers running, yours or in all, and none idle; retry later")
	case errors.Is(err, errClosed):
		jsonrpc.WriteError(w, http.StatusServiceUnavailable, id, codeBusy, "server shutting down")
	case r.Context().Err() != nil:
		// The client left; nobody reads an answer.
	default:
		p.opts.metrics.BackendError(p.opts.resource, failUnavailable)
		jsonrpc.WriteError(w, http.StatusBadGateway, id, jsonrpc.CodeInternalError, "MCP server unavailable: it could not be started or reached (the gateway's log says why)")
	}
	return nil, false
}

func (p *Pool) notification(w http.ResponseWriter, r *http.Request, caller *identity.Caller, sess *session, method string, m message) {
	switch method {
	case "notifications/initialized":
		// The bridge initialized the server itself.
	case "notifications/cancelled":
		var reqID json.RawMessage
		if sess != nil && m.paramMember("requestId", &reqID) {
			if c := p.lookupCall(sess, reqID); c != nil && c.link.take(c.id) != nil {
				var reason string
				m.paramMember("reason", &reason)
				c.link.sendCancel(c.id, reason)
				c.fail(codeCancelled, "request cancelled")
			}
		}
		// A stateless client cancels by closing its request's stream.
	default:
		if l := p.current(caller); l != nil {
			if err := l.conn.send(r.Context(), m.encode(), caller); err != nil {
				p.undelivered(w, l, err)
				return
			}
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

// undelivered answers a client's notification or response that its server
// did not take, with an error that has no id (the message had none to
// answer): 502 when the server refused it, else 503, to retry later (a
// server not reading its input, SEC-182; a link that just ended).
func (p *Pool) undelivered(w http.ResponseWriter, l *link, err error) {
	l.log.Debug("client message not delivered to the "+p.noun, "error", err)
	if errors.Is(err, errSend) {
		p.opts.metrics.BackendError(p.opts.resource, failSend)
		jsonrpc.WriteError(w, http.StatusBadGateway, nil, jsonrpc.CodeInternalError, "MCP server did not accept the message")
		return
	}
	w.Header().Set("Retry-After", "1")
	jsonrpc.WriteError(w, http.StatusServiceUnavailable, nil, codeBusy, "MCP server busy, retry later")
}

// request forwards a client request and relays the answer.
func (p *Pool) request(w http.ResponseWriter, r *http.Request, caller *identity.Caller, sess *session, msg jsonrpc.Message, m message) {
	id := msg.ID
	if msg.Method == "ping" {
		// The bridge is the server the client talks to.
		jsonrpc.WriteJSON(w, http.StatusOK, append(message{"jsonrpc": json.RawMessage(`"2.0"`), "id": id, "result": json.RawMessage(`{}`)}.encode(), '\n'))
		return
	}
	init := initParams{version: bridgeVersion}
	if sess != nil {
		init = sess.init
	}
	for attempt := 0; ; attempt++ {
		l, ok := p.acquireOrAnswer(w, r, caller, init, id)
		if !ok {
			return
		}
		c, err := l.forward(r.Context(), m, sess, caller)
		if errors.Is(err, errDead) && attempt == 0 {
			// It ended between acquire and now, before the request was
			// sent: open it again.
			p.release(l)
			continue
		}
		switch {
		case errors.Is(err, errSend):
			p.release(l)
			p.opts.metrics.BackendError(p.opts.resource, failSend)
			jsonrpc.WriteError(w, http.StatusBadGateway, id, jsonrpc.CodeInternalError, "MCP server did not accept the request")
			return
		case err != nil:
			p.release(l)
			jsonrpc.WriteError(w, http.StatusServiceUnavailable, id, codeBusy, "MCP server busy, retry later")
			return
		}
		if !p.addCall(sess, c) {
			l.cancel(c, "duplicate request id")
			p.release(l)
			jsonrpc.WriteError(w, http.StatusBadRequest, id, jsonrpc.CodeInvalidRequest, "a request with this id is already in flight in this session")
			return
		}
		l.log.Debug("request forwarded to the "+p.noun, "method", msg.Method)
		p.await(w, r, c)
		p.removeCall(sess, c)
		p.release(l)
		return
	}
}

// await relays c's answer: as application/json, or, when the client
// accepts text/event-stream and the server reports progress first, as an
// event stream carrying the progress notifications then the answer.
func (p *Pool) await(w http.ResponseWriter, r *http.Request, c *call) {
	sse := acceptsSSE(r)
	var ev *eventWriter
	for {
		select {
		case b := <-c.notes:
			if !sse {
				continue
			}
			if ev == nil {
				ev = startEvents(w)
			}
			ev.send(b)
		case b := <-c.resp:
			if !p.holdAnswer(w, ev, c, len(b)) {
				return
			}
			defer p.answers.Release(c.link.user, len(b))
			if ev == nil {
				jsonrpc.WriteJSON(w, http.StatusOK, b)
				return
			}
			for more := true; more; {
				select {
				case n := <-c.notes:
					ev.send(n)
				default:
					more = false
				}
			}
			ev.send(bytes.TrimSuffix(b, []byte("\n")))
			return
		case <-r.Context().Done():
			c.link.cancel(c, "client went away")
			c.link.log.Debug("client went away; request cancelled")
			return
		}
	}
}

// The answers a pool writes to their clients, each up to maxMessage, are
// bounded all together and by user (SEC-204): a server's answer is read
// whole, and a client that reads it just fast enough to pass the write
// stall bound (64 KiB every 30 s, SEC-139), or calls again every 30 s,
// holds it for as long as it likes.
var (
	maxAnswersTotal   = 256 << 20
	maxAnswersPerUser = 32 << 20
)

// holdAnswer counts an answer of n bytes in the pool's budget while it is
// written. Past the budget, the user's share or the pool's, the answer is
// dropped and c's client gets a JSON-RPC error in its place (429 or 503
// with Retry-After when nothing was written yet), and holdAnswer returns
// false.
func (p *Pool) holdAnswer(w http.ResponseWriter, ev *eventWriter, c *call, n int) bool {
	user := c.link.user
	if p.answers.Reserve(user, n) {
		return true
	}
	status, msg := http.StatusServiceUnavailable, "the MCP server's answer was dropped: the answers waiting for their clients at the gateway are over its budget; retry shortly"
	if p.answers.OverShare(user, n) {
		status, msg = http.StatusTooManyRequests, "the MCP server's answer was dropped: too many of your answers are waiting for you to read them; retry once they are read"
	}
	c.link.log.Warn("answer dropped: the answers waiting for their clients are over budget", "bytes", n, "status", status)
	if ev != nil {
		ev.send(jsonrpc.AppendError(nil, c.clientID, codeBusy, msg))
		return false
	}
	w.Header().Set("Retry-After", "1")
	jsonrpc.WriteError(w, status, c.clientID, codeBusy, msg)
	return false
}

func acceptsSSE(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
			if mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

type eventWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startEvents(w http.ResponseWriter) *eventWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	ev := &eventWriter{w: w, rc: http.NewResponseController(w)}
	ev.rc.Flush()
	return ev
}

func (ev *eventWriter) send(b []byte) error {
	if _, err := ev.w.Write(sse.AppendEvent(nil, "message", b)); err != nil {
		return err
	}
	return ev.rc.Flush()
}

func (ev *eventWriter) comment() error {
	if _, err := io.WriteString(ev.w, ": keep-alive\n\n"); err != nil {
		return err
	}
	return ev.rc.Flush()
}

// get opens the session's event stream for server→client messages.
func (p *Pool) get(w http.ResponseWriter, r *http.Request, caller *identity.Caller) {
	if stateless(r) {
		w.Header().Set("Allow", "POST")
		jsonrpc.WriteError(w, http.StatusMethodNotAllowed, nil, jsonrpc.CodeInvalidRequest, "no event stream without a session")
		return
	}
	if !acceptsSSE(r) {
		jsonrpc.WriteError(w, http.StatusNotAcceptable, nil, jsonrpc.CodeInvalidRequest, "GET needs Accept: text/event-stream")
		return
	}
	sess, ok := p.sessionOf(w, r, caller, nil)
	if !ok {
		return
	}
	st := &stream{sess: sess, ch: make(chan []byte, 64), done: make(chan struct{})}
	if !p.openStream(st) {
		jsonrpc.WriteError(w, http.StatusServiceUnavailable, nil, codeBusy, "server shutting down")
		return
	}
	defer p.closeStream(st)
	ev := startEvents(w)
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		var err error
		select {
		case b := <-st.ch:
			err = ev.send(st.take(b))
		case <-tick.C:
			err = ev.comment()
		case <-st.done:
			return
		case <-r.Context().Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// delete ends a session (not the user's server).
func (p *Pool) delete(w http.ResponseWriter, r *http.Request, caller *identity.Caller) {
	if r.Header.Get(sessionHeader) == "" {
		jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "missing Mcp-Session-Id header")
		return
	}
	sess, ok := p.sessionOf(w, r, caller, nil)
	if !ok {
		return
	}
	p.deleteSession(sess)
	p.log.Debug("bridge session ended by the client", "resource", p.opts.resource, "user", caller.User.ID)
	w.WriteHeader(http.StatusNoContent)
}
