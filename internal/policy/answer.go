package policy

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
	"github.com/mcpgate/mcpgate/internal/sse"
)

// How the answer is handled, decided when its header is written.
const (
	modePass = iota // nothing to learn from it
	modeTee         // passed on at once; its head is kept to find outcomes
	modeHold        // a JSON answer under a policy: held whole, its tools filtered, then written
	modeSSE         // an event stream: events pass at once, under a policy each one filtered
)

// answerWriter stands between the backend and the client.
type answerWriter struct {
	w           http.ResponseWriter
	x           *exchange
	watchCalls  bool
	mode        int
	status      int
	wroteHeader bool
	head        []byte // modeTee: the first maxSniff bytes
	headFull    bool   // modeTee: no more kept, the held answers being over budget
	held        []byte // modeHold
	overflow    bool   // modeHold: more than maxHold bytes
	overBudget  bool   // modeHold: more than the handler's maxHeldTotal with the others
	reserved    int    // bytes counted in the handler's held: the head, or what is held
	packed      bool   // modeHold: a Content-Encoding the policy cannot read
	sse         sseFilter
}

// init prepares a for x and reports whether the answer must pass through
// it: when the request holds a tools/call to audit, or a policy filters
// the tools of every answer (SEC-122).
func (a *answerWriter) init(w http.ResponseWriter, x *exchange) bool {
	a.w, a.x, a.watchCalls = w, x, len(x.calls) > 0 && (x.h.audit != nil || x.h.metrics != nil)
	x.pending = len(x.calls)
	return a.watchCalls || x.h.policy != nil
}

func (a *answerWriter) Header() http.Header { return a.w.Header() }

func (a *answerWriter) WriteHeader(code int) {
	if a.wroteHeader {
		return
	}
	if code < 200 { // informational: pass on, the real header follows
		a.w.WriteHeader(code)
		return
	}
	a.wroteHeader, a.status = true, code
	h := a.w.Header()
	filter := a.x.h.policy != nil
	switch ct := mediaType(h.Get("Content-Type")); {
	case filter && (packed(h) || foreignCharset(h)):
		// Refused whole, whatever it is: its tools cannot be read.
		a.mode, a.packed = modeHold, true
		return
	case ct == "text/event-stream":
		a.mode = modeSSE
		a.sse.init(a)
		if filter {
			h.Del("Content-Length")
		}
	case filter:
		a.mode = modeHold
		return // written with the filtered answer
	case a.watchCalls && code < 400:
		a.mode = modeTee
	}
	a.w.WriteHeader(code)
}

// packed reports whether h, an answer's header, names a Content-Encoding
// other than identity.
func packed(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		if v = strings.TrimSpace(v); v != "" && !strings.EqualFold(v, "identity") {
			return true
		}
	}
	return false
}

// foreignCharset reports whether h, an answer's header, names a charset
// other than UTF-8: read as UTF-8 by the filter, and in its charset by a
// client (as Python's httpx does), the answer would list to the client
// what the filter never saw (SEC-122).
func foreignCharset(h http.Header) bool {
	_, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
	cs, ok := params["charset"]
	return ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8")
}

// mediaType returns the media type of a Content-Type as
// mime.ParseMediaType does, without its allocations for the values
// backends send.
func mediaType(v string) string {
	switch v {
	case "text/event-stream", "application/json":
		return v
	}
	ct, _, _ := mime.ParseMediaType(v)
	return ct
}

func (a *answerWriter) Write(p []byte) (int, error) {
	if !a.wroteHeader {
		a.WriteHeader(http.StatusOK)
	}
	switch a.mode {
	case modeTee:
		// The head, kept to read the calls' outcomes from, counts with
		// the answers held past its first freeSniff bytes (SEC-215): a
		// client that does not read keeps it as long as the answer. Past
		// the budget no more is kept, and an outcome it would have shown
		// is not known.
		if room := maxSniff - len(a.head); room > 0 && !a.headFull {
			n := min(room, len(p))
			counted := max(len(a.head)+n-freeSniff, 0) - max(len(a.head)-freeSniff, 0)
			if counted > 0 && !a.x.h.held.Reserve(a.x.heldBy(), counted) {
				a.headFull = true
				break
			}
			a.reserved += counted
			if cap(a.head) == 0 {
				a.head = make([]byte, 0, min(maxSniff, max(len(p), 512)))
			}
			a.head = append(a.head, p[:n]...)
		}
	case modeHold:
		a.hold(p)
		return len(p), nil
	case modeSSE:
		return a.sse.write(p)
	}
	return a.w.Write(p)
}

// hold keeps p with the answer held, unless the answer, or all those held
// at once, would be too large (SEC-161): then nothing more is kept, and
// the answer is refused.
func (a *answerWriter) hold(p []byte) {
	switch {
	case a.overflow:
		return
	case len(a.held)+len(p) > maxHold:
		a.overflow = true
	case !a.x.h.held.Reserve(a.x.heldBy(), len(p)):
		a.overflow, a.overBudget = true, true
	default:
		a.reserved += len(p)
		a.held = append(a.held, p...)
		return
	}
	a.held = nil
	a.releaseHeld()
}

// releaseHeld gives back what the answer counted in its handler's budget.
func (a *answerWriter) releaseHeld() {
	if a.reserved > 0 {
		a.x.h.held.Release(a.x.heldBy(), a.reserved)
		a.reserved = 0
	}
}

// heldBy is whose share of the budget the exchange's answer counts in.
func (x *exchange) heldBy() string {
	if x.caller == nil {
		return ""
	}
	return x.caller.User.ID
}

// Flush keeps event streams flowing; a held JSON answer is not a stream.
func (a *answerWriter) Flush() {
	if !a.wroteHeader {
		a.WriteHeader(http.StatusOK)
	}
	if a.mode == modeHold {
		return
	}
	if f, ok := a.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (a *answerWriter) Unwrap() http.ResponseWriter { return a.w }

// finish completes the answer once the backend has returned, and settles
// the outcome of each tools/call.
func (a *answerWriter) finish() {
	x := a.x
	switch a.mode {
	case modeTee:
		a.sniff(a.head)
	case modeSSE:
		a.sse.close()
	case modeHold:
		a.writeHeld()
	}
	if a.status >= 400 {
		for i := range x.calls {
			x.calls[i].outcome = audit.Failed
		}
	}
}

// writeHeld filters and writes a held tools/list answer.
func (a *answerWriter) writeHeld() {
	x := a.x
	h := a.w.Header()
	h.Del("Content-Length")
	if a.packed {
		x.h.log.Error("answer packed (Content-Encoding) or in a charset other than UTF-8; refused, its tools cannot be filtered", "resource", x.h.resource)
		a.refuseList()
		return
	}
	if a.overBudget {
		x.h.log.Error("answers held to filter their tools exceed the gateway's budget; refused", "resource", x.h.resource, "budget_bytes", maxHeldTotal)
		a.refuseList()
		return
	}
	if a.overflow {
		x.h.log.Error("answer too large to filter its tools; refused", "resource", x.h.resource)
		a.refuseList()
		return
	}
	out, err := jsonrpc.FilterToolsList(a.held, anyID, x.keep)
	if err != nil {
		if mayListTools(a.held) {
			x.h.log.Error("answer could not be checked against the tool policy; refused", "resource", x.h.resource, "error", err)
			a.refuseList()
			return
		}
		out = a.held
	}
	a.sniff(out)
	a.w.WriteHeader(a.status)
	_, _ = a.w.Write(out)
}

// refuseList answers the tools/list request(s) with an error instead of an
// answer that might list tools the caller may not call.
func (a *answerWriter) refuseList() {
	a.w.Header().Del("Content-Encoding")
	a.w.Header().Set("Content-Type", "application/json")
	a.status = http.StatusBadGateway
	jsonrpc.WriteError(a.w, http.StatusBadGateway, a.x.refusedID(), jsonrpc.CodeInternalError, listUnfiltered)
}

// refusedID is the id of the request whose answer the policy refused: the
// POST's one request, whatever its method, since every answer is read
// under a policy (SEC-122) and a client whose request gets no answer under
// its id waits on; nil (null) for a batch or a GET's stream, where which
// request an answer was for cannot be told.
func (x *exchange) refusedID() json.RawMessage {
	if m := x.msgs.Messages; !x.msgs.Batch && len(m) == 1 && m[0].Kind == jsonrpc.Request {
		return m[0].ID
	}
	return nil
}

// listUnfiltered is the error message of a refused tools/list answer.
const listUnfiltered = "the MCP server's answer could not be checked against the tool policy"

// sniff settles the outcome of the tools/calls that data, the backend's
// messages, answers; it does nothing once none is left to settle or when
// no audit event is due.
func (a *answerWriter) sniff(data []byte) {
	if a.watchCalls && a.x.pending > 0 {
		_ = jsonrpc.ScanAnswers(data, a.x.resolve)
	}
}

// sseFilter reads an event stream as it passes (internal/sse). When the
// request holds a tools/list, each event is held until its blank line,
// filtered if it carries that answer, then written, and flushed with the
// rest of the backend's write
// (the stream keeps being filtered after the answer: a second answer with
// the same id must not leak either); otherwise bytes are written as they
// come, and the events are read from a copy to find outcomes.
type sseFilter struct {
	a    *answerWriter
	hold bool // the request holds a tools/list: hold and filter events
	sc   sse.Scanner
}

func (s *sseFilter) init(a *answerWriter) {
	s.a, s.hold = a, a.x.h.policy != nil
	s.sc = sse.Scanner{Max: maxSniff, Handle: s.event}
	if s.hold {
		s.sc.Max, s.sc.Raw = maxHold, true
	}
}

func (s *sseFilter) write(p []byte) (int, error) {
	if s.hold {
		// One flush for what this write completed, not one per event: a
		// backend's 32 KiB of blank lines are thousands of events.
		n, err := s.sc.Write(p)
		if !s.count(0) {
			s.a.x.h.log.Error("answers held to filter their tools exceed the gateway's budget; an event refused", "resource", s.a.x.h.resource, "budget_bytes", maxHeldTotal)
		}
		if f, ok := s.a.w.(http.Flusher); ok {
			f.Flush()
		}
		return n, err
	}
	n, err := s.a.w.Write(p)
	if s.a.watchCalls && s.a.x.pending > 0 { // once every call is settled, the rest only passes
		_, _ = s.sc.Write(p)
		// The event under way is kept to read an outcome from, counted
		// as a held one is past its first freeSniff bytes (SEC-215); past
		// the budget it is not read.
		if !s.count(freeSniff) {
			s.a.x.h.log.Debug("an event not read for a call's outcome: the answers held are over budget", "resource", s.a.x.h.resource)
		}
	}
	return n, err
}

// count keeps what the event under way holds, past its first free bytes,
// counted with the JSON answers held (SEC-161, SEC-215): past the budget,
// in all or the user's, the event is dropped and count reports false.
func (s *sseFilter) count(free int) bool {
	a, x := s.a, s.a.x
	switch held := max(s.sc.Held()-free, 0); {
	case held > a.reserved:
		if !x.h.held.Reserve(x.heldBy(), held-a.reserved) {
			s.sc.Drop()
			a.releaseHeld()
			return false
		}
		a.reserved = held
	case held < a.reserved:
		x.h.held.Release(x.heldBy(), a.reserved-held)
		a.reserved = held
	}
	return true
}

// event handles one event of the stream: it finds outcomes in its data
// and, when holding, writes it, filtered.
func (s *sseFilter) event(ev sse.Event) error {
	if !s.hold {
		if ev.HasData {
			s.a.sniff(ev.Data) // a prefix when too large: an answer's id and outcome come first
		}
		return nil
	}
	x := s.a.x
	out := sse.Known(ev.Raw) // what the gateway read, and no more
	switch {
	case ev.TooLarge:
		// The answer cannot be filtered: refuse the tools/list, and drop
		// the event (its answer never reaches the client, so it settles
		// no outcome either).
		x.h.log.Error("event too large to filter a tools/list answer; refused", "resource", x.h.resource)
		out = sse.AppendEvent(nil, "message", listError(x))
	case ev.HasData:
		s.a.sniff(ev.Data)
		filtered, err := jsonrpc.FilterToolsList(ev.Data, anyID, x.keep)
		switch {
		case err != nil && mayListTools(ev.Data):
			x.h.log.Error("event could not be checked against the tool policy; refused", "resource", x.h.resource, "error", err)
			out = sse.ReplaceData(out, listError(x))
		case err == nil && len(filtered) != len(ev.Data):
			out = sse.ReplaceData(out, filtered)
		}
	}
	_, err := s.a.w.Write(out)
	return err
}

// close handles the event the backend's answer ended inside, if any: when
// holding, it is filtered and written as it is, without the blank line it
// lacks (a client discards it anyway).
func (s *sseFilter) close() { _ = s.sc.Close() }

func listError(x *exchange) []byte {
	id := x.refusedID()
	if id == nil && len(x.lists) == 1 {
		id = x.lists[0] // a batch's one tools/list
	}
	return jsonrpc.AppendError(nil, id, jsonrpc.CodeInternalError, listUnfiltered)
}
