package jsonrpc

import (
	"bytes"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit, so that both accept the same
// documents.
const maxDepth = 10000

// scanner walks one JSON document. Every method validates what it passes
// over; none allocates except to report an error.
type scanner struct {
	data  []byte
	pos   int
	depth int
}

// syntaxError is a JSON syntax error at an offset; Parse turns it into a
// CodeParseError.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg)
}

func (s *scanner) fail(msg string) error { return &syntaxError{off: s.pos, msg: msg} }

func (s *scanner) eof() bool { return s.pos >= len(s.data) }

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, or 0 at the end.
func (s *scanner) peek() byte {
	s.skipWS()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// expect consumes c after white space.
func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		if s.eof() {
			return s.fail("unexpected end of input")
		}
		return s.fail(fmt.Sprintf("want %q, have %q", c, s.data[s.pos]))
	}
	s.pos++
	return nil
}

// plain marks the bytes that need no attention inside a string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return
}()

// str consumes a string at s.pos (which holds '"') and returns its raw
// content, between the quotes, and whether it holds escapes. It rejects
// control characters, bad escapes and invalid UTF-8.
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	s.pos++ // the opening quote
	start := s.pos
	d := s.data
	for {
		for s.pos < len(d) && plain[d[s.pos]] {
			s.pos++
		}
		if s.pos >= len(d) {
			return nil, false, s.fail("unterminated string")
		}
		switch c := d[s.pos]; {
		case c == '"':
			raw = d[start:s.pos]
			s.pos++
			return raw, escaped, nil
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(d) {
				return nil, false, s.fail("unterminated string")
			}
			switch d[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(d) || !isHex4(d[s.pos+2:s.pos+6]) {
					return nil, false, s.fail("bad \\u escape")
				}
				s.pos += 6
			default:
				return nil, false, s.fail("bad escape")
			}
		case c < 0x20:
			return nil, false, s.fail("control character in string")
		default: // non-ASCII
			r, n := utf8.DecodeRune(d[s.pos:])
			if r == utf8.RuneError && n <= 1 {
				return nil, false, s.fail("invalid UTF-8")
			}
			s.pos += n
		}
	}
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c <= '9':
			r |= rune(c - '0')
		case c >= 'a':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}

// unescape appends the decoded form of raw, a string's content that str
// validated, to buf. A lone UTF-16 surrogate is an error: encoding/json
// turns it into U+FFFD while other parsers keep it, so two readers could
// disagree on a name.
func unescape(buf, raw []byte) ([]byte, bool) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			j := bytes.IndexByte(raw[i:], '\\')
			if j < 0 {
				return append(buf, raw[i:]...), true
			}
			buf = append(buf, raw[i:i+j]...)
			i += j
			continue
		}
		switch raw[i+1] {
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
					return buf, false
				}
				r2 := hex4(raw[i+2:])
				if r2 < 0xDC00 || r2 > 0xDFFF {
					return buf, false
				}
				r = utf16.DecodeRune(r, r2)
				i += 6
			}
			buf = utf8.AppendRune(buf, r)
			continue
		default: // " \ /
			buf = append(buf, raw[i+1])
		}
		i += 2
	}
	return buf, true
}

// number consumes a JSON number.
func (s *scanner) number() error {
	d := s.data
	if s.pos < len(d) && d[s.pos] == '-' {
		s.pos++
	}
	switch {
	case s.pos < len(d) && d[s.pos] == '0':
		s.pos++
	case s.pos < len(d) && '1' <= d[s.pos] && d[s.pos] <= '9':
		s.digits()
	default:
		return s.fail("bad number")
	}
	if s.pos < len(d) && d[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return s.fail("bad number")
		}
	}
	if s.pos < len(d) && (d[s.pos] == 'e' || d[s.pos] == 'E') {
		s.pos++
		if s.pos < len(d) && (d[s.pos] == '+' || d[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return s.fail("bad number")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.data) && '0' <= s.data[s.pos] && s.data[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return s.fail("bad literal")
	}
	s.pos += len(lit)
	return nil
}

// value consumes any JSON value after white space.
func (s *scanner) value() error {
	switch c := s.peek(); c {
	case '{':
		return s.object(nil)
	case '[':
		return s.array(nil)
	case '"':
		_, _, err := s.str()
		return err
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	case 0:
		if s.eof() {
			return s.fail("unexpected end of input")
		}
		return s.fail("unexpected byte")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			return s.number()
		}
		return s.fail("unexpected byte")
	}
}

// object consumes an object at s.pos ('{'). For each member, member (when
// not nil) is called with the raw key, whether it holds escapes, and the
// scanner positioned before the value; it must consume the value. A nil
// member skips every value.
func (s *scanner) object(member func(key []byte, escaped bool) error) error {
	return s.container('}', member, nil)
}

// array consumes an array at s.pos ('['), calling elem (when not nil) with
// the scanner positioned before each element; it must consume it.
func (s *scanner) array(elem func() error) error {
	return s.container(']', nil, elem)
}

// container consumes an object (close is '}') or an array (']') at s.pos,
// as object and array say.
func (s *scanner) container(close byte, member func(key []byte, escaped bool) error, elem func() error) error {
	s.pos++
	if s.depth++; s.depth > maxDepth {
		return s.fail("nested too deep")
	}
	if s.peek() == close {
		s.pos++
		s.depth--
		return nil
	}
	for {
		var err error
		switch {
		case close == '}':
			if s.peek() != '"' {
				return s.fail("want a member name")
			}
			var key []byte
			var esc bool
			if key, esc, err = s.str(); err != nil {
				return err
			}
			if err := s.expect(':'); err != nil {
				return err
			}
			if member != nil {
				err = member(key, esc)
			} else {
				err = s.value()
			}
		case elem != nil:
			err = elem()
		default:
			err = s.value()
		}
		if err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.pos++
		case close:
			s.pos++
			s.depth--
			return nil
		default:
			if close == '}' {
				return s.fail("want ',' or '}'")
			}
			return s.fail("want ',' or ']'")
		}
	}
}

// raw consumes a value after white space and returns its bytes.
func (s *scanner) raw() ([]byte, error) {
	s.skipWS()
	start := s.pos
	if err := s.value(); err != nil {
		return nil, err
	}
	return s.data[start:s.pos:s.pos], nil
}

// messages consumes the whole of data, a message or a batch of them,
// calling one with the scanner at each message object; any other value is
// validated and skipped.
func (s *scanner) messages(one func() error) error {
	var err error
	switch s.peek() {
	case '{':
		err = one()
	case '[':
		err = s.array(func() error {
			if s.peek() != '{' {
				return s.value()
			}
			return one()
		})
	default:
		err = s.value()
	}
	if err == nil {
		err = s.end()
	}
	return err
}

// end checks that only white space follows the document.
func (s *scanner) end() error {
	s.skipWS()
	if !s.eof() {
		return s.fail("data after the JSON value")
	}
	return nil
}

// validate reports whether data is one JSON value, by this package's rules.
func validate(data []byte) error {
	s := scanner{data: data}
	if err := s.value(); err != nil {
		return err
	}
	return s.end()
}

// keyIs reports whether the decoded key equals name exactly.
func keyIs(key []byte, escaped bool, name string) bool {
	if !escaped {
		return string(key) == name
	}
	var buf [32]byte
	k, ok := unescape(buf[:0], key)
	return ok && string(k) == name
}
