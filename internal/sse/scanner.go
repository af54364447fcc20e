package sse

import (
	"bytes"
	"errors"
	"io"
)

// Event is one event of a stream: its lines up to a blank line. Its
// slices are valid only during the call that reports it.
type Event struct {
	// Name is the value of its last event field; empty when it has none
	// (a client then dispatches it as "message").
	Name []byte
	// Data is the values of its data fields joined by LF. HasData reports
	// whether it has any: a client dispatches only an event with data,
	// one without is a comment, a keep-alive or an id.
	Data    []byte
	HasData bool
	// TooLarge reports an event of more than Scanner.Max bytes: Name and
	// Data then hold what of them came before the limit (a prefix), and
	// Raw is nil.
	TooLarge bool
	// Raw is the event's bytes as written, its blank line included, when
	// Scanner.Raw is set. The stream's byte order mark is not part of any
	// event; the LF of a CRLF whose CR ended an event starts the next.
	Raw []byte
	// Unterminated marks the event the stream ended inside, which only
	// Scanner.Close reports: it has no blank line, and its last line may
	// have no line end. A client discards it.
	Unterminated bool
}

// Scanner parses an event stream written to it in pieces of any size, and
// calls Handle with each event as soon as its blank line is written. Set
// Max and Handle before the first Write.
type Scanner struct {
	// Max bounds an event: all its bytes, line ends included. It must be
	// positive.
	Max int
	// Raw keeps each event's bytes for Event.Raw.
	Raw bool
	// Handle is called with each event. An error stops Write, which
	// returns it.
	Handle func(Event) error

	// The current event.
	n         int // its bytes so far, up to Max
	tooLarge  bool
	hasData   bool
	name      []byte
	data      []byte
	raw       []byte
	lineBytes int // bytes of the current line so far: 0 at its start

	// The current line's field.
	field   [len("event")]byte // the first bytes of its name
	fieldN  int                // the length of its name so far
	state   lineState
	dest    dest
	afterCR bool // the last byte was a CR: a LF now completes a CRLF
	bom     int  // bytes of a byte order mark seen at the stream's start; len(bom) once past it
}

var bom = []byte("\xEF\xBB\xBF")

type lineState uint8

const (
	inName     lineState = iota // before the colon
	valueStart                  // just after the colon: a space there is dropped
	inValue
)

// dest is where a field's value goes.
type dest uint8

const (
	toNowhere dest = iota
	toData
	toName
)

// Write parses p. It returns len(p), or, when Handle fails, the bytes up
// to the end of the event it was given, and its error.
func (s *Scanner) Write(p []byte) (int, error) {
	n, lf := 0, -1 // lf: p's next LF at or after n, len(p) for none; -1 unknown
	for n < len(p) {
		rest := p[n:]
		if s.afterCR {
			s.afterCR = false
			if rest[0] == '\n' { // the end of a CRLF, not a line
				s.take(rest[:1])
				n++
			}
			continue
		}
		if s.bom < len(bom) {
			if rest[0] == bom[s.bom] {
				s.bom++
				n++
				continue
			}
			s.noBOM()
		}
		if lf < n {
			lf = nextLF(p, n)
		}
		i := lineEnd(rest, lf-n)
		if i < 0 {
			s.content(rest)
			return len(p), nil
		}
		s.content(rest[:i])
		s.take(rest[i : i+1])
		s.afterCR = rest[i] == '\r'
		n += i + 1
		if s.endLine() {
			if err := s.dispatch(false); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// nextLF is the index of p's first LF at or after n, or len(p).
func nextLF(p []byte, n int) int {
	if i := bytes.IndexByte(p[n:], '\n'); i >= 0 {
		return n + i
	}
	return len(p)
}

// lineEnd returns the index of the first CR or LF in p, or -1, given lf,
// the index of its first LF (len(p) for none), which Write finds once for
// all the lines before it. It is bytes.IndexAny(p, "\r\n") with
// IndexByte's vector search: a small event scans in 155 ns instead of 225
// (BenchmarkScanner/small); a CR is only looked for up to the next LF, so
// that a stream without CRs is not searched to its end at every line; and
// the next LF is looked for once, not at every line, so that one with CRs
// alone is not either (a 1 MiB chunk of them took 14 s).
func lineEnd(p []byte, lf int) int {
	if cr := bytes.IndexByte(p[:lf], '\r'); cr >= 0 {
		return cr
	}
	if lf == len(p) {
		return -1
	}
	return lf
}

// Held is how many bytes of the event under way the Scanner holds: its
// name, its data so far (a prefix of it, once too large, until its end)
// and, with Raw, its raw form, each within Max. A caller that bounds what
// all its streams hold together counts it after each Write.
func (s *Scanner) Held() int {
	return len(s.name) + len(s.data) + len(s.raw)
}

// Drop gives up the event under way: what it holds is let go, the rest of
// it is read without being kept, and it is handled as TooLarge. A caller
// whose streams hold too much together drops one.
func (s *Scanner) Drop() {
	s.tooLarge = true
	s.raw, s.data, s.name = reuse(s.raw), reuse(s.data), reuse(s.name)
}

// Close reports the event the stream ended inside, if any, as
// Unterminated, and returns Handle's error.
func (s *Scanner) Close() error {
	if s.bom < len(bom) {
		s.noBOM()
	}
	if s.n == 0 && !s.tooLarge {
		return nil
	}
	s.endLine()
	return s.dispatch(true)
}

// noBOM settles that the stream has no byte order mark: what of one it
// began with is content.
func (s *Scanner) noBOM() {
	seen := s.bom
	s.bom = len(bom)
	s.content(bom[:seen])
}

// content handles bytes of the current line, without its end.
func (s *Scanner) content(b []byte) {
	s.lineBytes += len(b)
	s.parse(s.take(b))
}

// take counts b as bytes of the current event and returns the part of it
// within Max, keeping that for Raw; the first byte beyond Max makes the
// event TooLarge.
func (s *Scanner) take(b []byte) []byte {
	if s.tooLarge {
		return nil
	}
	if room := s.Max - s.n; len(b) > room {
		s.tooLarge = true
		s.raw = reuse(s.raw)
		return b[:max(room, 0)]
	}
	s.n += len(b)
	if s.Raw {
		s.raw = append(s.raw, b...)
	}
	return b
}

// parse reads bytes of the current line: its field's name, then its
// value.
func (s *Scanner) parse(b []byte) {
	for len(b) > 0 {
		switch s.state {
		case inName:
			name, value, colon := bytes.Cut(b, []byte(":"))
			if s.fieldN < len(s.field) {
				copy(s.field[s.fieldN:], name)
			}
			s.fieldN += len(name)
			if !colon {
				return
			}
			s.startValue()
			s.state, b = valueStart, value
		case valueStart:
			if b[0] == ' ' {
				b = b[1:]
			}
			s.state = inValue
		case inValue:
			switch s.dest {
			case toData:
				s.data = append(s.data, b...)
			case toName:
				s.name = append(s.name, b...)
			}
			return
		}
	}
}

// startValue decides where the current field's value goes, once its name
// is complete.
func (s *Scanner) startValue() {
	s.dest = toNowhere
	if s.fieldN > len(s.field) {
		return // none of ours
	}
	switch string(s.field[:s.fieldN]) {
	case "data":
		if s.hasData {
			s.data = append(s.data, '\n')
		}
		s.hasData = true
		s.dest = toData
	case "event":
		s.name = s.name[:0]
		s.dest = toName
	}
}

// endLine completes the current line and reports whether it was blank.
func (s *Scanner) endLine() bool {
	blank := s.lineBytes == 0
	if !blank && !s.tooLarge && s.state == inName {
		s.startValue() // a field without a colon has an empty value
	}
	s.lineBytes, s.fieldN, s.state, s.dest = 0, 0, inName, toNowhere
	return blank
}

// dispatch reports the current event and starts the next.
func (s *Scanner) dispatch(unterminated bool) error {
	ev := Event{Name: s.name, Data: s.data, HasData: s.hasData, TooLarge: s.tooLarge, Unterminated: unterminated}
	if s.Raw && !s.tooLarge {
		ev.Raw = s.raw
	}
	err := s.Handle(ev)
	s.n, s.tooLarge, s.hasData = 0, false, false
	s.name, s.data, s.raw = reuse(s.name), reuse(s.data), reuse(s.raw)
	return err
}

// reuse empties b for the next event, unless it grew large: a stream of
// small events should not hold on to the memory of one large one.
func reuse(b []byte) []byte {
	if cap(b) > 1<<20 {
		return nil
	}
	return b[:0]
}

var errStop = errors.New("sse: stopped")

// Read calls fn with each event of r that a client would dispatch (it has
// data), or that is TooLarge, as soon as its blank line has been read,
// until r ends or fn returns false. An event that r ends inside is
// dropped, as a client drops it. It returns r's error, nil at its end.
func Read(r io.Reader, max int, fn func(Event) bool) error {
	s := Scanner{Max: max, Handle: func(ev Event) error {
		if !ev.HasData && !ev.TooLarge {
			return nil
		}
		if !fn(ev) {
			return errStop
		}
		return nil
	}}
	if _, err := io.Copy(&s, r); err != errStop {
		return err
	}
	return nil
}
