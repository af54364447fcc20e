package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// Fuzz targets for what the bridge reads from an upstream or a client:
// JSON-RPC messages, stdio lines and the SSE endpoint event (the SSE
// stream itself is internal/sse's).

// canonicalJSON is how encode writes a raw member: compacted, with HTML
// characters (and U+2028, U+2029) escaped.
func canonicalJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var c bytes.Buffer
	if err := json.Compact(&c, raw); err != nil {
		t.Fatalf("member %q is not JSON: %v", raw, err)
	}
	var e bytes.Buffer
	json.HTMLEscape(&e, c.Bytes())
	return e.String()
}

// isStringOrNumber reports whether raw is one JSON string or number.
func isStringOrNumber(raw json.RawMessage) bool {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return false
	}
	if _, err := d.Token(); err != io.EOF {
		return false // more than one value
	}
	switch v.(type) {
	case string, json.Number:
		return true
	}
	return false
}

// sameMembers fails unless a and b have the same members, apart from
// those in except, with the same JSON values.
func sameMembers(t *testing.T, what string, a, b map[string]json.RawMessage, except ...string) {
	t.Helper()
	for k, v := range a {
		if slices.Contains(except, k) {
			continue
		}
		w, ok := b[k]
		if !ok {
			t.Fatalf("%s: member %q lost", what, k)
		}
		if ca, cb := canonicalJSON(t, v), canonicalJSON(t, w); ca != cb {
			t.Fatalf("%s: member %q changed from %s to %s", what, k, ca, cb)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok && !slices.Contains(except, k) {
			t.Fatalf("%s: member %q appeared", what, k)
		}
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","_meta":{"progressToken":"p1","x":1}}}`,
		`{"jsonrpc":"2.0","id":"a<b>&","method":"ping"}`,
		`{"jsonrpc": "2.0" ,"id":-1.5e3,"method":"x","extra":[1,{"y":null}]}`,
		`{"jsonrpc":"2.0","id":null,"method":"x"}`,
		`{"jsonrpc":"2.0","id":{},"method":"x"}`,
		`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":7,"progress":1}}`,
		`{"jsonrpc":"2.0","id":7,"result":{}}`,
		`{"jsonrpc":"2.0","id":7,"result":null}`,
		`{"jsonrpc":"2.0","id":"7","error":{"code":-32000,"message":"m"}}`,
		`{"jsonrpc":"2.0","id":9223372036854775808,"result":1}`,
		`{"jsonrpc":"2.0","method":"","id":1}`,
		`{"jsonrpc":"2.0","method":5,"id":1}`,
		`{"jsonrpc":"1.0","id":1,"method":"x"}`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"x","params":{"_meta":{"progressToken":1},"_meta":{"progressToken":"2"}}}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":null}}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}`,
		`{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":{}}}}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\u2028\",\"\xfe\":\"\xfd\"}",
		`null`, `[]`, `{}`, `"2.0"`, ``, `{"jsonrpc":"2.0"}`,
	} {
		f.Add([]byte(s), "client-1", int64(42), false)
	}
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"x","params":{"_meta":{"progressToken":1}}}`), "</script>", int64(-7), true)
	f.Fuzz(func(t *testing.T, b []byte, sid string, nid int64, useString bool) {
		m, k, err := parseMessage(b)
		if (err == nil) != (k != 0) {
			t.Fatalf("kind %v with error %v", k, err)
		}
		// Where readClient (jsonrpc.Parse) accepts a client's message, it
		// reads it as parseMessage would: the same kind, method, id and
		// members.
		if msg, cm, cerr := readClient(b); cerr == nil {
			if err != nil || msg.Kind != k || msg.Method != m.method() || !bytes.Equal(msg.ID, m["id"]) {
				t.Fatalf("%q: readClient read %v %q id %q; parseMessage %v %q id %q (%v)", b, msg.Kind, msg.Method, msg.ID, k, m.method(), m["id"], err)
			}
			sameMembers(t, "readClient", cm, m)
		} else if _, ok := errors.AsType[*jsonrpc.Error](cerr); !ok {
			t.Fatalf("%q: readClient error %v is no *jsonrpc.Error", b, cerr)
		}
		if m == nil {
			if err == nil || json.Valid(b) && bytes.HasPrefix(bytes.TrimSpace(b), []byte("{")) {
				t.Fatalf("no message for %q, error %v", b, err)
			}
			return
		}
		enc := m.encode() // every member came from json.Unmarshal: never panics
		if !json.Valid(enc) {
			t.Fatalf("encode gave invalid JSON %q", enc)
		}
		if err != nil {
			return
		}
		if string(bytes.TrimSpace(m["jsonrpc"])) != `"2.0"` {
			t.Fatalf("jsonrpc %q accepted", m["jsonrpc"])
		}
		id, hasID := m["id"]
		method := m.method()
		switch k {
		case jsonrpc.Request:
			if method == "" || !hasID || !validID(id) || !isStringOrNumber(id) {
				t.Fatalf("request with method %q and id %q", method, id)
			}
		case jsonrpc.Notification:
			if method == "" || hasID {
				t.Fatalf("notification with method %q and id %q", method, id)
			}
		case jsonrpc.Response:
			if method != "" || !hasID || m["result"] == nil && m["error"] == nil {
				t.Fatalf("response with method %q, id %q, %d members", method, id, len(m))
			}
		default:
			t.Fatalf("kind %v", k)
		}
		if hasID {
			// A bridge id is only ever matched in its one canonical form:
			// two spellings never reach the same pending call.
			if n, ok := bridgeID(id); ok && (n <= 0 || strconv.FormatInt(n, 10) != idKey(id)) {
				t.Fatalf("bridge id %d from %q", n, id)
			}
		}

		// A rewritten id (what forward and receive do) changes that and
		// nothing else.
		var newID json.RawMessage
		if useString {
			newID, _ = json.Marshal(sid)
		} else {
			newID = json.RawMessage(strconv.FormatInt(nid, 10))
		}
		before := string(enc)
		m2 := m.with("id", newID)
		if string(m.encode()) != before {
			t.Fatalf("with changed the original: %s → %s", before, m.encode())
		}
		m3, k3, err := parseMessage(m2.encode())
		want := k
		if k == jsonrpc.Notification {
			want = jsonrpc.Request // it has an id now
		}
		if err != nil || k3 != want {
			t.Fatalf("re-encoded %s: kind %v, error %v; want kind %v", m2.encode(), k3, err, want)
		}
		if m3.method() != method {
			t.Fatalf("method %q became %q", method, m3.method())
		}
		if got, w := canonicalJSON(t, m3["id"]), canonicalJSON(t, newID); got != w {
			t.Fatalf("id %s became %s", w, got)
		}
		sameMembers(t, "with id", m, m3, "id")

		// The progress token: a valid id, and rewriting it changes only it.
		tok, ok := m.progressToken()
		if !ok {
			return
		}
		if !validID(tok) || !isStringOrNumber(tok) {
			t.Fatalf("progress token %q", tok)
		}
		m4 := m.withProgressToken(newID)
		if string(m.encode()) != before {
			t.Fatalf("withProgressToken changed the original: %s → %s", before, m.encode())
		}
		m5, k5, err := parseMessage(m4.encode())
		if err != nil || k5 != k {
			t.Fatalf("with a new token %s: kind %v, error %v; want kind %v", m4.encode(), k5, err, k)
		}
		tok2, ok := m5.progressToken()
		if !ok || canonicalJSON(t, tok2) != canonicalJSON(t, newID) {
			t.Fatalf("token %s became %s (%v), want %s", tok, tok2, ok, newID)
		}
		sameMembers(t, "with token", m, m5, "params")
		p, p5 := m.params(), m5.params()
		sameMembers(t, "with token: params", p, p5, "_meta")
		var meta, meta5 map[string]json.RawMessage
		if json.Unmarshal(p["_meta"], &meta) != nil || json.Unmarshal(p5["_meta"], &meta5) != nil {
			t.Fatalf("_meta %s → %s", p["_meta"], p5["_meta"])
		}
		sameMembers(t, "with token: _meta", meta, meta5, "progressToken")
	})
}

// chunkReader returns data in reads whose sizes the fuzz input chooses,
// some of them empty, the last one possibly with err; then err.
type chunkReader struct {
	data   []byte
	sizes  []byte
	i      int
	err    error
	zeroed bool // the previous read was empty
	scale  int  // sizes are multiplied by it
}

func newChunkReader(data, sizes []byte, err error) *chunkReader {
	// Byte-sized reads of a padded input would make each run slow.
	return &chunkReader{data: data, sizes: sizes, err: err, scale: 1 + len(data)>>12}
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := len(r.data)
	if len(r.sizes) > 0 {
		s := r.sizes[r.i%len(r.sizes)]
		r.i++
		if s == 0 && !r.zeroed {
			r.zeroed = true
			return 0, nil // allowed, if discouraged (io.Reader); never twice in a row
		}
		n = int(s)
		if s&0x80 != 0 {
			n = int(s&0x7f) << 10 // sometimes large reads
		}
		n *= r.scale
	}
	r.zeroed = false
	n = max(1, min(n, len(p), len(r.data)))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	if len(r.data) == 0 && r.i%2 == 1 {
		return n, r.err // data and the error together
	}
	return n, nil
}

// fuzzMax picks a limit: mostly small, to reach the limits, sometimes
// above bufio's 64 KiB buffer.
func fuzzMax(mx uint16) int {
	if mx >= 0xf000 {
		return 70000 + int(mx&0xff)
	}
	return int(mx % 512)
}

// fuzzPad inserts a long run of bytes into in, to reach bufio's buffer
// size, when padK asks for it.
func fuzzPad(in []byte, padK uint8, at uint16) []byte {
	if padK < 250 {
		return in
	}
	n := 64<<10 + int(padK-250)*1000 // just over bufio's buffer
	i := int(at) % (len(in) + 1)
	fill := byte('x')
	if i > 0 {
		fill = in[i-1]
		if fill == '\n' || fill == '\r' {
			fill = 'y'
		}
	}
	out := make([]byte, 0, len(in)+n)
	out = append(out, in[:i]...)
	out = append(out, bytes.Repeat([]byte{fill}, n)...)
	return append(out, in[i:]...)
}

// within fails the test when fn does not return in time: a loop that
// never ends.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

type testLine struct {
	line      string
	truncated bool
}

func (l testLine) String() string { return fmt.Sprintf("{%q %v}", l.line, l.truncated) }

// modelLines is scanLines' contract on the whole input: every line, the
// last one even without LF; a trailing CR dropped; a line whose content
// (a CR before the LF included) is over max bytes is cut to max bytes
// and marked; empty lines are skipped.
func modelLines(in []byte, max int) []testLine {
	var out []testLine
	for _, c := range bytes.Split(in, []byte("\n")) {
		trunc := len(c) > max
		if trunc {
			c = c[:max]
		}
		line := bytes.TrimSuffix(c, []byte("\r"))
		if len(line) > 0 || trunc {
			out = append(out, testLine{string(line), trunc})
		}
	}
	return out
}

func FuzzScanLines(f *testing.F) {
	for _, s := range []string{
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n",
		"a\r\nb\n\n\r\nc",
		"12345678\n123456789\n1234567\r\n12345678\r\n\r",
		"z\nafter\n",
		"no newline at all",
	} {
		f.Add([]byte(s), []byte{}, uint16(8), uint8(0), uint16(0))
		f.Add([]byte(s), []byte{2, 0, 0x83, 1}, uint16(0xf000), uint8(255), uint16(1))
	}
	f.Fuzz(func(t *testing.T, in, sizes []byte, mx uint16, padK uint8, padAt uint16) {
		in = fuzzPad(in, padK, padAt)
		max := fuzzMax(mx)
		scan := func(r io.Reader) ([]testLine, error) {
			var got []testLine
			var err error
			within(t, "scanLines", func() {
				err = scanLines(r, max, func(line []byte, truncated bool) {
					if len(line) > max {
						t.Errorf("a line of %d bytes, limit %d", len(line), max)
					}
					if len(line) == 0 && !truncated {
						t.Errorf("an empty line")
					}
					got = append(got, testLine{string(line), truncated})
				})
			})
			return got, err
		}
		want := modelLines(in, max)
		got, err := scan(bytes.NewReader(in))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("max %d, %q:\ngot  %v (%v)\nwant %v", max, in, got, err, want)
		}
		got, err = scan(newChunkReader(in, sizes, io.EOF))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("split %v, max %d, %q:\ngot  %v (%v)\nwant %v", sizes, max, in, got, err, want)
		}
	})
}

// dialRecorder is a Transport that dials nothing but records where it
// would have: the origin a request really goes to (after IDNA mapping,
// default ports, the Host parsing of net/http).
type dialed struct {
	tls  bool
	addr string
}

func (d dialed) Error() string { return fmt.Sprintf("dial tls=%v %s", d.tls, d.addr) }

var dialRecorder = &http.Transport{
	Proxy: nil,
	DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		return nil, dialed{false, addr}
	},
	DialTLSContext: func(_ context.Context, _, addr string) (net.Conn, error) {
		return nil, dialed{true, addr}
	},
	DisableKeepAlives: true,
}

// dialTarget is where a POST to rawURL would connect, or false when it
// would not connect at all.
func dialTarget(rawURL string) (dialed, bool) {
	req, err := http.NewRequest(http.MethodPost, rawURL, nil)
	if err != nil {
		return dialed{}, false
	}
	_, err = dialRecorder.RoundTrip(req)
	d, ok := errors.AsType[dialed](err)
	return d, ok
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

func FuzzResolveEndpoint(f *testing.F) {
	bases := []string{
		"http://mcp.example:8080/app/sse",
		"https://mcp.example/sse",
		"http://127.0.0.1/sse?token=x",
		"http://[::1]:9000/a/b/sse",
		"http://key.example/sse",
	}
	for _, s := range []string{
		"/app/messages?sessionId=1", "messages?s=2", "http://MCP.example:8080/m#frag", "//evil.example/m",
		"http://user@mcp.example:8080/m", "http://mcp.example:8080.evil.example/m", "", "  /m  ",
		"http://mcp.example:8080@evil.example:8080/", "https://mcp.example:443/m", "http://mcp.example:08080/m",
		"http://\u212aey.example/m", "http://key.example./m", "http://mcp%2eexample:8080/m", "http:/m", "http:m",
		"//[::1]:9000/x", "http://[::1%25lo]:9000/x", "\\\\evil.example\\m", "/\\evil.example/m", "..//..//x",
		"http://127.0.0.1:80/x", "http://0x7f.0.0.1/x", "HTTP://127.0.0.1/x",
	} {
		for i := range bases {
			f.Add(s, uint8(i))
		}
	}
	type base struct {
		u    *url.URL
		dial dialed
	}
	var bs []base
	for _, s := range bases {
		u, err := url.Parse(s)
		if err != nil {
			f.Fatal(err)
		}
		d, ok := dialTarget(u.String())
		if !ok {
			f.Fatalf("%s: no dial", s)
		}
		bs = append(bs, base{u, d})
	}
	f.Fuzz(func(t *testing.T, ref string, which uint8) {
		b := bs[int(which)%len(bs)]
		s := &sseConn{spec: &sseSpec{url: b.u}}
		u, err := s.resolve([]byte(ref))
		if err != nil {
			if u != nil {
				t.Fatalf("%q: both %v and %v", ref, u, err)
			}
			return
		}
		if u.Scheme != b.u.Scheme || !strings.EqualFold(u.Hostname(), b.u.Hostname()) || effectivePort(u) != effectivePort(b.u) {
			t.Fatalf("%q against %s: resolved to %s", ref, b.u, u)
		}
		if u.User != nil || u.Fragment != "" || u.RawFragment != "" {
			t.Fatalf("%q: resolved to %s with user info or fragment", ref, u)
		}
		// The security property: the POSTs (post sends to
		// u.String()) connect to the SSE URL's origin, or nowhere.
		// Host names compare without regard to ASCII case only (DNS):
		// not with Unicode folding, which would take K (Kelvin) for k.
		if d, ok := dialTarget(u.String()); ok && (d.tls != b.dial.tls || asciiLower(d.addr) != asciiLower(b.dial.addr)) {
			t.Fatalf("%q against %s: resolved to %s, which connects to %v, not %v", ref, b.u, u, d, b.dial)
		}
	})
}
