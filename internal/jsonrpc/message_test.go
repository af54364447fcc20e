package jsonrpc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseSingle(t *testing.T) {
	b, err := Parse([]byte(` {"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"name":"x","uri":1,"text":"hi"}}} `))
	if err != nil {
		t.Fatal(err)
	}
	if b.Batch || len(b.Messages) != 1 {
		t.Fatalf("%+v, want one message, not a batch", b)
	}
	m := b.Messages[0]
	if m.Kind != Request || m.Method != "tools/call" || string(m.ID) != "7" || m.Name != "echo" || !m.HasName || m.HasURI {
		t.Fatalf("%+v, want the request tools/call, id 7, name echo, no uri", m)
	}
}

func TestParseKinds(t *testing.T) {
	for body, want := range map[string]Kind{
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`:                          Notification,
		`{"jsonrpc":"2.0","id":"a","method":"ping","params":null}`:                        Request,
		`{"jsonrpc":"2.0","id":1,"result":{}}`:                                            Response,
		`{"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"x"}}`:                    Response,
		`{"id":1,"method":"resources/read","jsonrpc":"2.0","params":{"uri":"file:///a"}}`: Request,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":[1,2]}`:                            Request,
	} {
		b, err := Parse([]byte(body))
		if err != nil {
			t.Errorf("%s: %v", body, err)
			continue
		}
		if b.Messages[0].Kind != want {
			t.Errorf("%s: kind %v, want %v", body, b.Messages[0].Kind, want)
		}
	}
}

func TestParseBatch(t *testing.T) {
	b, err := Parse([]byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":"1","method":"tools/call","params":{"name":"a\u00e9"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	if !b.Batch || len(b.Messages) != 3 || b.Messages[2].Name != "aé" || string(b.Messages[2].ID) != `"1"` {
		t.Fatalf("%+v, want a batch of three, the third with name aé and id \"1\"", b)
	}
}

// TRANS-2: a body that two parsers could read differently is refused.
func TestParseRefuses(t *testing.T) {
	for _, c := range []struct {
		body string
		code int
	}{
		{``, CodeParseError},
		{`{"jsonrpc":"2.0","id":1,"method":"ping"} x`, CodeParseError},
		{`{"jsonrpc":"2.0","id":1,"method":"ping"`, CodeParseError},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"p\xffing\"}", CodeParseError},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"\xc0\xaf\"}", CodeParseError},
		{`{"jsonrpc":"2.0","id":01,"method":"ping"}`, CodeParseError},
		{`{"jsonrpc":"2.0","id":1,"method":"ping",}`, CodeParseError},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","meth\u006fd":"tools/call"}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"paramſ":{"name":"b"}}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":{}}}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a\ud800"}}`, CodeInvalidRequest},
		{`{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest},
		{`{"id":1,"method":"ping"}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1,"method":7}`, CodeInvalidRequest},
		{`{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest},
		{`[]`, CodeInvalidRequest},
		{`[1]`, CodeInvalidRequest},
		{`"x"`, CodeInvalidRequest},
		{`[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","id":1.0,"method":"b"}]`, CodeInvalidRequest},
		// A semantic error early, a syntax error later: not JSON.
		{`{"jsonrpc":"2.0","method":"a","method":"b",`, CodeParseError},
		{strings.Repeat("[", 10001) + strings.Repeat("]", 10001), CodeParseError},
	} {
		_, err := Parse([]byte(c.body))
		var e *Error
		if !errors.As(err, &e) || e.Code != c.code {
			t.Errorf("%.60s: err %v, want code %d", c.body, err, c.code)
		}
	}
}

func TestSameID(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{`1`, `1`, true}, {`1`, `1.0`, true}, {`1e0`, `1`, true}, {`"a"`, `"\u0061"`, true},
		{`1`, `"1"`, false}, {`1`, `2`, false}, {`null`, `null`, true}, {`9007199254740993`, `9007199254740992`, false},
	} {
		if got := SameID([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("SameID(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestScanAnswers(t *testing.T) {
	var got []Answer
	err := ScanAnswers([]byte(`[{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}},{"jsonrpc":"2.0","id":2,"error":{"code":-1,"message":"x"}},{"jsonrpc":"2.0","method":"notifications/progress"},{"jsonrpc":"2.0","id":3,"result":{"isError":false}}]`), func(a Answer) { got = append(got, a) })
	if err != nil || len(got) != 4 {
		t.Fatalf("%v %+v, want four answers", err, got)
	}
	if !got[0].IsError || !got[1].Error || got[2].Kind != Notification || got[3].IsError || !got[3].Result {
		t.Fatalf("%+v, want: a tool error, an error, a notification, a result", got)
	}
	got = nil
	err = ScanAnswers([]byte(`{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"aaaa`), func(a Answer) { got = append(got, a) })
	if err == nil || len(got) != 1 || !got[0].Truncated || !got[0].Result || string(got[0].ID) != "4" {
		t.Fatalf("truncated: %v %+v, want the syntax error and one truncated result for id 4", err, got)
	}
}

func TestFilterToolsList(t *testing.T) {
	isList := func(id []byte) bool { return SameID(id, []byte("5")) }
	keep := func(name string) bool { return !strings.HasPrefix(name, "delete") }
	for _, c := range []struct{ in, want string }{
		{`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"a"},{"name":"delete_x"},{"name":"b","x":[1]}],"nextCursor":"c"}}`,
			`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"a"},{"name":"b","x":[1]}],"nextCursor":"c"}}`},
		{`{"jsonrpc":"2.0","id":5,"result":{"tools":[ {"name":"delete"} , {"name":"delete2"} ]}}`,
			`{"jsonrpc":"2.0","id":5,"result":{"tools":[]}}`},
		{`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"a"}, {"name":"b"}]}}`,
			`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"a"}, {"name":"b"}]}}`},
		// Not the tools/list answer: unchanged.
		{`{"jsonrpc":"2.0","id":6,"result":{"tools":[{"name":"delete"}]}}`,
			`{"jsonrpc":"2.0","id":6,"result":{"tools":[{"name":"delete"}]}}`},
		// A tool whose name cannot be read with confidence is dropped.
		{`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"a","Name":"delete"},{"title":"x"},{"name":"a","name":"b"},{"name":"ok"}]}}`,
			`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"ok"}]}}`},
		{`[{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"delete"},{"name":"c"}]}},{"jsonrpc":"2.0","id":6,"result":{}}]`,
			`[{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"c"}]}},{"jsonrpc":"2.0","id":6,"result":{}}]`},
	} {
		out, err := FilterToolsList([]byte(c.in), isList, keep)
		if err != nil || string(out) != c.want {
			t.Errorf("%s:\n got %s %v\nwant %s", c.in, out, err, c.want)
		}
		if err == nil && !json.Valid(out) {
			t.Errorf("%s: output %s is not JSON", c.in, out)
		}
	}
	for _, in := range []string{
		`{"jsonrpc":"2.0","id":5,"result":{"tools":[],"Tools":[{"name":"delete"}]}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"tools":[],"tools":[{"name":"delete"}]}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"tools":[]},"Result":{"tools":[{"name":"delete"}]}}`,
		`{"jsonrpc":"2.0","id":5,"result":{"tools":[{"name":"delete"}]`,
	} {
		if _, err := FilterToolsList([]byte(in), isList, keep); !errors.Is(err, ErrToolsUnsafe) {
			t.Errorf("%s: err %v, want ErrToolsUnsafe", in, err)
		}
	}
}

func TestDecodeHeaderValue(t *testing.T) {
	for in, want := range map[string]string{
		"echo":                    "echo",
		"=?base64?IGjDqWxsbyA=?=": " héllo ",
		"=?base64?":               "=?base64?",
		"=?base64?PT9iYXNlNjQ/?=": "=?base64?",
		"=?BASE64?YQ==?=":         "=?BASE64?YQ==?=",
	} {
		got, ok := DecodeHeaderValue(in)
		if !ok || got != want {
			t.Errorf("DecodeHeaderValue(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"=?base64?YQ=?=", "=?base64?!!!!?=", "=?base64?/w==?="} {
		if v, ok := DecodeHeaderValue(in); ok {
			t.Errorf("DecodeHeaderValue(%q) = %q, true; want false", in, v)
		}
	}
}

// TRANS-2: Mcp-Method and Mcp-Name must match the body.
func TestCheckHeaders(t *testing.T) {
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo"}}`
	read := `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}`
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	resp := `{"jsonrpc":"2.0","id":1,"result":{}}`
	const v = "2026-07-28"
	for _, c := range []struct {
		body    string
		headers []string // name, value pairs
		wantMsg string   // "" = pass
	}{
		{call, nil, ""},
		{call, []string{"Mcp-Protocol-Version", "2025-11-25"}, ""},
		{call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "héllo"}, ""},
		{call, []string{"Mcp-Method", "tools/call", "Mcp-Name", "=?base64?aMOpbGxv?="}, ""},
		{call, []string{"Mcp-Protocol-Version", v, "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?aMOpbGxv?="}, ""},
		{call, []string{"Mcp-Method", "tools/list"}, "Mcp-Method does not match method"},
		{call, []string{"Mcp-Name", "other"}, "Mcp-Name does not match params.name"},
		{call, []string{"Mcp-Name", "=?base64?!!?="}, "Mcp-Name does not match params.name"},
		{call, []string{"Mcp-Name", "héllo", "Mcp-Name", "other"}, "more than one Mcp-Name header"},
		{call, []string{"Mcp-Protocol-Version", v}, "missing Mcp-Method header"},
		{call, []string{"Mcp-Protocol-Version", "2027-01-01", "Mcp-Method", "tools/call"}, "missing Mcp-Name header"},
		{read, []string{"Mcp-Protocol-Version", v, "Mcp-Method", "resources/read", "Mcp-Name", "file:///x"}, ""},
		{read, []string{"Mcp-Name", "file:///y"}, "Mcp-Name does not match params.uri"},
		{list, []string{"Mcp-Protocol-Version", v, "Mcp-Method", "tools/list"}, ""},
		{list, []string{"Mcp-Method", "tools/list", "Mcp-Name", "x"}, "Mcp-Name does not match params.name"},
		{resp, []string{"Mcp-Protocol-Version", v}, ""},
		{`[` + list + `,` + strings.Replace(call, `"id":1`, `"id":2`, 1) + `]`, []string{"Mcp-Method", "tools/list"}, "Mcp-Method does not match method"},
	} {
		b, err := Parse([]byte(c.body))
		if err != nil {
			t.Errorf("Parse(%s): %v", c.body, err)
			continue
		}
		h := http.Header{}
		for i := 0; i < len(c.headers); i += 2 {
			h.Add(c.headers[i], c.headers[i+1])
		}
		err = CheckHeaders(h, b)
		switch {
		case c.wantMsg == "" && err != nil:
			t.Errorf("%s %v: %v, want nil", c.body, c.headers, err)
		case c.wantMsg != "":
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeHeaderMismatch || e.Message != "HeaderMismatch: "+c.wantMsg {
				t.Errorf("%s %v: err %v, want %q", c.body, c.headers, err, c.wantMsg)
			}
		}
	}
}
