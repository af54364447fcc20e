package policy

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// How the answer is handled, decided when its header is written.
const (
	modePass = iota // nothing to learn from it
	modeTee         // passed on at once; its head is kept to find outcomes
	modeHold        // a JSON tools/list answer: held whole, filtered, then written
	modeSSE         // an event stream: events pass at once, the tools/list answer filtered
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
	held        []byte // modeHold
	overflow    bool   // modeHold: more than maxHold bytes
	sse         sseFilter
}

// init prepares a for x and reports whether the answer must pass through
// it: when the request holds a tools/call to audit or a tools/list to
// filter.
func (a *answerWriter) init(w http.ResponseWriter, x *exchange) bool {
	a.w, a.x, a.watchCalls = w, x, len(x.calls) > 0 && x.h.audit != nil
	x.pending = len(x.calls)
	return a.watchCalls || len(x.lists) > 0
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
	switch ct := mediaType(h.Get("Content-Type")); {
	case ct == "text/event-stream":
		a.mode = modeSSE
		a.sse.init(a)
		if len(a.x.lists) > 0 {
			h.Del("Content-Length")
		}
	case len(a.x.lists) > 0:
		a.mode = modeHold
		return // written with the filtered answer
	case a.watchCalls && code < 400:
		a.mode = modeTee
	}
	a.w.WriteHeader(code)
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
		if room := maxSniff - len(a.head); room > 0 {
			if cap(a.head) == 0 {
				a.head = make([]byte, 0, min(maxSniff, max(len(p), 512)))
			}
			a.head = append(a.head, p[:min(room, len(p))]...)
		}
	case modeHold:
		if len(a.held)+len(p) > maxHold {
			a.overflow, a.held = true, nil
		}
		if !a.overflow {
			a.held = append(a.held, p...)
		}
		return len(p), nil
	case modeSSE:
		return a.sse.write(p)
	}
	return a.w.Write(p)
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
	if a.overflow {
		x.h.log.Error("tools/list answer too large to filter; refused", "resource", x.h.resource)
		a.refuseList()
		return
	}
	out, err := jsonrpc.FilterToolsList(a.held, x.isList, x.keep)
	if err != nil {
		if mentionsTools(a.held) {
			x.h.log.Error("tools/list answer could not be filtered; refused", "resource", x.h.resource, "error", err)
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
	a.w.Header().Set("Content-Type", "application/json")
	var id json.RawMessage
	if len(a.x.lists) == 1 && !a.x.msgs.Batch {
		id = a.x.lists[0]
	}
	a.status = http.StatusBadGateway
	jsonrpc.WriteError(a.w, http.StatusBadGateway, id, jsonrpc.CodeInternalError, listUnfiltered)
}

// listUnfiltered is the error message of a refused tools/list answer.
const listUnfiltered = "the MCP server's tools/list answer could not be filtered"

// sniff settles the outcome of the tools/calls that data, the backend's
// messages, answers; it does nothing once none is left to settle or when
// no audit event is due.
func (a *answerWriter) sniff(data []byte) {
	if a.watchCalls && a.x.pending > 0 {
		_ = jsonrpc.ScanAnswers(data, a.x.resolve)
	}
}

// sseFilter parses an event stream as it passes (text/event-stream, WHATWG
// HTML §9.2.6). When the request holds a tools/list, each event is held
// until its blank line, filtered if it carries that answer, then written
// and flushed at once (the stream keeps being filtered after the answer: a
// second answer with the same id must not leak either); otherwise bytes are
// written as they come and a copy of each event's head is kept to find
// outcomes.
type sseFilter struct {
	a       *answerWriter
	ev      []byte // the current event's bytes (all when holding, else its head)
	lineLen int    // bytes of the current line so far
	lastCR  bool   // the last byte was a CR, which a LF may complete
	listDue bool   // the request holds a tools/list: hold and filter events
	skip    bool   // discarding the rest of an event too large to hold
}

func (s *sseFilter) init(a *answerWriter) {
	s.a = a
	s.listDue = len(a.x.lists) > 0
}

func (s *sseFilter) write(p []byte) (int, error) {
	if !s.holding() {
		// Pass on at once; parse the copy.
		n, err := s.a.w.Write(p)
		if s.a.watchCalls && s.a.x.pending > 0 { // once every call is settled, the rest only passes
			_, _ = s.parse(p)
		}
		return n, err
	}
	rest, err := s.parse(p)
	if err != nil {
		return len(p) - len(rest), err
	}
	if len(rest) > 0 { // the tools/list answer went out mid-write
		n, err := s.write(rest)
		return len(p) - len(rest) + n, err
	}
	return len(p), nil
}

// parse consumes p line by line, handling each event as it completes. It
// returns the bytes after an event that ended the holding, unconsumed.
func (s *sseFilter) parse(p []byte) ([]byte, error) {
	for len(p) > 0 {
		j := bytes.IndexAny(p, "\r\n")
		if j < 0 {
			s.lineLen += len(p)
			s.add(p)
			return nil, nil
		}
		if j == 0 && p[0] == '\n' && s.lastCR { // the LF of a CRLF
			s.lastCR = false
			s.add(p[:1])
			p = p[1:]
			continue
		}
		s.lastCR = p[j] == '\r'
		s.add(p[:j+1])
		blank := s.lineLen+j == 0
		s.lineLen = 0
		p = p[j+1:]
		if blank {
			held := s.holding()
			if err := s.event(); err != nil {
				return p, err
			}
			if held && !s.holding() {
				return p, nil
			}
		}
	}
	return nil, nil
}

// holding reports whether bytes are held until their event is complete.
func (s *sseFilter) holding() bool { return s.listDue || s.skip }

// add appends to the current event, within bounds.
func (s *sseFilter) add(p []byte) {
	if s.skip {
		return
	}
	limit := maxSniff
	if s.listDue {
		limit = maxHold
	}
	if len(s.ev)+len(p) > limit {
		if s.listDue {
			// Too large to hold: the answer cannot be filtered, so refuse
			// the tools/list and drop the event.
			s.a.x.h.log.Error("event too large to filter a tools/list answer; refused", "resource", s.a.x.h.resource)
			s.writeListError()
			s.skip, s.ev = true, s.ev[:0]
			return
		}
		p = p[:max(0, limit-len(s.ev))] // keep the event's head
	}
	s.ev = append(s.ev, p...)
}

// event handles the complete event in s.ev.
func (s *sseFilter) event() error {
	defer func() { s.ev, s.skip = s.ev[:0], false }()
	if s.skip {
		return nil
	}
	x := s.a.x
	data, ok := eventData(s.ev)
	if ok {
		s.a.sniff(data)
	}
	if !s.listDue {
		return nil
	}
	out := s.ev
	if ok {
		filtered, err := jsonrpc.FilterToolsList(data, x.isList, x.keep)
		switch {
		case err != nil && mentionsTools(data):
			x.h.log.Error("tools/list event could not be filtered; refused", "resource", x.h.resource, "error", err)
			out = replaceData(s.ev, listError(x))
		case err == nil && len(filtered) != len(data):
			out = replaceData(s.ev, filtered)
		}
	}
	if _, err := s.a.w.Write(out); err != nil {
		return err
	}
	if f, ok := s.a.w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}

// close handles what is left when the backend returns.
func (s *sseFilter) close() {
	if len(s.ev) == 0 || s.skip {
		return
	}
	if s.listDue {
		// An unfinished event: filter it as if it were complete, but add
		// no blank line (a client discards it anyway).
		_ = s.event()
		return
	}
	if data, ok := eventData(s.ev); ok {
		s.a.sniff(data)
	}
}

func (s *sseFilter) writeListError() {
	ev := append([]byte("event: message\ndata: "), listError(s.a.x)...)
	ev = append(ev, "\n\n"...)
	_, _ = s.a.w.Write(ev)
}

func listError(x *exchange) []byte {
	var id json.RawMessage
	if len(x.lists) == 1 {
		id = x.lists[0]
	}
	return jsonrpc.AppendError(nil, id, jsonrpc.CodeInternalError, listUnfiltered)
}

// lines calls fn for each line of ev with its content and its raw bytes
// (content and terminator).
func lines(ev []byte, fn func(content, raw []byte)) {
	for len(ev) > 0 {
		j := bytes.IndexAny(ev, "\r\n")
		if j < 0 {
			fn(ev, ev)
			return
		}
		end := j + 1
		if ev[j] == '\r' && end < len(ev) && ev[end] == '\n' {
			end++
		}
		fn(ev[:j], ev[:end])
		ev = ev[end:]
	}
}

// dataValue returns the value of a data field line.
func dataValue(line []byte) ([]byte, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("data"))
	if !ok {
		return nil, false
	}
	if len(rest) == 0 {
		return rest, true
	}
	if rest[0] != ':' {
		return nil, false
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, true
}

// eventData returns the data of an event: its data lines joined by LF.
func eventData(ev []byte) ([]byte, bool) {
	var data []byte
	n := 0
	lines(ev, func(content, _ []byte) {
		v, ok := dataValue(content)
		if !ok {
			return
		}
		if n++; n == 1 {
			data = v // usually the only one: no copy
			return
		}
		if n == 2 {
			data = append([]byte(nil), data...)
		}
		data = append(append(data, '\n'), v...)
	})
	return data, n > 0
}

// replaceData returns ev with its data lines replaced by data, at the
// place of the first; every other line is kept.
func replaceData(ev, data []byte) []byte {
	out := make([]byte, 0, len(ev)+len(data))
	done := false
	lines(ev, func(content, raw []byte) {
		if _, ok := dataValue(content); !ok {
			out = append(out, raw...)
			return
		}
		if done {
			return
		}
		done = true
		term := raw[len(content):]
		if len(term) == 0 {
			term = []byte("\n")
		}
		for _, l := range strings.FieldsFunc(string(data), func(r rune) bool { return r == '\n' || r == '\r' }) {
			out = append(out, "data: "...)
			out = append(out, l...)
			out = append(out, term...)
		}
	})
	return out
}
