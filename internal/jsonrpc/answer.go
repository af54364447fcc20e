package jsonrpc

import (
	"encoding/json"
	"errors"
)

// Answer is what the gateway reads of one message from the backend.
type Answer struct {
	Kind Kind
	ID   json.RawMessage // aliases the scanned data
	// Error: the response has an error member. Result: it has a result
	// member; IsError: result.isError is true (a tool's own failure).
	Error, Result, IsError bool
	// Truncated: the data ended inside this message (ScanAnswers was given
	// a prefix); the members seen before the end are set.
	Truncated bool
}

// ScanAnswers calls fn for each JSON-RPC message in data, a message or a
// batch of them sent by the backend. It is lenient where Parse is strict
// (the backend is not the adversary here: a duplicate member takes the
// last value) but validates what it reads. When data is a prefix of the
// backend's answer, a message cut short is still reported, marked
// Truncated, if its id was seen; the error is then the syntax error at the
// end.
func ScanAnswers(data []byte, fn func(Answer)) error {
	s := scanner{data: data}
	return s.messages(func() error { return s.answer(fn) })
}

func (s *scanner) answer(fn func(Answer)) error {
	var a Answer
	var method bool
	err := s.object(func(key []byte, esc bool) error {
		switch {
		case keyIs(key, esc, "id"):
			id, err := s.raw()
			if err != nil {
				return err
			}
			a.ID = id
		case keyIs(key, esc, "method"):
			method = true
			return s.value()
		case keyIs(key, esc, "error"):
			a.Error = true
			return s.value()
		case keyIs(key, esc, "result"):
			a.Result = true
			if s.peek() != '{' {
				return s.value()
			}
			return s.object(func(key []byte, esc bool) error {
				if keyIs(key, esc, "isError") {
					a.IsError = s.peek() == 't'
				}
				return s.value()
			})
		default:
			return s.value()
		}
		return nil
	})
	switch {
	case method && a.ID != nil:
		a.Kind = Request
	case method:
		a.Kind = Notification
	case a.ID != nil:
		a.Kind = Response
	}
	if err != nil {
		if s.eof() && a.ID != nil {
			a.Truncated = true
			fn(a)
		}
		return err
	}
	if a.Kind != 0 {
		fn(a)
	}
	return nil
}

// ErrToolsUnsafe is returned by FilterToolsList for an answer it cannot
// filter with confidence; the caller must not pass such an answer on.
var ErrToolsUnsafe = errors.New("jsonrpc: cannot filter the tools/list answer")

// FilterToolsList removes from result.tools of each response in data (a
// message or a batch) whose id satisfies isList the tools for which keep
// returns false (a response without an id is filtered too). Every other
// byte is kept as it was. It returns data
// itself when nothing is removed. A tool without a name string, or whose
// name member is duplicated or differs from "name" only by case, is
// removed. An answer that is not valid JSON, or whose result or tools
// member is duplicated or spelled with another case (a client could read
// the other), is an error; the caller must then not pass data on.
func FilterToolsList(data []byte, isList func(id []byte) bool, keep func(name string) bool) ([]byte, error) {
	var edits []edit
	s := scanner{data: data}
	err := s.messages(func() error {
		id, e, dropped, err := s.answerTools(keep)
		if err == nil && e.start >= 0 && dropped && (id == nil || isList(id)) {
			edits = append(edits, e)
		}
		return err
	})
	if err != nil {
		return nil, errors.Join(ErrToolsUnsafe, err)
	}
	if len(edits) == 0 {
		return data, nil
	}
	return applyEdits(data, edits), nil
}

// answerTools reads one message at s.pos: its id and, when its
// result.tools is an array, the edit that keeps the tools keep accepts
// (e.start is -1 when there is none) and whether that drops any.
func (s *scanner) answerTools(keep func(name string) bool) (id []byte, e edit, dropped bool, err error) {
	e.start = -1
	seenResult := false
	err = s.object(func(key []byte, esc bool) error {
		i, err := member(key, esc, answerKeys)
		if err != nil {
			return err
		}
		switch i {
		case 0: // id
			id, err = s.raw()
			return err
		case 1: // result
			if seenResult {
				return errDuplicateKey["result"]
			}
			seenResult = true
			if s.peek() != '{' {
				return s.value()
			}
			return s.resultTools(keep, &e, &dropped)
		}
		return s.value()
	})
	return id, e, dropped, err
}

// resultTools reads a result object, and sets e to its tools array with
// the tools keep accepts; *dropped tells whether it refused any.
func (s *scanner) resultTools(keep func(name string) bool, e *edit, dropped *bool) error {
	seenTools := false
	return s.object(func(key []byte, esc bool) error {
		i, err := member(key, esc, toolsKeys)
		if err != nil {
			return err
		}
		if i < 0 {
			return s.value()
		}
		if seenTools {
			return errDuplicateKey["tools"]
		}
		seenTools = true
		if s.peek() != '[' {
			return s.value()
		}
		e.start = s.pos
		err = s.array(func() error {
			s.skipWS()
			start := s.pos
			name, ok, err := s.toolName()
			if err != nil {
				return err
			}
			if ok && keep(name) {
				e.keep = append(e.keep, cut{start, s.pos})
			} else {
				*dropped = true
			}
			return nil
		})
		e.end = s.pos
		return err
	})
}

// applyEdits returns data with the tools array of each edit replaced by
// the tools it keeps.
func applyEdits(data []byte, edits []edit) []byte {
	out := make([]byte, 0, len(data))
	last := 0
	for _, e := range edits {
		out = append(out, data[last:e.start]...)
		out = append(out, '[')
		for i, t := range e.keep {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, data[t.start:t.end]...)
		}
		out = append(out, ']')
		last = e.end
	}
	return append(out, data[last:]...)
}

type cut struct{ start, end int }

// edit replaces data[start:end], a tools array, with the kept tools.
type edit struct {
	start, end int
	keep       []cut
}

var (
	answerKeys = []string{"id", "result"}
	toolsKeys  = []string{"tools"}
	nameKeys   = []string{"name"}
)

// toolName consumes one element of a tools array and returns its name;
// ok is false when the element has no single, exactly spelled name string.
func (s *scanner) toolName() (name string, ok bool, err error) {
	if s.peek() != '{' {
		return "", false, s.value()
	}
	seen, bad := false, false
	err = s.object(func(key []byte, esc bool) error {
		i, ferr := member(key, esc, nameKeys)
		if ferr != nil {
			bad = true
			return s.value()
		}
		if i < 0 {
			return s.value()
		}
		if seen {
			bad = true
		}
		seen = true
		if s.peek() != '"' {
			bad = true
			return s.value()
		}
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		if name, err = decodeString(raw, esc); err != nil {
			bad = true
		}
		return nil
	})
	return name, seen && !bad, err
}
