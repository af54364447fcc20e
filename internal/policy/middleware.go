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

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// Limits.
const (
	// DefaultMaxBodyBytes bounds a request body unless Options say
	// otherwise.
	DefaultMaxBodyBytes = 4 << 20
	// maxSniff is how much of an answer (or of one SSE event) is kept to
	// find a tools/call's outcome; it never delays the answer.
	maxSniff = 1 << 20
	// maxHold bounds a tools/list answer (or SSE event) held to filter it.
	maxHold = 16 << 20
)

// Options configure Wrap.
type Options struct {
	// Policy decides which tools each caller may call; nil allows all and
	// filters nothing. An invalid Policy (see Validate) denies every tool.
	Policy *Policy
	// Audit receives one event per tools/call; nil records nothing.
	Audit audit.Recorder
	// Resource is the resource's path (e.g. /mcp), for audit events.
	Resource string
	// MaxBodyBytes bounds a request body (DefaultMaxBodyBytes); a longer
	// one gets 413.
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Wrap returns a handler that checks each POST to next, the backend of one
// protected resource, behind the resource guard (which put the caller in
// the context): it parses the body strictly (jsonrpc.Parse), enforces
// TRANS-2 on the Mcp-Method and Mcp-Name headers, applies the tool policy
// to tools/call and to the tools/list answer, and records an audit event
// per tools/call. The body reaches next as a *BufferedBody. Other methods
// (GET event streams, DELETE) pass untouched.
func Wrap(next http.Handler, opts Options) http.Handler {
	h := &handler{next: next, audit: opts.Audit, resource: opts.Resource, maxBody: opts.MaxBodyBytes, log: opts.Logger}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opts.Policy != nil {
		pol, err := opts.Policy.Compile()
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
	resource string
	maxBody  int64
	log      *slog.Logger
}

// call is one tools/call of the request and what became of it.
type call struct {
	id      json.RawMessage
	name    string
	outcome audit.Outcome // "" until the answer says
}

// exchange is the state of one POST, allocated once.
type exchange struct {
	h      *handler
	ctx    context.Context
	caller *identity.Caller
	start  time.Time
	msgs   jsonrpc.Body
	body   BufferedBody
	req    http.Request
	aw     answerWriter
	calls  []call
	lists  []json.RawMessage // ids of tools/list requests whose answer is filtered
	call1  [1]call
	list1  [1]json.RawMessage
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		h.next.ServeHTTP(w, r)
		return
	}
	x := &exchange{h: h, start: time.Now(), ctx: r.Context(), caller: identity.FromContext(r.Context())}
	x.calls, x.lists = x.call1[:0], x.list1[:0]

	if r.ContentLength > h.maxBody {
		w.Header().Set("Connection", "close")
		jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, "request body too large")
		return
	}
	data, err := jsonrpc.ReadBody(w, r, h.maxBody)
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, nil, jsonrpc.CodeInvalidRequest, "request body too large")
			return
		}
		h.log.Info("reading the request body failed", "error", err)
		jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeParseError, "could not read the request body")
		return
	}
	if err := x.msgs.Parse(data); err != nil {
		e, _ := errors.AsType[*jsonrpc.Error](err)
		h.log.Debug("request body refused", "error", err)
		jsonrpc.WriteError(w, http.StatusBadRequest, nil, e.Code, e.Message)
		return
	}
	// TRANS-2: the headers a router or gateway may act on must agree with
	// the body the backend acts on.
	if err := jsonrpc.CheckHeaders(r.Header, &x.msgs); err != nil {
		e, _ := errors.AsType[*jsonrpc.Error](err)
		var id json.RawMessage
		if !x.msgs.Batch {
			id = x.msgs.Messages[0].ID
		}
		h.log.Info("request refused: MCP header mismatch", "error", e.Message)
		jsonrpc.WriteError(w, http.StatusBadRequest, id, e.Code, e.Message)
		return
	}

	denied := ""
	for i := range x.msgs.Messages {
		m := &x.msgs.Messages[i]
		switch m.Method {
		case "tools/call":
			if m.Kind != jsonrpc.Request {
				jsonrpc.WriteError(w, http.StatusBadRequest, nil, jsonrpc.CodeInvalidRequest, "invalid request: tools/call must have an id")
				return
			}
			if !m.HasName {
				jsonrpc.WriteError(w, http.StatusOK, m.ID, jsonrpc.CodeInvalidParams, "invalid params: tools/call needs params.name")
				return
			}
			if denied == "" && !h.policy.Allowed(x.caller, m.Name) {
				denied = m.Name
			}
			x.calls = append(x.calls, call{id: m.ID, name: m.Name})
		case "tools/list":
			if h.policy != nil && m.Kind == jsonrpc.Request {
				x.lists = append(x.lists, m.ID)
			}
		}
	}
	if denied != "" {
		x.refuse(w, denied)
		return
	}

	x.body.data = data
	x.req = *r
	x.req.Body = &x.body
	x.req.ContentLength = int64(len(data))
	x.req.TransferEncoding = nil
	x.req.GetBody = x.getBody
	watchCalls := len(x.calls) > 0 && h.audit != nil
	if !watchCalls && len(x.lists) == 0 {
		h.next.ServeHTTP(w, &x.req)
		return
	}
	x.aw.init(w, x, watchCalls)
	h.next.ServeHTTP(&x.aw, &x.req)
	x.aw.finish()
	if watchCalls {
		x.record()
	}
}

func (x *exchange) getBody() (io.ReadCloser, error) {
	return &BufferedBody{data: x.body.data}, nil
}

// refuse answers a request that calls a denied tool without forwarding
// any of it: the call gets -32602 "tool not allowed"; in a batch, every
// other request is refused with it.
func (x *exchange) refuse(w http.ResponseWriter, denied string) {
	x.h.log.Info("tool call denied by policy", "tool", denied, "user", userID(x.caller), "resource", x.h.resource)
	var out []byte
	if x.msgs.Batch {
		out = append(out, '[')
	}
	n := 0
	for _, m := range x.msgs.Messages {
		if m.Kind != jsonrpc.Request {
			continue
		}
		if n++; n > 1 {
			out = append(out, ',')
		}
		switch {
		case m.Method == "tools/call" && !x.h.policy.Allowed(x.caller, m.Name):
			out = jsonrpc.AppendError(out, m.ID, jsonrpc.CodeInvalidParams, "tool not allowed: "+m.Name)
		default:
			out = jsonrpc.AppendError(out, m.ID, jsonrpc.CodeInvalidRequest, "batch refused: it calls a tool that is not allowed: "+denied)
		}
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
		x.calls[i].outcome = audit.Denied
	}
	x.record()
}

// record sends one audit event per tools/call.
func (x *exchange) record() {
	if x.h.audit == nil {
		return
	}
	d := time.Since(x.start)
	for _, c := range x.calls {
		if c.outcome == "" {
			c.outcome = audit.Failed
		}
		e := audit.Event{Tool: c.name, Outcome: c.outcome, Duration: d, Resource: x.h.resource}
		if x.caller != nil {
			e.User, e.Client = x.caller.User.ID, x.caller.ClientID
		}
		x.h.audit.Record(x.ctx, e)
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
		}
	}
}

// isList reports whether id is that of a tools/list request of x.
func (x *exchange) isList(id []byte) bool {
	for _, l := range x.lists {
		if jsonrpc.SameID(l, id) {
			return true
		}
	}
	return false
}

func (x *exchange) keep(name string) bool { return x.h.policy.Allowed(x.caller, name) }

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

// mentionsTools reports whether an answer that could not be parsed might
// hold tool definitions: then it must not reach the client unfiltered.
func mentionsTools(b []byte) bool {
	return bytes.Contains(bytes.ToLower(b), []byte("tool")) || bytes.Contains(b, []byte(`\u`))
}
