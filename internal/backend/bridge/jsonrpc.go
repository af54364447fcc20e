package bridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// message is one JSON-RPC 2.0 message as a map of raw members, so that the
// bridge can rewrite an id or a progress token and pass every other member,
// known or not, through unchanged. internal/jsonrpc reads messages without
// decoding them and never rewrites one: rewriting is where the two models
// part. The bridge reads a client's message through internal/jsonrpc
// (readClient) and keeps the map for what it rewrites.
type message map[string]json.RawMessage

// JSON-RPC error codes of the bridge's own; the standard ones are
// internal/jsonrpc's.
const (
	codeBusy      = -32000
	codeNoSession = -32001
	codeCancelled = -32800
)

// What readClient refuses beyond jsonrpc.Parse.
var (
	errBatch = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
		Message: "JSON-RPC batches are not supported: send one message per request"}
	errNullID = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
		Message: "invalid request: the id of a request must be a string or a number"}
	errNoMethod = &jsonrpc.Error{Code: jsonrpc.CodeInvalidRequest,
		Message: "invalid request: method must not be empty"}
)

// readClient reads a client's message as the policy in front of the bridge
// read it (jsonrpc.Parse, with its strict rules), so that both act on the
// same kind, method and id, and returns its members for the bridge to
// rewrite. It refuses a batch, and adds MCP's rules to JSON-RPC's: a
// request's id is not null, a method is not empty. The error is a
// *jsonrpc.Error; the id is returned with it when it is valid.
func readClient(body []byte) (jsonrpc.Message, message, error) {
	b, err := jsonrpc.Parse(body)
	if err != nil {
		return jsonrpc.Message{}, nil, err
	}
	msg := b.Messages[0]
	switch {
	case b.Batch:
		return jsonrpc.Message{}, nil, errBatch
	case msg.Kind == jsonrpc.Request && string(msg.ID) == "null":
		return jsonrpc.Message{}, nil, errNullID
	case msg.Kind != jsonrpc.Response && msg.Method == "":
		return msg, nil, errNoMethod
	}
	var m message
	if err := json.Unmarshal(body, &m); err != nil {
		// Parse accepts nothing that encoding/json refuses.
		return jsonrpc.Message{}, nil, &jsonrpc.Error{Code: jsonrpc.CodeParseError, Message: "parse error"}
	}
	return msg, m, nil
}

// parseMessage reads a message the server sent and says what it is (0 when
// it is none). It is lenient where jsonrpc.Parse is strict, as
// jsonrpc.ScanAnswers is: the server is not the adversary here, and an
// answer dropped for a duplicate member or a byte of invalid UTF-8 that
// the client would have read would leave its call waiting. A request's id
// must be a string or a number (MCP forbids null).
func parseMessage(b []byte) (message, jsonrpc.Kind, error) {
	var m message
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, 0, errors.New("not a JSON object")
	}
	if v, ok := m["jsonrpc"]; !ok || !bytes.Equal(bytes.TrimSpace(v), []byte(`"2.0"`)) {
		return m, 0, errors.New(`jsonrpc must be "2.0"`)
	}
	method := m.method()
	id, hasID := m["id"]
	switch {
	case method != "" && hasID:
		if !validID(id) {
			return m, 0, errors.New("id must be a string or a number")
		}
		return m, jsonrpc.Request, nil
	case method != "":
		return m, jsonrpc.Notification, nil
	case hasID && (m["result"] != nil || m["error"] != nil):
		return m, jsonrpc.Response, nil
	}
	if _, ok := m["method"]; ok {
		return m, 0, errors.New("method must be a non-empty string")
	}
	return m, 0, errors.New("neither a request, a notification nor a response")
}

func validID(id json.RawMessage) bool {
	id = bytes.TrimSpace(id)
	if len(id) == 0 {
		return false
	}
	switch id[0] {
	case '"':
		var s string
		return json.Unmarshal(id, &s) == nil
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		return json.Unmarshal(id, &n) == nil
	}
	return false
}

func (m message) method() string {
	var s string
	if v, ok := m["method"]; ok {
		json.Unmarshal(v, &s)
	}
	return s
}

// idKey is a comparable form of an id.
func idKey(id json.RawMessage) string { return string(bytes.TrimSpace(id)) }

// bridgeID parses an id the bridge gave a request (a positive integer).
func bridgeID(id json.RawMessage) (int64, bool) {
	n, err := strconv.ParseInt(string(bytes.TrimSpace(id)), 10, 64)
	return n, err == nil && n > 0
}

// with returns a shallow copy of m with member k set to v.
func (m message) with(k string, v json.RawMessage) message {
	out := make(message, len(m)+1)
	for kk, vv := range m {
		out[kk] = vv
	}
	out[k] = v
	return out
}

func (m message) encode() []byte {
	b, err := json.Marshal(m)
	if err != nil {
		// Every member came from json.Unmarshal or json.Marshal.
		panic("bridge: encoding a message: " + err.Error())
	}
	return b
}

// params returns the params object's members, or nil when params is
// absent or not an object.
func (m message) params() map[string]json.RawMessage {
	var p map[string]json.RawMessage
	if v, ok := m["params"]; ok {
		if json.Unmarshal(v, &p) != nil {
			return nil
		}
	}
	return p
}

// progressToken returns params._meta.progressToken, if any.
func (m message) progressToken() (json.RawMessage, bool) {
	p := m.params()
	var meta map[string]json.RawMessage
	if p == nil || json.Unmarshal(p["_meta"], &meta) != nil {
		return nil, false
	}
	t, ok := meta["progressToken"]
	return t, ok && validID(t)
}

// withProgressToken returns m with params._meta.progressToken set to t;
// m must have one (progressToken reported it).
func (m message) withProgressToken(t json.RawMessage) message {
	p := m.params()
	var meta map[string]json.RawMessage
	json.Unmarshal(p["_meta"], &meta)
	meta["progressToken"] = t
	p["_meta"], _ = json.Marshal(meta)
	b, _ := json.Marshal(p)
	return m.with("params", b)
}

// paramMember decodes params.name into v; false when absent or invalid.
func (m message) paramMember(name string, v any) bool {
	p := m.params()
	raw, ok := p[name]
	return ok && json.Unmarshal(raw, v) == nil
}
