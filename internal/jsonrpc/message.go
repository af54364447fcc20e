package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// JSON-RPC 2.0 and MCP error codes.
const (
	CodeParseError     = -32700 // not JSON
	CodeInvalidRequest = -32600 // JSON, but not an acceptable JSON-RPC message
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
	CodeHeaderMismatch = -32020 // MCP 2026-07-28 (SEP-2243): Mcp-Method or Mcp-Name disagree with the body
	// CodeRateLimited answers a tools/call over an operator's rate limit
	// (SEC-101): a server error of JSON-RPC's implementation-defined range,
	// as MCP defines none; 29 as in HTTP's 429.
	CodeRateLimited = -32029
)

// Error is a request that cannot be forwarded: Code is the JSON-RPC error
// code to answer with (CodeParseError or CodeInvalidRequest from Parse,
// CodeHeaderMismatch from CheckHeaders) and Message is safe to send to the
// client.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return "jsonrpc: " + e.Message + " (" + strconv.Itoa(e.Code) + ")" }

// Kind says what a message is.
type Kind uint8

const (
	Request      Kind = iota + 1 // method and id
	Notification                 // method, no id
	Response                     // result or error, and id
)

func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Notification:
		return "notification"
	case Response:
		return "response"
	}
	return "invalid"
}

// Message is what the gateway reads of one JSON-RPC message; everything
// else in it was validated and skipped.
type Message struct {
	Kind   Kind
	Method string // "" for a response
	// ID is the id exactly as sent (it aliases the parsed body); nil for a
	// notification.
	ID json.RawMessage
	// Name is params.name and URI params.uri, when params is an object
	// holding them as strings.
	Name, URI       string
	HasName, HasURI bool
}

// Body is a parsed request body: one message, or a batch (2025-03-26).
type Body struct {
	Batch    bool
	Messages []Message
	one      [1]Message
}

// Parse parses an MCP request body: a JSON-RPC message or a batch of them.
// It is strict where encoding/json is lax, because the backend behind the
// gateway may read the body with another parser: member names are matched
// exactly; a duplicate of a member Parse reads (jsonrpc, method, id,
// params, and name and uri in params), or a member whose name differs from
// one of those only by case (as encoding/json would match it), is an
// error; the whole body must be valid JSON in valid UTF-8 with nothing
// after it. The error is an *Error with CodeParseError when the body is
// not JSON, CodeInvalidRequest when it is JSON but not acceptable.
func Parse(data []byte) (*Body, error) {
	b := new(Body)
	if err := b.Parse(data); err != nil {
		return nil, err
	}
	return b, nil
}

// Parse is like the function Parse, into b (whose previous content is
// dropped). The strings in b alias nothing; the IDs alias data.
func (b *Body) Parse(data []byte) error {
	b.Batch, b.Messages = false, b.one[:0]
	s := scanner{data: data}
	var err error
	switch s.peek() {
	case '{':
		b.Messages = b.one[:1]
		b.one[0] = Message{}
		err = s.message(&b.one[0])
	case '[':
		b.Batch = true
		err = s.array(func() error {
			if s.peek() != '{' {
				return errNotObject
			}
			b.Messages = append(b.Messages, Message{})
			return s.message(&b.Messages[len(b.Messages)-1])
		})
		if err == nil && len(b.Messages) == 0 {
			err = errEmptyBatch
		}
		if err == nil {
			err = b.uniqueIDs()
		}
	default:
		err = s.value() // a syntax error, or a JSON value that is no message
		if err == nil {
			err = errNotObject
		}
	}
	if err == nil {
		err = s.end()
	}
	if err != nil {
		b.Messages = b.one[:0]
		return classify(data, err)
	}
	return nil
}

// classify turns a scanning error into an *Error. A semantic error stops
// the scan early, so the rest of the body is checked to report a body that
// is not JSON at all as such.
func classify(data []byte, err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return &Error{Code: CodeParseError, Message: "parse error: " + se.Error()}
	}
	if verr := validate(data); verr != nil {
		errors.As(verr, &se)
		return &Error{Code: CodeParseError, Message: "parse error: " + se.Error()}
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInvalidRequest, Message: "invalid request"}
}

func invalid(msg string) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "invalid request: " + msg}
}

var (
	errNotObject    = invalid("a message must be a JSON object")
	errEmptyBatch   = invalid("empty batch")
	errVersion      = invalid(`jsonrpc must be "2.0"`)
	errMethodType   = invalid("method must be a string")
	errIDType       = invalid("id must be a string, a number or null")
	errParamsType   = invalid("params must be an object or an array")
	errNoKind       = invalid("not a request, a notification or a response")
	errDuplicateID  = invalid("two requests in the batch share an id")
	errNameType     = invalid("params.name must be a string")
	errURIType      = invalid("params.uri must be a string")
	errBadString    = invalid("a member holds a lone UTF-16 surrogate")
	errDuplicateKey = map[string]*Error{}
	errCaseKey      = map[string]*Error{}
)

func init() {
	for _, k := range []string{"jsonrpc", "method", "id", "params", "result", "error", "name", "uri", "tools", "isError"} {
		errDuplicateKey[k] = invalid("duplicate member " + strconv.Quote(k))
		errCaseKey[k] = invalid("member name differs from " + strconv.Quote(k) + " only by case")
	}
}

// Members read at the top level of a message, by index, and in its
// params.
var (
	topKeys    = [...]string{keyJSONRPC: "jsonrpc", keyMethod: "method", keyID: "id", keyParams: "params", keyResult: "result", keyError: "error"}
	paramsKeys = []string{"name", "uri"}
)

const (
	keyJSONRPC = iota
	keyMethod
	keyID
	keyParams
	keyResult
	keyError
)

// member identifies a member name among known (exact match, after
// unescaping): it returns the index, or -1 for another name, or an error
// for a name that encoding/json would take for one of known (a case or
// Unicode-folding variant).
func member(key []byte, escaped bool, known []string) (int, error) {
	if escaped {
		var buf [64]byte
		k, ok := unescape(buf[:0], key)
		if !ok {
			return -1, nil // not a name anyone decodes to one of ours
		}
		key = k
	}
	for i, k := range known {
		if string(key) == k {
			return i, nil
		}
	}
	if len(key) <= 3*8 {
		for _, k := range known {
			if bytes.EqualFold(key, []byte(k)) {
				return -1, errCaseKey[k]
			}
		}
	}
	return -1, nil
}

// message parses one message object at s.pos into m.
func (s *scanner) message(m *Message) error {
	var seen [len(topKeys)]bool
	var nameType, uriType byte // first byte of params.name / params.uri, 0 when absent
	err := s.object(func(key []byte, esc bool) error {
		i, err := member(key, esc, topKeys[:])
		if err != nil {
			return err
		}
		if i < 0 {
			return s.value()
		}
		if seen[i] {
			return errDuplicateKey[topKeys[i]]
		}
		seen[i] = true
		return s.topMember(i, m, &nameType, &uriType)
	})
	if err != nil {
		return err
	}
	if m.Kind, err = kindOf(&seen); err != nil {
		return err
	}
	switch m.Method {
	case "tools/call", "prompts/get":
		if nameType != 0 && !m.HasName {
			return errNameType
		}
	case "resources/read":
		if uriType != 0 && !m.HasURI {
			return errURIType
		}
	}
	return nil
}

// topMember parses the value of the member topKeys[i] of a message into
// m (see params for nameType and uriType).
func (s *scanner) topMember(i int, m *Message, nameType, uriType *byte) error {
	c := s.peek()
	switch i {
	case keyJSONRPC:
		if c != '"' {
			return errVersion
		}
		raw, _, err := s.str()
		if err != nil {
			return err
		}
		if string(raw) != "2.0" {
			return errVersion
		}
	case keyMethod:
		if c != '"' {
			return errMethodType
		}
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		if m.Method, err = decodeString(raw, esc); err != nil {
			return err
		}
	case keyID:
		start := s.pos
		if err := s.id(c); err != nil {
			return err
		}
		m.ID = s.data[start:s.pos:s.pos]
	case keyParams:
		switch c {
		case '{':
			return s.params(m, nameType, uriType)
		case '[':
			return s.array(nil)
		case 'n':
			return s.literal("null")
		default:
			return errParamsType
		}
	default: // result, error
		return s.value()
	}
	return nil
}

// id consumes an id, whose first byte is c: a string, a number or null.
func (s *scanner) id(c byte) error {
	switch {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == 'n':
		return s.literal("null")
	case c == '-' || '0' <= c && c <= '9':
		return s.number()
	}
	return errIDType
}

// kindOf says what a message with the members seen is.
func kindOf(seen *[len(topKeys)]bool) (Kind, error) {
	switch {
	case !seen[keyJSONRPC]:
		return 0, errVersion
	case seen[keyMethod] && seen[keyID]:
		return Request, nil
	case seen[keyMethod]:
		return Notification, nil
	case seen[keyID] && (seen[keyResult] || seen[keyError]):
		return Response, nil
	}
	return 0, errNoKind
}

// params parses the params object of m. It sets *nameType and *uriType to
// the first byte of the name and uri members' values (non-zero when
// present), so that message can refuse one that is not a string where the
// method needs a string.
func (s *scanner) params(m *Message, nameType, uriType *byte) error {
	return s.object(func(key []byte, esc bool) error {
		i, err := member(key, esc, paramsKeys)
		if err != nil {
			return err
		}
		if i < 0 {
			return s.value()
		}
		typ := nameType
		if i == 1 {
			typ = uriType
		}
		if *typ != 0 {
			return errDuplicateKey[paramsKeys[i]]
		}
		c := s.peek()
		if *typ = c; c == 0 {
			*typ = 1
		}
		if c != '"' {
			return s.value()
		}
		raw, esc, err := s.str()
		if err != nil {
			return err
		}
		v, err := decodeString(raw, esc)
		if err != nil {
			return err
		}
		if i == 0 {
			m.Name, m.HasName = v, true
		} else {
			m.URI, m.HasURI = v, true
		}
		return nil
	})
}

// decodeString returns a string member's value; the methods of MCP are
// returned without allocating.
func decodeString(raw []byte, escaped bool) (string, error) {
	if escaped {
		v, ok := unescape(make([]byte, 0, len(raw)), raw)
		if !ok {
			return "", errBadString
		}
		return string(v), nil
	}
	switch string(raw) {
	case "tools/call":
		return "tools/call", nil
	case "tools/list":
		return "tools/list", nil
	case "initialize":
		return "initialize", nil
	case "notifications/initialized":
		return "notifications/initialized", nil
	case "ping":
		return "ping", nil
	case "resources/read":
		return "resources/read", nil
	case "resources/list":
		return "resources/list", nil
	case "prompts/get":
		return "prompts/get", nil
	case "prompts/list":
		return "prompts/list", nil
	case "server/discover":
		return "server/discover", nil
	case "notifications/cancelled":
		return "notifications/cancelled", nil
	}
	return string(raw), nil
}

// uniqueIDs refuses a batch in which two requests share an id: the
// gateway could not tell their answers apart.
func (b *Body) uniqueIDs() error {
	ms := b.Messages
	if len(ms) <= 16 {
		for i := range ms {
			for j := i + 1; j < len(ms); j++ {
				if ms[i].Kind == Request && ms[j].Kind == Request && SameID(ms[i].ID, ms[j].ID) {
					return errDuplicateID
				}
			}
		}
		return nil
	}
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if m.Kind != Request {
			continue
		}
		k := canonicalID(m.ID)
		if seen[k] {
			return errDuplicateID
		}
		seen[k] = true
	}
	return nil
}

// SameID reports whether two raw JSON-RPC ids name the same request: the
// same bytes, or strings that decode alike, or numbers of equal value (a
// backend may re-encode the id it echoes).
func SameID(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	return canonicalID(a) == canonicalID(b)
}

// canonicalID returns a form of a raw id in which equal ids are equal.
func canonicalID(id []byte) string {
	if len(id) == 0 {
		return ""
	}
	switch id[0] {
	case '"':
		if len(id) < 2 {
			return string(id)
		}
		if bytes.IndexByte(id, '\\') < 0 {
			return "s" + string(id[1:len(id)-1])
		}
		var s string
		if json.Unmarshal(id, &s) != nil {
			return string(id)
		}
		return "s" + s
	case 'n':
		return "null"
	default:
		if !bytes.ContainsAny(id, ".eE") {
			if string(id) == "-0" {
				return "0"
			}
			return string(id)
		}
		f, err := strconv.ParseFloat(string(id), 64)
		if err != nil {
			return string(id)
		}
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
}
