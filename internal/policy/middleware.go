package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/bytebudget"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/requestid"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/tracing"
)

// Limits.
const (
	// DefaultMaxBodyBytes bounds a request body unless Options say
	// otherwise.
	DefaultMaxBodyBytes = 4 << 20
	// maxSniff is how much of an answer (or of one SSE event) is kept to
	// find a tools/call's outcome; it never delays the answer.
	maxSniff = 1 << 20
	// freeSniff is how much of that is kept whatever the answers held
	// (SEC-215): a small answer's outcome is always read, and a
	// connection holds at most this much uncounted.
	freeSniff = 4 << 10
	// maxHold bounds a tools/list answer (or SSE event) held to filter it.
	maxHold = 16 << 20
	// maxHeldTotal bounds the JSON answers held at once, all requests
	// together: 256 connections each holding 16 MiB would be 4 GiB
	// (SEC-161). Past it an answer is refused as one too large is.
	maxHeldTotal = 128 << 20
	// maxHeldPerUser is one user's share of it: a user whose client reads
	// its answers slowly, or not at all, holds no more (SEC-161).
	maxHeldPerUser = 32 << 20
	// maxInitialize bounds an initialize request, whatever the backend
	// (SEC-209): a server keeps its params for the session's life (the
	// embedded one, decoded into maps, at 11 times their size, for a day
	// idle), and one user holds 32 sessions.
	maxInitialize = 64 << 10
	// maxBodiesTotal bounds the request bodies held at once, each until
	// its answer is written: a client that sends 4 MiB bodies and reads
	// no answer held 6 MB of the gateway's memory per connection, for as
	// long as it liked (SEC-201). Past it a request gets 503.
	maxBodiesTotal = 256 << 20
	// maxBodiesPerUser is one user's share of it; past it, 429.
	maxBodiesPerUser = 32 << 20
)

// Options configure Wrap.
type Options struct {
	// Policy decides which tools each caller may call; nil allows all and
	// filters nothing. An invalid Policy (see Validate) denies every tool.
	Policy *Policy
	// Audit receives one event per tools/call; nil records nothing.
	Audit audit.Recorder
	// Metrics counts each tools/call and learns the tool names a
	// tools/list answer lists; nil: none.
	Metrics *metrics.Metrics
	// Resource is the resource's path (e.g. /mcp), for audit events.
	Resource string
	// ScopeImplies is the resource's scope_implies, which the policy's
	// rules count as the guard does (SCOPE-5).
	ScopeImplies oauth.Hierarchy
	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes); a longer
	// one gets 413.
	MaxBodyBytes int64
	// Limit, when set, is asked about every POST that holds a tools/call,
	// once the policy allowed them all, with one tool name per call: a
	// name returned refuses every call of the request (SEC-101), which
	// then must wait. ratelimit.Limiter.Tools is one.
	Limit func(user, client string, tools []string) (limited string, wait time.Duration)
	// StepUp, when set, lets a caller get a tool the policy denies them but
	// for a scope that an authorization for the resource may get (Grants
	// says which): tools/list lists it, and a request whose one tools/call
	// calls it is answered by StepUp, 403 insufficient_scope naming that
	// scope, so that the client authorizes again for it (SCOPE-1).
	// resource.Guard is one.
	StepUp StepUpper
	Logger *slog.Logger
}

// StepUpper is what the policy asks about scopes a caller could add.
type StepUpper interface {
	Grants(scope string) bool
	StepUp(w http.ResponseWriter, r *http.Request, caller *identity.Caller, scope string)
}

// Wrap returns a handler that checks each POST to next, the backend of one
// protected resource, behind the resource guard (which put the caller in
// the context): it parses the body strictly (jsonrpc.Parse), enforces
// TRANS-2 on the Mcp-Method and Mcp-Name headers, applies the tool policy
// to tools/call and to the tools/list answer, and records an audit event
// per tools/call. The body reaches next as a *BufferedBody. GET (the event
// stream) and DELETE pass untouched when they carry no body; every other
// method, a body on them, and two Mcp-Session-Id values are refused
// (SEC-30, SEC-31, SEC-32).
func Wrap(next http.Handler, opts Options) http.Handler {
	h := &handler{next: next, audit: opts.Audit, metrics: opts.Metrics, resource: opts.Resource, maxBody: opts.MaxBodyBytes, limit: opts.Limit, stepUp: opts.StepUp, log: opts.Logger,
		held: bytebudget.Budget{Total: maxHeldTotal, PerUser: maxHeldPerUser}, bodies: bytebudget.Budget{Total: maxBodiesTotal, PerUser: maxBodiesPerUser}}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opts.Policy != nil {
		pol, err := opts.Policy.Compile(opts.ScopeImplies)
		if err != nil {
			h.log.Error("invalid tool policy: every tool is denied", "resource", opts.Resource, "error", err)
			pol = &Compiled{}
		}
		h.policy = pol
	}
	return h
}

type handler struct {
	next     http.Handler
	policy   *Compiled // nil: no policy
	audit    audit.Recorder
	metrics  *metrics.Metrics
	resource string
	maxBody  int64
	limit    func(user, client string, tools []string) (string, time.Duration)
	stepUp   StepUpper
	log      *slog.Logger
	held     bytebudget.Budget // the JSON answers held to filter them (SEC-161)
	bodies   bytebudget.Budget // the request bodies held until answered (SEC-201)
}

// call is one tools/call of the request and what became of it.
type call struct {
	id      json.RawMessage
	name    string
	outcome audit.Outcome // "" until the answer says
}

// exchange is the state of one POST. The request itself is not part of
// it (a backend may keep a *http.Request).
type exchange struct {
	h       *handler
	ctx     context.Context
	caller  *identity.Caller
	start   time.Time
	msgs    jsonrpc.Body
	body    BufferedBody
	aw      answerWriter
	calls   []call
	lists   []json.RawMessage // ids of tools/list requests whose answer is filtered
	pending int               // calls without an outcome yet: sniffing stops at 0
	call1   [1]call
	list1   [1]json.RawMessage
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !admitMethod(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		h.passStream(w, r)
		return
	}
	start := time.Now()
	data, ok := h.readBody(w, r)
	if !ok {
		return
	}
	x := &exchange{h: h, start: start, ctx: r.Context()}
	x.caller = identity.FromContext(x.ctx)
	// The body stays in memory until the answer is written (SEC-201).
	if !h.bodies.Reserve(x.heldBy(), len(data)) {
		h.tooManyBodies(w, x.heldBy(), len(data))
		return
	}
	defer h.bodies.Release(x.heldBy(), len(data))
	x.calls, x.lists = x.call1[:0], x.list1[:0]
	if x.admit(w, r, data) {
		x.forward(w, r, data)
	}
}

// passStream passes a GET or DELETE to the backend; with a policy, its
// answer is filtered as a POST's is (SEC-122): a GET's event stream, the
// standalone one or a POST's resumed, may carry a tools/list answer.
func (h *handler) passStream(w http.ResponseWriter, r *http.Request) {
	if h.policy == nil {
		h.next.ServeHTTP(w, r)
		return
	}
	x := &exchange{h: h, ctx: r.Context(), caller: identity.FromContext(r.Context())}
	x.aw.init(w, x)
	defer x.aw.releaseHeld() // a backend that panics holds nothing after
	r.Header.Del("Accept-Encoding")
	h.next.ServeHTTP(&x.aw, r)
	x.aw.finish()
}

// readBody reads the body, or answers with an error.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.ContentLength > h.maxBody {
		h.tooLarge(w)
		return nil, false
	}
	data, err := jsonrpc.ReadBody(w, r, h.maxBody)
	if err != nil {
		h.readFailed(w, err)
		return nil, false
	}
	return data, true
}

// admit parses and checks the body, and reports whether it may go to the
// backend; if not, it has answered.
func (x *exchange) admit(w http.ResponseWriter, r *http.Request, data []byte) bool {
	h := x.h
	if err := x.msgs.Parse(data); err != nil {
		h.badBody(w, err)
		return false
	}
	// TRANS-2: the headers a router or gateway may act on must agree with
	// the body the backend acts on.
	if err := jsonrpc.CheckHeaders(r.Header, &x.msgs); err != nil {
		x.headerMismatch(w, err)
		return false
	}

	denied := ""
	for i := range x.msgs.Messages {
		m := &x.msgs.Messages[i]
		switch m.Method {
		case "tools/call":
			if m.Kind != jsonrpc.Request || !m.HasName {
				badCall(w, m)
				return false
			}
			if denied == "" && !h.policy.Allowed(x.caller, m.Name) {
				denied = m.Name
			}
			x.calls = append(x.calls, call{id: m.ID, name: m.Name})
		case "tools/list":
			if h.policy != nil && m.Kind == jsonrpc.Request {
				x.lists = append(x.lists, m.ID)
			}
		case "initialize":
			if len(data) > maxInitialize {
				jsonrpc.WriteError(w, http.StatusBadRequest, m.ID, jsonrpc.CodeInvalidParams, "initialize is over 64 KiB: a server keeps its params for the session's life")
				return false
			}
		}
	}
	if denied != "" {
		x.refuse(w, r, denied)
		return false
	}
	return x.withinLimits(w)
}

// withinLimits asks the rate limits about the request's calls; if one is
// over, every call is answered with a JSON-RPC error and none forwarded.
func (x *exchange) withinLimits(w http.ResponseWriter) bool {
	if x.h.limit == nil || len(x.calls) == 0 {
		return true
	}
	tools := make([]string, len(x.calls))
	for i, c := range x.calls {
		tools[i] = c.name
	}
	var user, client string
	if x.caller != nil {
		user, client = x.caller.User.ID, x.caller.ClientID
	}
	tool, wait := x.h.limit(user, client, tools)
	if tool == "" {
		return true
	}
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	x.h.log.Info("tool call rate limited", "tool", safetext.Clip(tool, audit.MaxToolName), "user", user, "client_id", client, "resource", x.h.resource, "retry_after", secs)
	// Every call gets the rate limited error, to retry after the wait;
	// only the limited tool's own calls name it (clipped), as in refuse.
	again := "; try again in " + strconv.Itoa(secs) + " s"
	limited := "rate limited: " + safetext.Clip(tool, audit.MaxToolName) + again
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	x.answerAll(w, audit.RateLimited, func(out []byte, m *jsonrpc.Message) []byte {
		switch {
		case m.Method == "tools/call" && m.Name == tool:
			return jsonrpc.AppendError(out, m.ID, jsonrpc.CodeRateLimited, limited)
		case m.Method == "tools/call":
			return jsonrpc.AppendError(out, m.ID, jsonrpc.CodeRateLimited, "rate limited: the batch calls a tool that is"+again)
		}
		return jsonrpc.AppendError(out, m.ID, jsonrpc.CodeInvalidRequest, "batch refused: it calls a tool that is rate limited")
	})
	return false
}

// forward passes the request to the backend, watching the answer when
// there is something to learn from it.
func (x *exchange) forward(w http.ResponseWriter, r *http.Request, data []byte) {
	// The backend gets the buffered body in r itself (r is already the
	// guard's copy; a copy here would cost an allocation), restored after.
	body, cl, te, getBody := r.Body, r.ContentLength, r.TransferEncoding, r.GetBody
	x.body.data = data
	r.Body = &x.body
	r.ContentLength = int64(len(data))
	r.TransferEncoding = nil
	r.GetBody = func() (io.ReadCloser, error) { return &BufferedBody{data: data}, nil }
	if x.h.policy != nil {
		// An answer packed is one the policy cannot filter (SEC-122).
		r.Header.Del("Accept-Encoding")
	}
	if !x.aw.init(w, x) {
		x.h.next.ServeHTTP(w, r)
	} else {
		defer x.aw.releaseHeld()
		x.h.next.ServeHTTP(&x.aw, r)
		x.aw.finish()
		if x.aw.watchCalls {
			x.record()
		}
	}
	r.Body, r.ContentLength, r.TransferEncoding, r.GetBody = body, cl, te, getBody
}

func (h *handler) tooLarge(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, "request body too large")
}

// tooManyBodies answers a request whose body would pass the bodies
// held: the user's share (429) or the resource's (503), both to retry.
func (h *handler) tooManyBodies(w http.ResponseWriter, user string, n int) {
	status, msg := http.StatusServiceUnavailable, "too many requests are waiting for their answers at the gateway: retry shortly"
	if h.bodies.OverShare(user, n) {
		status, msg = http.StatusTooManyRequests, "too many of your requests are waiting for their answers: retry once some are answered"
	}
	h.log.Warn("request refused: the request bodies held until answered are over budget", "resource", h.resource, "user", user, "status", status)
	w.Header().Set("Retry-After", "1")
	jsonrpc.WriteError(w, status, nil, jsonrpc.CodeInternalError, msg)
}

func (h *handler) readFailed(w http.ResponseWriter, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, "request body too large")
		return
	}
	h.log.Info("reading the request body failed", "error", err)
	jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeParseError, "could not read the request body")
}

func (h *handler) badBody(w http.ResponseWriter, err error) {
	e, _ := errors.AsType[*jsonrpc.Error](err)
	h.log.Debug("request body refused", "error", err)
	jsonrpc.WriteError(w, http.StatusBadRequest, nil, e.Code, e.Message)
}

func (x *exchange) headerMismatch(w http.ResponseWriter, err error) {
	e, _ := errors.AsType[*jsonrpc.Error](err)
	var id json.RawMessage
	if !x.msgs.Batch {
		id = x.msgs.Messages[0].ID
	}
	x.h.log.Info("request refused: MCP header mismatch", "error", e.Message)
	jsonrpc.WriteError(w, http.StatusBadRequest, id, e.Code, e.Message)
}

// badCall refuses a tools/call without an id or without params.name.
func badCall(w http.ResponseWriter, m *jsonrpc.Message) {
	if m.Kind != jsonrpc.Request {
		jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "invalid request: tools/call must have an id")
		return
	}
	jsonrpc.WriteError(w, http.StatusOK, m.ID, jsonrpc.CodeInvalidParams, "invalid params: tools/call needs params.name")
}

// refuse answers a request that calls a denied tool without forwarding
// any of it. A single call that a scope would allow gets 403 with a
// step-up challenge, when the resource grants that scope (SCOPE-1);
// otherwise the call gets -32602 "tool not allowed", and in a batch every
// other request is refused with it. An answer names a tool only in the
// answer to its own call, clipped: a name repeated in every other
// request's answer would make one small batch an answer of gigabytes.
func (x *exchange) refuse(w http.ResponseWriter, r *http.Request, denied string) {
	x.h.log.Info("tool call denied by policy", "tool", safetext.Clip(denied, audit.MaxToolName), "user", userID(x.caller), "resource", x.h.resource)
	if scope := x.h.stepUpScope(x.caller, denied); scope != "" && !x.msgs.Batch {
		x.h.stepUp.StepUp(w, r, x.caller, scope)
		x.calls[0].outcome = audit.Denied
		x.record()
		return
	}
	x.answerAll(w, audit.Denied, func(out []byte, m *jsonrpc.Message) []byte {
		if m.Method == "tools/call" && !x.h.policy.Allowed(x.caller, m.Name) {
			return jsonrpc.AppendError(out, m.ID, jsonrpc.CodeInvalidParams, "tool not allowed: "+safetext.Clip(m.Name, audit.MaxToolName))
		}
		return jsonrpc.AppendError(out, m.ID, jsonrpc.CodeInvalidRequest, "batch refused: it calls a tool that is not allowed")
	})
}

// answerAll answers every request of the body, 200, with the error
// appendError gives it, forwards nothing, and records each tools/call
// with outcome.
func (x *exchange) answerAll(w http.ResponseWriter, outcome audit.Outcome, appendError func(out []byte, m *jsonrpc.Message) []byte) {
	var out []byte
	if x.msgs.Batch {
		out = append(out, '[')
	}
	n := 0
	for i := range x.msgs.Messages {
		m := &x.msgs.Messages[i]
		if m.Kind != jsonrpc.Request {
			continue
		}
		if n++; n > 1 {
			out = append(out, ',')
		}
		out = appendError(out, m)
		if !x.msgs.Batch {
			break
		}
	}
	if x.msgs.Batch {
		out = append(out, ']')
	}
	out = append(out, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	for i := range x.calls {
		x.calls[i].outcome = outcome
	}
	x.record()
}

// record counts each tools/call and sends one audit event for it.
func (x *exchange) record() {
	d := time.Since(x.start)
	for _, c := range x.calls {
		if c.outcome == "" {
			c.outcome = audit.Failed
		}
		// A result that is no error shows the backend has the tool; one
		// with isError does not: servers of the TypeScript SDK answer a
		// call to any name with one, "Tool X not found" (SEC-90).
		x.h.metrics.ToolCall(x.h.resource, c.name, toolOutcome(c.outcome), c.outcome == audit.OK, d)
		e := audit.Event{Tool: safetext.Clip(c.name, audit.MaxToolName), Outcome: c.outcome, Duration: d, Resource: x.h.resource, RequestID: requestid.From(x.ctx)}
		if x.caller != nil {
			e.User, e.Client = x.caller.User.ID, x.caller.ClientID
		}
		tracing.ToolCall(x.ctx, x.start, e)
		if x.h.audit != nil {
			x.h.audit.Record(x.ctx, e)
		}
	}
}

// resolve sets the outcome of the calls that a answers.
func (x *exchange) resolve(a jsonrpc.Answer) {
	if a.Kind != jsonrpc.Response {
		return
	}
	for i := range x.calls {
		c := &x.calls[i]
		if c.outcome != "" || !jsonrpc.SameID(c.id, a.ID) {
			continue
		}
		switch {
		case a.Error:
			c.outcome = audit.Error
		case a.IsError:
			c.outcome = audit.ToolError
		case a.Result:
			c.outcome = audit.OK
		default:
			continue
		}
		x.pending--
	}
}

// anyID makes FilterToolsList filter every answer's tools, whatever its
// id (SEC-122): a client takes an answer for its tools/list by the id
// alone, whichever request's answer or stream it comes in, so a backend
// could otherwise list a denied tool under the id of a tools/list that
// it answers elsewhere, or later.
func anyID([]byte) bool { return true }

// keep decides whether a tool the backend listed is shown to the caller:
// one they may call, or could with a step-up, as a client that lists the
// tools first (most do) calls no other; every name listed is a known tool
// for the metrics.
func (x *exchange) keep(name string) bool {
	x.h.metrics.ListedTool(x.h.resource, name)
	return x.h.policy.Allowed(x.caller, name) || x.h.stepUpScope(x.caller, name) != ""
}

// stepUpScope is the first scope that would allow caller the tool the
// policy denies them and that an authorization for the resource may get,
// or "" for none (or no StepUp).
func (h *handler) stepUpScope(caller *identity.Caller, tool string) string {
	if h.stepUp == nil {
		return ""
	}
	for _, s := range h.policy.StepUp(caller, tool) {
		if h.stepUp.Grants(s) {
			return s
		}
	}
	return ""
}

// toolOutcome is the metrics' outcome of a call.
func toolOutcome(o audit.Outcome) string {
	switch o {
	case audit.OK:
		return metrics.ToolOK
	case audit.Denied:
		return metrics.ToolDenied
	case audit.RateLimited:
		return metrics.ToolRateLimited
	}
	return metrics.ToolError
}

func userID(c *identity.Caller) string {
	if c == nil {
		return ""
	}
	return c.User.ID
}

// BufferedBody is the request body the backend receives: already read,
// never copied again. Bytes returns all of it whatever has been read; a
// proxy sends it as it is.
type BufferedBody struct {
	data []byte
	off  int
}

// Bytes returns the whole body. The caller must not modify it.
func (b *BufferedBody) Bytes() []byte { return b.data }

func (b *BufferedBody) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

// WriteTo lets io.Copy take the bytes without a buffer.
func (b *BufferedBody) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(b.data[b.off:])
	b.off += n
	return int64(n), err
}

func (b *BufferedBody) Close() error { return nil }

// mayListTools reports whether an answer that could not be parsed might
// hold tool definitions: then it must not reach the client unfiltered. It
// may when it names a tool, or escapes what it says, or is no UTF-8 text
// (UTF-16, with its NULs, which a client may decode and the filter did
// not: SEC-122).
func mayListTools(b []byte) bool {
	return bytes.Contains(bytes.ToLower(b), []byte("tool")) || bytes.Contains(b, []byte(`\u`)) ||
		!utf8.Valid(b) || bytes.IndexByte(b, 0) >= 0
}
