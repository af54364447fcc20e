package jsonrpc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

var parseSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`,
	`{"jsonrpc":"2.0","id":"x","method":"resources/read","params":{"uri":"file:///a\u00e9"}}`,
	`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
	`{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`,
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`,
	`{"jsonrpc":"2.0","id":1e3,"method":"x","params":[1,-0.5e+2,true,false,null,"\ud83d\ude00"]}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
	`{"jsonrpc":"2.0","id":1,"method":"ping"} {}`,
}

// FuzzParse: Parse never panics, accepts only what json.Valid accepts,
// refuses as not JSON only what json.Valid refuses (or invalid UTF-8,
// which encoding/json lets through), and reads the same method, id, name
// and uri as encoding/json wherever it accepts: its stricter rules leave
// no body on which the two disagree.
func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := Parse(data)
		valid := json.Valid(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			switch e.Code {
			case CodeParseError:
				if valid && utf8.Valid(data) {
					t.Fatalf("parse error on valid JSON: %v", err)
				}
			case CodeInvalidRequest:
				if !valid {
					t.Fatalf("invalid request on invalid JSON: %v", err)
				}
			default:
				t.Fatalf("code %d", e.Code)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted invalid JSON")
		}
		type params struct {
			Name any `json:"name"`
			URI  any `json:"uri"`
		}
		type wire struct {
			Method string          `json:"method"`
			ID     json.RawMessage `json:"id"`
			Params json.RawMessage `json:"params"`
		}
		var ws []wire
		if b.Batch {
			if err := json.Unmarshal(data, &ws); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
		} else {
			ws = make([]wire, 1)
			if err := json.Unmarshal(data, &ws[0]); err != nil {
				t.Fatalf("encoding/json: %v", err)
			}
		}
		if len(ws) != len(b.Messages) {
			t.Fatalf("%d messages, encoding/json %d", len(b.Messages), len(ws))
		}
		for i, w := range ws {
			m := b.Messages[i]
			if m.Method != w.Method {
				t.Fatalf("method %q, encoding/json %q", m.Method, w.Method)
			}
			if len(w.ID) > 0 && string(w.ID) != "null" && string(m.ID) != string(w.ID) {
				t.Fatalf("id %s, encoding/json %s", m.ID, w.ID)
			}
			var p params
			if bytes.HasPrefix(bytes.TrimLeft(w.Params, " \t\r\n"), []byte("{")) {
				if err := json.Unmarshal(w.Params, &p); err != nil {
					t.Fatalf("encoding/json params: %v", err)
				}
			}
			if n, ok := p.Name.(string); ok != m.HasName || n != m.Name {
				t.Fatalf("name %q %v, encoding/json %#v", m.Name, m.HasName, p.Name)
			}
			if u, ok := p.URI.(string); ok != m.HasURI || u != m.URI {
				t.Fatalf("uri %q %v, encoding/json %#v", m.URI, m.HasURI, p.URI)
			}
		}
	})
}

// FuzzHeaderValue: the decoder never panics, leaves a value without the
// base64 wrapper as it is, and inverts the encoding clients use.
func FuzzHeaderValue(f *testing.F) {
	for _, s := range []string{"echo", "=?base64?aMOpbGxv?=", "=?base64?", "=?base64??=", " x ", "é", "=?base64?YQ=?="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := DecodeHeaderValue(s)
		if !strings.HasPrefix(s, b64Prefix) || !strings.HasSuffix(s[len(b64Prefix):], b64Suffix) {
			if !ok || got != s {
				t.Fatalf("plain %q decoded to %q, %v", s, got, ok)
			}
		} else if ok && !utf8.ValidString(got) {
			t.Fatalf("%q decoded to invalid UTF-8", s)
		}
		if utf8.ValidString(s) {
			enc := b64Prefix + base64.StdEncoding.EncodeToString([]byte(s)) + b64Suffix
			if got, ok := DecodeHeaderValue(enc); !ok || got != s {
				t.Fatalf("round trip of %q: %q, %v", s, got, ok)
			}
		}
	})
}

// FuzzFilterToolsList: filtering never panics and yields valid JSON that
// lists no refused tool.
func FuzzFilterToolsList(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"deny"},{"name":"b"}]}}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"deny"}]}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := FilterToolsList(data, func([]byte) bool { return true }, func(n string) bool { return n != "deny" })
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		var anyTools func(v any) bool
		anyTools = func(v any) bool {
			switch v := v.(type) {
			case []any:
				for _, e := range v {
					if anyTools(e) {
						return true
					}
				}
			case map[string]any:
				if r, ok := v["result"].(map[string]any); ok {
					if ts, ok := r["tools"].([]any); ok {
						for _, tl := range ts {
							if m, ok := tl.(map[string]any); ok && m["name"] == "deny" {
								return true
							}
						}
					}
				}
			}
			return false
		}
		var v any
		if json.Unmarshal(out, &v) == nil && anyTools(v) {
			t.Fatalf("denied tool left in %s", out)
		}
	})
}
