package policy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/audit"
)

type events struct {
	mu sync.Mutex
	ev []audit.Event
}

func (e *events) Record(_ context.Context, ev audit.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ev = append(e.ev, ev)
}

func (e *events) all() []audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.ev)
}

// mcpBackend is a go-sdk server with the tools of testPolicy; ran counts
// the calls that reached each tool.
func mcpBackend(jsonResponse bool, ran *sync.Map) http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "backend", Version: "1"}, nil)
	type args struct {
		Text string `json:"text,omitempty"`
	}
	tool := func(name string, result func(args) *mcp.CallToolResult) {
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: "the " + name + " tool"}, func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
			n, _ := ran.LoadOrStore(name, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			return result(in), nil, nil
		})
	}
	text := func(s string) *mcp.CallToolResult {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
	}
	tool("echo", func(in args) *mcp.CallToolResult { return text(in.Text) })
	tool("fail", func(args) *mcp.CallToolResult { r := text("it failed"); r.IsError = true; return r })
	tool("delete_repo", func(args) *mcp.CallToolResult { return text("deleted") })
	tool("nuke", func(args) *mcp.CallToolResult { return text("boom") })
	tool("whoami", func(args) *mcp.CallToolResult { return text("you") })
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
}

// front serves backend behind Wrap, as caller (what the guard would set).
func front(t *testing.T, backend http.Handler, opts Options, caller *identity.Caller) *httptest.Server {
	t.Helper()
	h := Wrap(backend, opts)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(identity.WithCaller(r.Context(), caller)))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func connect(t *testing.T, url, version string) *mcp.ClientSession {
	t.Helper()
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: url, DisableStandaloneSSE: true, MaxRetries: -1}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func modes(t *testing.T, fn func(t *testing.T, jsonResponse bool, version string)) {
	for _, m := range []struct {
		name    string
		json    bool
		version string
	}{{"json/2026-07-28", true, "2026-07-28"}, {"sse/2026-07-28", false, "2026-07-28"}, {"json/2025-06-18", true, "2025-06-18"}, {"sse/2025-06-18", false, "2025-06-18"}} {
		t.Run(m.name, func(t *testing.T) { fn(t, m.json, m.version) })
	}
}

func TestToolsListFiltered(t *testing.T) {
	modes(t, func(t *testing.T, jsonResponse bool, version string) {
		for _, c := range []struct {
			who  *identity.Caller
			want []string
		}{
			{alice, []string{"delete_repo", "echo", "fail", "whoami"}}, // user rule and group rule
			{bob, []string{"fail"}}, // scope deny, group without rule
			{carol, []string{"echo", "fail"}},
		} {
			t.Run(c.who.User.ID, func(t *testing.T) {
				var ran sync.Map
				srv := front(t, mcpBackend(jsonResponse, &ran), Options{Policy: testPolicy()}, c.who)
				res, err := connect(t, srv.URL, version).ListTools(t.Context(), nil)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, tl := range res.Tools {
					got = append(got, tl.Name)
				}
				slices.Sort(got)
				if !slices.Equal(got, c.want) {
					t.Errorf("%s sees %v, want %v", c.who.User.ID, got, c.want)
				}
			})
		}
	})
}

func TestNoPolicyListsEverything(t *testing.T) {
	var ran sync.Map
	srv := front(t, mcpBackend(true, &ran), Options{}, bob)
	res, err := connect(t, srv.URL, "").ListTools(t.Context(), nil)
	if err != nil || len(res.Tools) != 5 {
		t.Fatalf("ListTools = %v, %v; want the 5 tools", res, err)
	}
}

func TestCallsAndAudit(t *testing.T) {
	modes(t, func(t *testing.T, jsonResponse bool, version string) {
		var ran sync.Map
		rec := &events{}
		srv := front(t, mcpBackend(jsonResponse, &ran), Options{Policy: testPolicy(), Audit: rec, Resource: "/mcp"}, bob)
		cs := connect(t, srv.URL, version)

		// Allowed, ok.
		res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "fail"})
		if err != nil || !res.IsError {
			t.Fatalf("fail = %v, %v; want a result with isError", res, err)
		}
		// Denied: the gateway answers, the tool never runs.
		_, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "delete_repo"})
		if err == nil || !strings.Contains(err.Error(), "tool not allowed: delete_repo") {
			t.Fatalf("delete_repo: error %v, want \"tool not allowed: delete_repo\"", err)
		}
		if _, ok := ran.Load("delete_repo"); ok {
			t.Fatal("the denied tool ran")
		}
		// Allowed by the policy, unknown to the backend: a JSON-RPC error.
		if _, err = cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "missing"}); err == nil {
			t.Fatal("missing: no error, want the backend's JSON-RPC error")
		}
		want := []audit.Event{
			{User: "local:bob", Client: "c-bob", Resource: "/mcp", Tool: "fail", Outcome: audit.ToolError},
			{User: "local:bob", Client: "c-bob", Resource: "/mcp", Tool: "delete_repo", Outcome: audit.Denied},
			{User: "local:bob", Client: "c-bob", Resource: "/mcp", Tool: "missing", Outcome: audit.Error},
		}
		checkEvents(t, rec, want)
	})
}

// checkEvents compares events in any order: an event is recorded when the
// backend's handler returns, which may be after the client has its answer.
func checkEvents(t *testing.T, rec *events, want []audit.Event) {
	t.Helper()
	var got []audit.Event
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if got = rec.all(); len(got) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	byTool := func(a, b audit.Event) int { return strings.Compare(a.Tool+string(a.Outcome), b.Tool+string(b.Outcome)) }
	slices.SortFunc(got, byTool)
	want = slices.Clone(want)
	slices.SortFunc(want, byTool)
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range got {
		g := got[i]
		if g.Duration <= 0 {
			t.Errorf("event %d: duration %v, want it positive", i, g.Duration)
		}
		g.Duration = 0
		if g != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, g, want[i])
		}
	}
}

func TestAuditOK(t *testing.T) {
	var ran sync.Map
	rec := &events{}
	srv := front(t, mcpBackend(false, &ran), Options{Audit: rec, Resource: "/mcp"}, alice)
	res, err := connect(t, srv.URL, "").CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.IsError || res.Content[0].(*mcp.TextContent).Text != "hi" {
		t.Fatalf("echo = %v, %v; want the text \"hi\"", res, err)
	}
	checkEvents(t, rec, []audit.Event{{User: "local:alice", Client: "c-alice", Resource: "/mcp", Tool: "echo", Outcome: audit.OK}})
}

// post sends a raw JSON-RPC body with headers (name, value pairs).
func post(t *testing.T, url, body string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for i := 0; i < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

type rpcError struct {
	ID    json.RawMessage `json:"id"`
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeError(t *testing.T, b []byte) rpcError {
	t.Helper()
	var e rpcError
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v, want a JSON-RPC error", b, err)
	}
	return e
}

// stub answers every POST with a JSON-RPC result for id 1 and counts them;
// it checks the body it gets is the *BufferedBody.
type stub struct {
	hits atomic.Int32
	t    *testing.T
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	bb, ok := r.Body.(interface{ Bytes() []byte })
	if !ok || r.ContentLength != int64(len(bb.Bytes())) || r.GetBody == nil {
		s.t.Errorf("body %T, length %d; want a *BufferedBody, its length and GetBody", r.Body, r.ContentLength)
		return
	}
	read, _ := io.ReadAll(r.Body)
	again, _ := r.GetBody()
	read2, _ := io.ReadAll(again)
	if !bytes.Equal(read, bb.Bytes()) || !bytes.Equal(read2, read) {
		s.t.Errorf("the body read %q, through GetBody %q; want both %q", read, read2, bb.Bytes())
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
}

// TRANS-2: Mcp-Method and Mcp-Name must match the body; from 2026-07-28
// they are required.
func TestHeaderMismatch(t *testing.T) {
	be := &stub{t: t}
	srv := front(t, be, Options{}, alice)
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo wörld"}}`
	for _, c := range []struct {
		name    string
		headers []string
		wantMsg string // "" = forwarded
	}{
		{"absent, old version", []string{"Mcp-Protocol-Version", "2025-11-25"}, ""},
		{"absent, no version", nil, ""},
		{"matching", []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call", "Mcp-Name", "=?base64?aMOpbGxvIHfDtnJsZA==?="}, ""},
		{"method mismatch", []string{"Mcp-Method", "tools/list"}, "HeaderMismatch: Mcp-Method does not match method"},
		{"name mismatch", []string{"Mcp-Method", "tools/call", "Mcp-Name", "echo"}, "HeaderMismatch: Mcp-Name does not match params.name"},
		{"bad base64", []string{"Mcp-Name", "=?base64?***?="}, "HeaderMismatch: Mcp-Name does not match params.name"},
		{"missing method", []string{"Mcp-Protocol-Version", "2026-07-28"}, "HeaderMismatch: missing Mcp-Method header"},
		{"missing name", []string{"Mcp-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/call"}, "HeaderMismatch: missing Mcp-Name header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := be.hits.Load()
			resp, body := post(t, srv.URL, call, c.headers...)
			forwarded := be.hits.Load() > before
			if c.wantMsg == "" {
				if resp.StatusCode != 200 || !forwarded {
					t.Errorf("status %d, forwarded %v: %s; want 200, forwarded", resp.StatusCode, forwarded, body)
				}
				return
			}
			e := decodeError(t, body)
			if resp.StatusCode != 400 || forwarded || e.Error.Code != -32020 || e.Error.Message != c.wantMsg || string(e.ID) != "1" {
				t.Errorf("status %d, forwarded %v: %s; want 400, not forwarded, id 1, -32020 %q", resp.StatusCode, forwarded, body, c.wantMsg)
			}
		})
	}
}

// TRANS-2: a body that another parser could read as a different call is
// refused before the backend sees it.
func TestAmbiguousBodyRefused(t *testing.T) {
	be := &stub{t: t}
	srv := front(t, be, Options{Policy: testPolicy()}, bob)
	for _, c := range []struct {
		name, body string
		code       int
	}{
		{"duplicate name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail","name":"delete_repo"}}`, -32600},
		{"case variant of name", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail","NAME":"delete_repo"}}`, -32600},
		{"case variant of method", `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, -32600},
		{"trailing data", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail"}} trailing`, -32700},
		{"invalid UTF-8", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"f\xffil\"}}", -32700},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, b := post(t, srv.URL, c.body)
			if e := decodeError(t, b); resp.StatusCode != 400 || e.Error.Code != c.code || string(e.ID) != "null" {
				t.Errorf("%d %s; want 400, id null, code %d", resp.StatusCode, b, c.code)
			}
		})
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("%d ambiguous bodies reached the backend, want none", n)
	}
}

func TestBatchWithDeniedCallRefused(t *testing.T) {
	be := &stub{t: t}
	rec := &events{}
	srv := front(t, be, Options{Policy: testPolicy(), Audit: rec}, bob)
	resp, b := post(t, srv.URL, `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail"}},{"jsonrpc":"2.0","method":"notifications/x"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nuke"}}]`)
	var out []rpcError
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != 200 || len(out) != 2 {
		t.Fatalf("%d %s %v; want 200 and two errors", resp.StatusCode, b, err)
	}
	if out[0].Error.Code != -32600 || string(out[1].ID) != "2" || out[1].Error.Code != -32602 || out[1].Error.Message != "tool not allowed: nuke" {
		t.Errorf("%s; want -32600 for id 1, -32602 \"tool not allowed: nuke\" for id 2", b)
	}
	if be.hits.Load() != 0 {
		t.Error("forwarded, want the whole batch refused")
	}
	if ev := rec.all(); len(ev) != 2 || ev[0].Outcome != audit.Denied || ev[1].Outcome != audit.Denied {
		t.Errorf("events %+v, want two denied", ev)
	}
}

func TestBodyTooLarge(t *testing.T) {
	be := &stub{t: t}
	srv := front(t, be, Options{MaxBodyBytes: 64}, alice)
	resp, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"`+strings.Repeat("x", 100)+`"}}`)
	if resp.StatusCode != 413 || decodeError(t, b).Error.Code != -32600 || be.hits.Load() != 0 {
		t.Errorf("%d %s, %d forwarded; want 413, -32600, none forwarded", resp.StatusCode, b, be.hits.Load())
	}
}

func TestBackendDownIsFailed(t *testing.T) {
	rec := &events{}
	down := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"upstream MCP server unavailable"}}`)
	})
	srv := front(t, down, Options{Audit: rec, Resource: "/mcp"}, alice)
	resp, _ := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	silent := front(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), Options{Audit: rec, Resource: "/mcp"}, alice)
	post(t, silent.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`)
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	checkEvents(t, rec, []audit.Event{
		{User: "local:alice", Client: "c-alice", Resource: "/mcp", Tool: "echo", Outcome: audit.Failed},
		{User: "local:alice", Client: "c-alice", Resource: "/mcp", Tool: "echo", Outcome: audit.Failed},
	})
}

// The audit log holds neither the token nor the arguments nor the result.
func TestAuditHoldsNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	log := audit.New(slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, nil)))
	var ran sync.Map
	srv := front(t, mcpBackend(true, &ran), Options{Audit: log, Resource: "/mcp", Policy: testPolicy()}, alice)
	c := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	hc := &http.Client{Transport: bearer{"SECRET-TOKEN-abc123"}}
	cs, err := c.Connect(t.Context(), &mcp.StreamableClientTransport{Endpoint: srv.URL, HTTPClient: hc, DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "ARG-VALUE-xyz"}}); err != nil {
		t.Fatal(err)
	}
	cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "nuke", Arguments: map[string]any{"text": "ARG-VALUE-xyz"}})
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if !strings.Contains(out, `"tool":"echo"`) || !strings.Contains(out, `"outcome":"denied"`) {
		t.Fatalf("audit output %s, want an echo event and a denied one", out)
	}
	for _, secret := range []string{"SECRET-TOKEN", "ARG-VALUE"} {
		if strings.Contains(out, secret) {
			t.Errorf("audit output holds %s: %s", secret, out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type bearer struct{ tok string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.tok)
	return http.DefaultTransport.RoundTrip(r)
}

// An event stream is never held back: the first event of a streamed
// answer reaches the client while the backend is still working, even when
// the gateway waits for a tools/list answer in that stream.
func TestSSENotHeldBack(t *testing.T) {
	for _, c := range []struct {
		name, method string
		opts         Options
	}{
		{"tools/list filtered", "tools/list", Options{Policy: testPolicy()}},
		{"tools/call audited", "tools/call", Options{Audit: &events{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			release := make(chan struct{})
			be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n")
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"nuke\"},{\"name\":\"fail\"}]}}\n\n")
			})
			srv := front(t, be, c.opts, bob)
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+c.method+`","params":{"name":"fail"}}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			got := make(chan string, 1)
			go func() {
				line, _ := br.ReadString('\n')
				line2, _ := br.ReadString('\n')
				got <- line + line2
			}()
			select {
			case l := <-got:
				if !strings.Contains(l, "notifications/progress") {
					t.Fatalf("first event %q, want the progress notification", l)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the first event was held back")
			}
			close(release)
			rest, _ := io.ReadAll(br)
			if c.method == "tools/list" && (strings.Contains(string(rest), "nuke") || !strings.Contains(string(rest), `"fail"`)) {
				t.Errorf("rest %q, want the list filtered: fail, not nuke", rest)
			}
		})
	}
}

// An answer that cannot be filtered never reaches the client if it may
// hold tools.
func TestUnfilterableListRefused(t *testing.T) {
	for _, c := range []struct {
		name, body string
		refused    bool
	}{
		{"cut short", `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"nuke"}]`, true},
		{"case variant of tools", `{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"nuke"}],"Tools":[]}}`, true},
		{"not JSON, no tools", `not json at all`, false},
		{"an error", `{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal"}}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", "999")
				io.WriteString(w, c.body)
			})
			srv := front(t, be, Options{Policy: testPolicy()}, bob)
			resp, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
			if c.refused {
				if resp.StatusCode != 502 || strings.Contains(string(b), "nuke") || string(decodeError(t, b).ID) != "1" {
					t.Errorf("%d %s; want 502 and a JSON-RPC error for id 1", resp.StatusCode, b)
				}
			} else if string(b) != c.body {
				t.Errorf("the answer became %s, want it unchanged", b)
			}
		})
	}
}

// GET (the standalone stream) and DELETE pass untouched, with Flush.
func TestNonPOSTPasses(t *testing.T) {
	be := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := w.(http.Flusher); !ok {
			t.Error("the backend's writer is no http.Flusher")
		}
		w.WriteHeader(http.StatusTeapot)
	})
	srv := front(t, be, Options{Policy: testPolicy()}, bob)
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequest(m, srv.URL, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", m, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTeapot {
			t.Errorf("%s: status %d, want the backend's %d", m, resp.StatusCode, http.StatusTeapot)
		}
	}
}

// A request whose calls Limit refuses is answered whole by the gateway:
// every call of a batch gets the rate limited error with its id, the
// other requests -32600, nothing is forwarded, each call is audited
// rate_limited, and Limit was asked once with every call (SEC-101).
func TestBatchRateLimitedRefusedWhole(t *testing.T) {
	be := &stub{t: t}
	rec := &events{}
	var asked []string
	limit := func(user, client string, tools []string) (string, time.Duration) {
		asked = append(asked, user+" "+client+" "+strings.Join(tools, ","))
		if slices.Contains(tools, "slow") {
			return "slow", 2500 * time.Millisecond
		}
		return "", 0
	}
	srv := front(t, be, Options{Policy: testPolicy(), Audit: rec, Limit: limit}, bob)
	resp, b := post(t, srv.URL, `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fail"}},{"jsonrpc":"2.0","id":"l","method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}}]`)
	var out []rpcError
	if err := json.Unmarshal(b, &out); err != nil || resp.StatusCode != 200 || len(out) != 3 || resp.Header.Get("Retry-After") != "3" {
		t.Fatalf("%d Retry-After %q %s %v; want 200, Retry-After 3 and three errors", resp.StatusCode, resp.Header.Get("Retry-After"), b, err)
	}
	const msg, other = "rate limited: slow; try again in 3 s", "rate limited: the batch calls a tool that is; try again in 3 s"
	if string(out[0].ID) != "1" || out[0].Error.Code != -32029 || out[0].Error.Message != other || out[1].Error.Code != -32600 ||
		string(out[2].ID) != "2" || out[2].Error.Code != -32029 || out[2].Error.Message != msg {
		t.Errorf("%s; want -32029 %q for id 2, %q for id 1, -32600 for the list", b, msg, other)
	}
	if be.hits.Load() != 0 {
		t.Error("forwarded, want the whole batch refused")
	}
	if ev := rec.all(); len(ev) != 2 || ev[0].Outcome != audit.RateLimited || ev[1].Outcome != audit.RateLimited || ev[1].Tool != "slow" {
		t.Errorf("events %+v, want two rate_limited", ev)
	}
	if want := []string{bob.User.ID + " " + bob.ClientID + " fail,slow"}; !slices.Equal(asked, want) {
		t.Errorf("Limit asked %q, want %q", asked, want)
	}
	// Within the limits the call goes through; a request without a call
	// does not ask.
	asked = nil
	if resp, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"fail"}}`); be.hits.Load() != 1 {
		t.Errorf("a call within the limits: %d %s, not forwarded", resp.StatusCode, b)
	}
	post(t, srv.URL, `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`)
	if len(asked) != 1 {
		t.Errorf("Limit asked %q, want once (the call, not the list)", asked)
	}
}

// A client's tool name is its own text, as long as the body allows: the
// audit event (and so the audit log line, the console's list and the
// span) keeps at most audit.MaxToolName bytes of it, cut on a character
// and marked, so that one call cannot write megabytes into the log.
func TestAuditToolNameBounded(t *testing.T) {
	var ran sync.Map
	rec := &events{}
	srv := front(t, mcpBackend(false, &ran), Options{Audit: rec, Resource: "/mcp"}, alice)
	long := strings.Repeat("é", 5000)
	cs := connect(t, srv.URL, "")
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: long}); err == nil {
		t.Fatal("a tool the backend does not have: no error")
	}
	// The event is recorded as the handler returns, which may be just
	// after the client has its answer.
	var ev []audit.Event
	for deadline := time.Now().Add(30 * time.Second); len(ev) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		ev = rec.all()
	}
	if len(ev) != 1 {
		t.Fatalf("events %+v, want one", ev)
	}
	if got := ev[0].Tool; len(got) > audit.MaxToolName+len("…") || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("the audit event's tool: %d bytes %q…, want at most %d bytes of the name, cut on a character, marked", len(got), got[:min(len(got), 20)], audit.MaxToolName)
	}
}

// A refused batch's answer is about as large as the batch, whatever the
// names it calls: a long denied or rate limited name is named, clipped,
// only in the answer to its own call. Fails before this change: every
// other request's error repeated the whole name, and a batch of 150 KB
// was answered with over 250 MB.
func TestRefusedBatchAnswerBounded(t *testing.T) {
	limit := func(user, client string, tools []string) (string, time.Duration) { return tools[0], time.Second }
	for _, tc := range []struct {
		what string
		opts Options
	}{
		{"denied", Options{Policy: testPolicy()}},
		{"rate limited", Options{Limit: limit}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			h := Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("forwarded, want the batch refused") }), tc.opts)
			var b bytes.Buffer
			b.WriteString(`[{"jsonrpc":"2.0","id":0,"method":"tools/call","params":{"name":"`)
			b.WriteString(strings.Repeat("x", 64<<10))
			b.WriteString(`"}}`)
			for i := 1; i <= 1000; i++ {
				fmt.Fprintf(&b, `,{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","id":"p%d","method":"ping"}`, i, i)
			}
			b.WriteString("]")
			req := httptest.NewRequest(http.MethodPost, "/mcp", bytes.NewReader(b.Bytes()))
			req.Header.Set("Content-Type", "application/json")
			req = req.WithContext(identity.WithCaller(req.Context(), bob))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var out []rpcError
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || len(out) != 2001 {
				t.Fatalf("%d answers (%v), want 2001 errors", len(out), err)
			}
			if n := rec.Body.Len(); n > 2*b.Len() {
				t.Errorf("a batch of %d bytes answered with %d, want at most twice its size", b.Len(), n)
			}
		})
	}
}
