package policy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/audit"
	"github.com/mcpgate/mcpgate/internal/bytebudget"
	"github.com/mcpgate/mcpgate/internal/jsonrpc"
)

// runSSE passes a backend's event stream, in chunks, through the answer
// writer of a tools/list (id 1) and tools/call (id 2) request by bob.
func runSSE(chunks ...[]byte) (*httptest.ResponseRecorder, *exchange) {
	return runSSEWith(true, chunks...)
}

// runSSEWith is runSSE, without the tools/list when list is false.
func runSSEWith(list bool, chunks ...[]byte) (*httptest.ResponseRecorder, *exchange) {
	pol, _ := testPolicy().Compile(nil)
	h := &handler{policy: pol, audit: &events{}, log: slog.New(slog.DiscardHandler), held: bytebudget.Budget{Total: maxHeldTotal, PerUser: maxHeldPerUser}}
	x := &exchange{h: h, caller: bob}
	if list {
		x.lists = append(x.list1[:0], []byte("1"))
	}
	x.calls = append(x.call1[:0], call{id: []byte("2"), name: "fail"})
	rec := httptest.NewRecorder()
	rec.Header().Set("Content-Type", "text/event-stream")
	x.aw.init(rec, x)
	for _, c := range chunks {
		x.aw.Write(c)
	}
	x.aw.finish()
	return rec, x
}

func TestSSEFilter(t *testing.T) {
	in := "id: 7\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\r\ndata: \"result\":{\"tools\":[{\"name\":\"nuke\"},{\"name\":\"fail\"}]}}\r\n\r\n" +
		": keep-alive\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"isError\":true}}\n\n"
	for i := range len(in) + 1 {
		rec, x := runSSE([]byte(in[:i]), []byte(in[i:]))
		want := "id: 7\r\nevent: message\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\r\ndata: \"result\":{\"tools\":[{\"name\":\"fail\"}]}}\r\n\r\n" +
			": keep-alive\n\n" +
			"data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"isError\":true}}\n\n"
		if got := rec.Body.String(); got != want {
			t.Fatalf("split at %d:\n got %q\nwant %q", i, got, want)
		}
		if x.calls[0].outcome != audit.ToolError {
			t.Fatalf("split at %d: outcome %q, want %q", i, x.calls[0].outcome, audit.ToolError)
		}
	}
}

// A stream that starts with a byte order mark: clients ignore it and read
// the event, so it is filtered too.
func TestSSEFilterByteOrderMark(t *testing.T) {
	in := "\xEF\xBB\xBFdata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"},{\"name\":\"fail\"}]}}\n\n"
	want := "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"fail\"}]}}\n\n"
	if rec, _ := runSSE([]byte(in)); rec.Body.String() != want {
		t.Fatalf("got %q, want %q", rec.Body.String(), want)
	}
}

// A server message (a log notification, an elicitation request) before a
// tool's result, in one write or cut anywhere in two or three, with or
// without a tools/list to filter: the client gets every byte as written,
// and the call's outcome is read from the result. (The elicitation request
// has the call's id: a request is no answer.)
func TestSSEServerMessageThenResult(t *testing.T) {
	result := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}}\n\n"
	for name, first := range map[string]string{
		"log":         "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"working\"}}\n\n",
		"elicitation": "event: message\r\nid: 5\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"elicitation/create\",\"params\":{\"message\":\"name?\"}}\r\n\r\n",
	} {
		stream := first + result
		for _, list := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/list=%v", name, list), func(t *testing.T) {
				for i := 0; i <= len(stream); i++ {
					for j := i; j <= len(stream); j += 5 {
						rec, x := runSSEWith(list, []byte(stream[:i]), []byte(stream[i:j]), []byte(stream[j:]))
						if got := rec.Body.String(); got != stream {
							t.Fatalf("cuts at %d and %d: the client got %q, want %q", i, j, got, stream)
						}
						if got := x.calls[0].outcome; got != audit.OK {
							t.Fatalf("cuts at %d and %d: outcome %q, want %q", i, j, got, audit.OK)
						}
					}
				}
			})
		}
	}
}

// FuzzSSEFilter: however the stream is cut into writes, the client gets
// the same bytes, and no event it gets still lists a tool bob may not
// call, under any id.
func FuzzSSEFilter(f *testing.F) {
	f.Add([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"},{\"name\":\"fail\"}]}}\n\n"), uint16(17))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\r\n\r\ndata: x\r\rdata\n\n"), uint16(3))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"}]}}\rdata\n\n"), uint16(5))
	f.Add([]byte("data: [{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"}]}}]\n\ndata: {\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"}]}}\n\n"), uint16(40))
	f.Fuzz(func(t *testing.T, stream []byte, split uint16) {
		whole, _ := runSSE(stream)
		i := int(split) % (len(stream) + 1)
		parts, _ := runSSE(stream[:i], stream[i:])
		if !bytes.Equal(whole.Body.Bytes(), parts.Body.Bytes()) {
			t.Fatalf("output depends on the writes:\n%q\n%q", whole.Body.Bytes(), parts.Body.Bytes())
		}
		keep := func(n string) bool { return n != "nuke" && n != "delete_repo" }
		if in, out := len(clientData(string(stream))), len(clientData(whole.Body.String())); in != out {
			t.Fatalf("the client reads %d events from %q, want %d as from %q", out, whole.Body.Bytes(), in, stream)
		}
		for _, data := range clientData(whole.Body.String()) {
			out, err := jsonrpc.FilterToolsList([]byte(data), anyID, keep) // any id: SEC-122
			if err == nil && string(out) != data {
				t.Fatalf("an event still lists a denied tool: %q", data)
			}
		}
	})
}

// clientData returns the data of each event a client dispatches from
// stream, read as the specification (WHATWG HTML §9.2.6) says.
func clientData(stream string) []string {
	stream = strings.TrimPrefix(stream, "\ufeff")
	lines := strings.Split(strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(stream), "\n")
	var out, data []string
	for _, line := range lines[:len(lines)-1] { // a client drops an unterminated event
		if line == "" {
			if data != nil {
				out = append(out, strings.Join(data, "\n"))
			}
			data = nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		if field == "data" {
			data = append(data, strings.TrimPrefix(value, " "))
		}
	}
	return out
}

// discardWriter is a ResponseWriter that keeps nothing, for benchmarks.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) Flush()                      {}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, audit.Event) {}

// BenchmarkWrapToolsCall measures the middleware alone on a tools/call
// with audit and no policy: parse, TRANS-2 headers, body hand-off, answer
// sniffing. The backend writes a fixed answer.
func BenchmarkWrapToolsCall(b *testing.B) {
	body := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"search_issues","arguments":{"query":"is:open label:bug","limit":20},"_meta":{"progressToken":"p-42"}}}`)
	result := `{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"found 3 issues: #1 #2 #3"}],"isError":false}}`
	for _, c := range []struct {
		name, ct, answer string
		policy           *Policy
		text             bool // audit through slog's TextHandler, as mcpgate serve logs
	}{
		{"json", "application/json", result, nil, false},
		{"sse", "text/event-stream", "event: message\ndata: " + result + "\n\n", nil, false},
		{"json+policy", "application/json", result, testPolicy(), false},
		{"sse+policy", "text/event-stream", "event: message\ndata: " + result + "\n\n", testPolicy(), false},
		{"sse+textaudit", "text/event-stream", "event: message\ndata: " + result + "\n\n", nil, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			answer := []byte(c.answer)
			be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", c.ct)
				w.WriteHeader(200)
				w.Write(answer)
			})
			var rec audit.Recorder = nopRecorder{}
			if c.text {
				rec = audit.New(slog.New(slog.NewTextHandler(io.Discard, nil)))
			}
			h := Wrap(be, Options{Audit: rec, Policy: c.policy, Resource: "/mcp"})
			w := &discardWriter{h: http.Header{}}
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			req = req.WithContext(withCaller(req, alice))
			req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
			req.Header.Set("Mcp-Method", "tools/call")
			req.Header.Set("Mcp-Name", "search_issues")
			b.ReportAllocs()
			for b.Loop() {
				r := *req
				r.Body = io.NopCloser(bytes.NewReader(body))
				r.ContentLength = int64(len(body))
				clear(w.h)
				h.ServeHTTP(w, &r)
			}
		})
	}
}

func withCaller(r *http.Request, c *identity.Caller) context.Context {
	return identity.WithCaller(r.Context(), c)
}

// TestRequestsInTurn sends requests of different shapes in turn through
// one handler: no outcome, filter or body may carry over from one to the
// next.
func TestRequestsInTurn(t *testing.T) {
	ev := &events{}
	answers := map[string]struct{ ct, body string }{
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fail"}}]`: {"text/event-stream",
			"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"},{\"name\":\"fail\"}]}}\n\n" +
				"data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{\"isError\":true}}\n\n"},
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fail"}}`: {"application/json", `{"jsonrpc":"2.0","id":2,"error":{"code":1,"message":"x"}}`},
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fail"}}`: {"text/event-stream",
			"data: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{}}\n\n"},
	}
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a, ok := answers[string(body)]
		if !ok {
			t.Errorf("backend got %q, want one of the bodies sent", body)
		}
		w.Header().Set("Content-Type", a.ct)
		io.WriteString(w, a.body)
	})
	h := Wrap(be, Options{Audit: ev, Policy: testPolicy(), Resource: "/mcp"})
	order := []string{
		`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fail"}}]`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fail"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fail"}}`,
	}
	var want []audit.Outcome
	for i := 0; i < 3; i++ {
		for j, body := range order {
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
			req = req.WithContext(withCaller(req, bob))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if j == 0 && (strings.Contains(rec.Body.String(), "nuke") || !strings.Contains(rec.Body.String(), `"fail"`)) {
				t.Errorf("tools/list answer %q, want it filtered: fail, not nuke", rec.Body)
			}
			if got, _ := io.ReadAll(req.Body); len(got) != 0 {
				t.Errorf("request body not restored: %q left to read, want the original, read to its end", got)
			}
		}
		want = append(want, audit.ToolError, audit.Error, audit.OK)
	}
	var got []audit.Outcome
	for _, e := range ev.all() {
		got = append(got, e.Outcome)
	}
	if !slices.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}
