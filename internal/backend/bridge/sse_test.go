package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/backend/proxy"
)

// seenRequest is what the legacy upstream saw of one HTTP request.
type seenRequest struct {
	method, user, email, groups, clientID, token, auth, cookie string
	spoofed                                                    bool
	traceparent                                                string
}

// legacyUpstream is a real legacy HTTP+SSE MCP server (the go-sdk's
// SSEHandler) behind a middleware that records what it is sent and can
// end the open SSE streams.
type legacyUpstream struct {
	srv     *httptest.Server
	release chan struct{} // the progress tool waits for it
	relOnce sync.Once
	unblock chan struct{} // closed at the end of the test
	started chan string   // tools that block report here

	mu      sync.Mutex
	seen    []seenRequest
	streams map[*http.Request]context.CancelFunc
	gets    int
	refuse  atomic.Bool // answer tool POSTs with 500
	drop    atomic.Bool // close the connection of tool POSTs unanswered
}

func newLegacyUpstream(t *testing.T) *legacyUpstream {
	t.Helper()
	u := &legacyUpstream{release: make(chan struct{}), unblock: make(chan struct{}), started: make(chan string, 16), streams: map[*http.Request]context.CancelFunc{}}
	sseHandler := mcp.NewSSEHandler(func(r *http.Request) *mcp.Server {
		// A legacy server knows its user from the connection's GET.
		return u.server(r.Header.Get("X-Forwarded-User"))
	}, nil)
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header
		s := seenRequest{method: r.Method, user: h.Get("X-Forwarded-User"), email: h.Get("X-Forwarded-Email"),
			groups: h.Get("X-Forwarded-Groups"), clientID: h.Get("X-Forwarded-Client-Id"), token: h.Get("X-Mcpgate-Identity"),
			auth: h.Get("Authorization"), cookie: h.Get("Cookie"), traceparent: h.Get("Traceparent")}
		for k, vv := range h {
			for _, v := range vv {
				if strings.Contains(v, "admin") || strings.Contains(v, "evil") || strings.EqualFold(k, "X_Forwarded_User") {
					s.spoofed = true
				}
			}
		}
		u.mu.Lock()
		u.seen = append(u.seen, s)
		u.mu.Unlock()
		if r.Method == http.MethodPost && (u.refuse.Load() || u.drop.Load()) {
			body, _ := io.ReadAll(r.Body)
			if bytes.Contains(body, []byte(`"tools/call"`)) {
				if u.drop.Load() {
					panic(http.ErrAbortHandler)
				}
				http.Error(w, "secret upstream detail", http.StatusInternalServerError)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		if r.Method != http.MethodGet {
			sseHandler.ServeHTTP(w, r)
			return
		}
		// The stream can be cut off (endStreams) while the server's
		// handlers still run, as when a server dies: the response ends
		// at once, and what the server writes after that is lost.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		dw := &detachable{w: w}
		cut := make(chan struct{})
		u.mu.Lock()
		u.streams[r] = func() { dw.detach(); close(cut) }
		u.gets++
		u.mu.Unlock()
		defer func() {
			u.mu.Lock()
			delete(u.streams, r)
			u.mu.Unlock()
		}()
		done := make(chan struct{})
		go func() {
			defer close(done)
			sseHandler.ServeHTTP(dw, r.WithContext(ctx))
		}()
		select {
		case <-done:
		case <-cut:
		}
	}))
	t.Cleanup(func() {
		close(u.unblock)
		u.srv.Close()
	})
	return u
}

func (u *legacyUpstream) server(user string) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "legacy", Version: "0.1"}, &mcp.ServerOptions{Instructions: "legacy instructions"})
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "returns text"}, func(ctx context.Context, req *mcp.CallToolRequest, in textIn) (*mcp.CallToolResult, any, error) {
		return text(in.Text), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "the user of the connection"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		return text(user), nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "hang", Description: "waits until cancelled"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		u.started <- "hang"
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-u.unblock:
			return text("unblocked"), nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress", Description: "reports progress, then waits to be released"}, func(ctx context.Context, req *mcp.CallToolRequest, _ textIn) (*mcp.CallToolResult, any, error) {
		if tok := req.Params.GetProgressToken(); tok != nil {
			req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2, Message: "half"})
		}
		select {
		case <-u.release:
			return text("done"), nil, nil
		case <-time.After(20 * time.Second):
			return text("not released: the progress notification did not reach the client in time"), nil, nil
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-u.unblock:
			return text("unblocked"), nil, nil
		}
	})
	mcp.AddTool(s, &mcp.Tool{Name: "roots", Description: "asks the client for its roots"}, rootsTool)
	return s
}

// endStreams cuts every open SSE stream off, as a server crash would.
func (u *legacyUpstream) endStreams() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for r, cut := range u.streams {
		cut()
		delete(u.streams, r)
	}
}

// detachable is a ResponseWriter that can be cut off from the response.
type detachable struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	gone bool
}

func (d *detachable) Header() http.Header { return d.w.Header() }

func (d *detachable) WriteHeader(code int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.gone {
		d.w.WriteHeader(code)
	}
}

func (d *detachable) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.gone {
		return 0, io.ErrClosedPipe
	}
	return d.w.Write(b)
}

func (d *detachable) Flush() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.gone {
		d.w.(http.Flusher).Flush()
	}
}

func (d *detachable) detach() {
	d.mu.Lock()
	d.gone = true
	d.mu.Unlock()
}

func (u *legacyUpstream) openStreams() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.streams)
}

func (u *legacyUpstream) getCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.gets
}

func (u *legacyUpstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

// newSSEFixture runs an SSE pool to url behind the test guard.
func newSSEFixture(t *testing.T, sseURL string, opts SSEOptions) *fixture {
	t.Helper()
	f := &fixture{logs: &syncBuffer{}}
	opts.URL = sseURL
	opts.Resource = "/mcp"
	opts.Logger = f.logger()
	pool, err := NewSSE(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, pool)
	return f
}

// spoofingTransport is a client that sends what must never reach the
// upstream: its token, cookies, and identity headers of its own.
type spoofingTransport struct{ user string }

func (s spoofingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-User", s.user)
	r.Header.Set("Authorization", "Bearer gateway-token")
	r.Header.Set("Cookie", "mcpgate_session=secret")
	r.Header.Set("X-Forwarded-User", "local:admin")
	r.Header["X_Forwarded_User"] = []string{"local:admin"}
	r.Header.Set("X-Forwarded-Email", "admin@evil.example")
	return http.DefaultTransport.RoundTrip(r)
}

// The go-sdk streamable client, session-ful and stateless-first, reaches
// a legacy HTTP+SSE server through the bridge: initialize, tools/list,
// tools/call.
func TestSSEGoSDKClient(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
	for _, v := range []string{"2025-11-25", "2025-03-26", ""} {
		t.Run("version="+v, func(t *testing.T) {
			cs := f.connect(t, "alice", v, nil)
			ir := cs.InitializeResult()
			if ir == nil || ir.ServerInfo == nil || ir.ServerInfo.Name != "legacy" || ir.Instructions != "legacy instructions" {
				t.Fatalf("initialize result: %+v, want server legacy with its instructions", ir)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tools, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, tl := range tools.Tools {
				names = append(names, tl.Name)
			}
			if !strings.Contains(strings.Join(names, ","), "echo") {
				t.Fatalf("tools: %v, want echo among them", names)
			}
			if got := callText(t, cs, "echo", map[string]any{"text": "hello " + v}); got != "hello "+v {
				t.Fatalf("echo: %q, want %q", got, "hello "+v)
			}
			if got := callText(t, cs, "whoami", nil); got != "local:alice" {
				t.Fatalf("whoami: %q, want local:alice", got)
			}
			// The legacy server answers server/discover without 2026-07-28,
			// so the SDK falls back to initialize, which the bridge answers
			// from its cache: every client gets a bridge session.
			if cs.ID() == "" || ir.ProtocolVersion != "2025-11-25" {
				t.Errorf("session id %q, protocol %s; want a session, 2025-11-25", cs.ID(), ir.ProtocolVersion)
			}
		})
	}
	// A purely stateless 2026-07-28 request (no initialize, no session).
	resp, body := f.rpc(t, context.Background(), "alice", "", callBody("s1", "echo", map[string]any{"text": "stateless"}),
		map[string]string{versionHeader: "2026-07-28"})
	if resp.StatusCode != 200 || !strings.Contains(body, `"text":"stateless"`) || !strings.Contains(body, `"id":"s1"`) {
		t.Fatalf("stateless request: %d %s; want 200, the text for id s1", resp.StatusCode, body)
	}
	if n := up.getCount(); n != 1 {
		t.Errorf("one user, %d SSE connections, want 1", n)
	}
}

// The upstream sees the verified caller on the GET and on every POST,
// never the client's Authorization (PASS-2), cookies or identity headers; two
// users get two SSE connections.
func TestSSEIdentityHeaders(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{
		IdentityToken: func(c *identity.Caller) (string, error) { return "signed-" + c.User.ID, nil },
	})
	connect := func(user string) *mcp.ClientSession {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
		cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.srv.URL, HTTPClient: &http.Client{Transport: spoofingTransport{user}}},
			&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	alice := connect("alice")
	if got := callText(t, alice, "whoami", nil); got != "local:alice" {
		t.Fatalf("alice: whoami %q, want local:alice", got)
	}
	bob := connect("bob")
	if got := callText(t, bob, "whoami", nil); got != "local:bob" {
		t.Fatalf("bob: whoami %q, want local:bob", got)
	}
	callText(t, alice, "echo", map[string]any{"text": "again"})
	if n := up.getCount(); n != 2 {
		t.Fatalf("two users, %d SSE connections, want 2", n)
	}
	want := map[string]seenRequest{
		"local:alice": {user: "local:alice", email: "alice@example.com", groups: "dev,ops", clientID: "c1", token: "signed-local:alice"},
		"local:bob":   {user: "local:bob", clientID: "c2", token: "signed-local:bob"},
	}
	var gets, posts int
	for _, s := range up.requests() {
		switch s.method {
		case http.MethodGet:
			gets++
		case http.MethodPost:
			posts++
		}
		w, ok := want[s.user]
		w.method, w.spoofed = s.method, false
		if !ok || s != w {
			t.Errorf("the upstream saw %+v, want %+v", s, w)
		}
	}
	if gets != 2 || posts < 6 {
		t.Errorf("%d GETs, %d POSTs; want 2 GETs, at least 6 POSTs", gets, posts)
	}
}

// tracedTransport is userTransport with the W3C trace context of one
// trace, as a gateway's request span would give the bridge.
type tracedTransport struct{ user, traceparent string }

func (tt tracedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-User", tt.user)
	r.Header.Set("Traceparent", tt.traceparent)
	return http.DefaultTransport.RoundTrip(r)
}

// A client's message reaches a legacy server in the client request's
// trace (SEC-104): the POST that carries a tools/call has a traceparent
// of the same trace id, and the bridge's own messages (the connection's
// GET) carry none made up.
func TestSSETraceContext(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx,
		&mcp.StreamableClientTransport{Endpoint: f.srv.URL, HTTPClient: &http.Client{Transport: tracedTransport{"alice", "00-" + traceID + "-00f067aa0ba902b7-01"}}},
		&mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	callText(t, cs, "echo", map[string]any{"text": "traced"})
	var traced int
	for _, s := range up.requests() {
		switch {
		case s.method == http.MethodGet && s.traceparent != "":
			t.Errorf("the connection's GET carries traceparent %q, want none", s.traceparent)
		case s.method == http.MethodPost && s.traceparent != "":
			if parts := strings.Split(s.traceparent, "-"); len(parts) != 4 || parts[1] != traceID {
				t.Errorf("a POST's traceparent %q, want trace id %s", s.traceparent, traceID)
			}
			traced++
		}
	}
	if traced == 0 {
		t.Fatalf("no POST to the legacy server carried the client's trace; saw %+v", up.requests())
	}
}

// An endpoint event naming another origin is refused: nothing is POSTed
// there, and the client gets 502 with no detail.
func TestSSEEndpointOnAnotherOrigin(t *testing.T) {
	var hits atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer elsewhere.Close()
	for _, endpoint := range []string{
		elsewhere.URL + "/messages",
		"//" + strings.TrimPrefix(elsewhere.URL, "http://") + "/messages",
	} {
		t.Run(endpoint, func(t *testing.T) {
			sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				fmt.Fprintf(w, "event: endpoint\ndata: %s\n\n", endpoint)
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}))
			defer sse.Close()
			f := newSSEFixture(t, sse.URL+"/sse", SSEOptions{})
			start := time.Now()
			resp, body := f.rpc(t, context.Background(), "alice", "", initBody, nil)
			if resp.StatusCode != 502 || !strings.Contains(body, `"code":-32603`) || strings.Contains(body, "127.0.0.1") || time.Since(start) > 5*time.Second {
				t.Fatalf("%d %s after %v; want 502 and -32603 without detail, within 5 s", resp.StatusCode, body, time.Since(start))
			}
			if !strings.Contains(f.logs.String(), "not on its origin") {
				t.Errorf("refusal not logged:\n%s", f.logs)
			}
		})
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests reached the other origin, want none", n)
	}
}

func TestSSEResolveEndpoint(t *testing.T) {
	base, _ := url.Parse("http://mcp.example:8080/app/sse")
	s := &sseConn{spec: &sseSpec{url: base}}
	for ref, want := range map[string]string{
		"/app/messages?sessionId=1":                  "http://mcp.example:8080/app/messages?sessionId=1",
		"messages?s=2":                               "http://mcp.example:8080/app/messages?s=2",
		"http://MCP.example:8080/m#frag":             "http://MCP.example:8080/m",
		"http://mcp.example/m":                       "",
		"https://mcp.example:8080/m":                 "",
		"//evil.example/m":                           "",
		"http://user@mcp.example:8080/m":             "",
		"http://mcp.example:8080.evil.example/m":     "",
		"":                                           "",
		"http://[::1]:8080/m":                        "",
		"http://mcp.example:8080@evil.example:8080/": "",
	} {
		u, err := s.resolve([]byte(ref))
		got := ""
		if err == nil {
			got = u.String()
		}
		if got != want {
			t.Errorf("%q: got %q (%v), want %q", ref, got, err, want)
		}
	}
	def, _ := url.Parse("https://mcp.example/sse")
	s = &sseConn{spec: &sseSpec{url: def}}
	if u, err := s.resolve([]byte("https://mcp.example:443/m")); err != nil || u.Host != "mcp.example:443" {
		t.Errorf("default port: %v %v, want host mcp.example:443", u, err)
	}
}

// The upstream's stream ending fails the call in flight at once with a
// JSON-RPC error; the next request reconnects.
func TestSSEStreamEndsMidCall(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
	sid := f.session(t, "alice")
	type result struct {
		status int
		body   string
	}
	res := make(chan result, 1)
	go func() {
		resp, body := f.rpc(t, context.Background(), "alice", sid, callBody("c1", "hang", nil), nil)
		res <- result{resp.StatusCode, body}
	}()
	select {
	case <-up.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the call did not reach the upstream")
	}
	start := time.Now()
	up.endStreams()
	select {
	case r := <-res:
		if r.status != 200 || !strings.Contains(r.body, `"code":-32603`) || !strings.Contains(r.body, `"id":"c1"`) {
			t.Fatalf("call when the stream ended: %d %s; want 200, -32603 for id c1", r.status, r.body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("answered after %v, want within 5 s", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the call in flight was not answered when the stream ended")
	}
	resp, body := f.rpc(t, context.Background(), "alice", sid, callBody(2, "echo", map[string]any{"text": "again"}), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "again") {
		t.Fatalf("after the stream ended: %d %s; want 200 and the echo", resp.StatusCode, body)
	}
	if n := up.getCount(); n != 2 {
		t.Fatalf("%d SSE connections, want 2", n)
	}
	if !strings.Contains(f.logs.String(), "SSE connection ended by the upstream") {
		t.Errorf("the end was not logged:\n%s", f.logs)
	}
}

// An upstream that cannot be reached answers at once with 502 and a
// JSON-RPC error without detail.
func TestSSEUpstreamDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	f := newSSEFixture(t, downURL+"/sse", SSEOptions{})
	for _, c := range []struct {
		name, sid, body string
		hdr             map[string]string
	}{
		{"initialize", "", initBody, nil},
		{"stateless call", "", callBody(1, "echo", nil), map[string]string{versionHeader: "2026-07-28"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			resp, body := f.rpc(t, context.Background(), "alice", c.sid, c.body, c.hdr)
			if resp.StatusCode != 502 || !strings.Contains(body, `"code":-32603`) || strings.Contains(body, "refused") || strings.Contains(body, "127.0.0.1") {
				t.Errorf("%d %s; want 502, -32603, no detail", resp.StatusCode, body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("answered after %v, want within 5 s", d)
			}
		})
	}
	if !strings.Contains(f.logs.String(), "SSE connection could not be opened") {
		t.Errorf("the failure was not logged:\n%s", f.logs)
	}
	// An upstream that is no SSE server (404) is refused the same way.
	notSSE := httptest.NewServer(http.NotFoundHandler())
	defer notSSE.Close()
	g := newSSEFixture(t, notSSE.URL+"/sse", SSEOptions{})
	if resp, body := g.rpc(t, context.Background(), "alice", "", initBody, nil); resp.StatusCode != 502 || !strings.Contains(body, `"id":1`) {
		t.Fatalf("not an SSE server: %d %s; want 502 for id 1", resp.StatusCode, body)
	}
}

// A POST the upstream answers with an error status fails that call with a
// JSON-RPC error and no upstream detail; the link goes on.
func TestSSEPostRefused(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
	sid := f.session(t, "alice")
	up.refuse.Store(true)
	resp, body := f.rpc(t, context.Background(), "alice", sid, callBody(3, "echo", map[string]any{"text": "x"}), nil)
	if resp.StatusCode != 502 || !strings.Contains(body, `"code":-32603`) || !strings.Contains(body, `"id":3`) || strings.Contains(body, "secret") {
		t.Fatalf("refused POST: %d %s; want 502, -32603 for id 3, no upstream detail", resp.StatusCode, body)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "status=500") || !strings.Contains(logs, "secret upstream detail") {
		t.Errorf("the refusal was not logged with its detail:\n%s", logs)
	}
	up.refuse.Store(false)
	if resp, body := f.rpc(t, context.Background(), "alice", sid, callBody(4, "echo", map[string]any{"text": "fine"}), nil); resp.StatusCode != 200 || !strings.Contains(body, "fine") {
		t.Fatalf("after the refusal: %d %s; want 200 and the echo", resp.StatusCode, body)
	}
	if n := up.getCount(); n != 1 {
		t.Errorf("%d SSE connections, want 1", n)
	}
}

// Events are handled as they arrive: a progress notification reaches the
// client while its call is still running (the tool only finishes once the
// client has seen it).
func TestSSEProgressNotBuffered(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
	var got atomic.Value
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(ctx context.Context, req *mcp.ProgressNotificationClientRequest) {
			got.Store(req.Params.ProgressToken)
			up.relOnce.Do(func() { close(up.release) })
		},
	})
	cs := f.connect(t, "alice", "2025-11-25", client)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	params := &mcp.CallToolParams{Name: "progress"}
	params.SetProgressToken("tok-7")
	res, err := cs.CallTool(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if text := res.Content[0].(*mcp.TextContent).Text; text != "done" {
		t.Fatalf("result %q, want done", text)
	}
	if tok := got.Load(); tok != "tok-7" {
		t.Fatalf("progress token %v, want tok-7", tok)
	}
}

// A server→client request goes over the client's GET stream and the
// client's answer is POSTed back to the upstream.
func TestSSEServerToClientRequests(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{})
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	client.AddRoots(&mcp.Root{URI: "file:///work/project", Name: "project"})
	cs := f.connect(t, "alice", "2025-11-25", client)
	waitFor(t, "the roots answer", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "roots"})
		return err == nil && !res.IsError && res.Content[0].(*mcp.TextContent).Text == "file:///work/project"
	})
}

// An idle connection is closed; the session survives and the next call
// reconnects.
func TestSSEIdleConnectionClosed(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{IdleTimeout: 300 * time.Millisecond})
	cs := f.connect(t, "alice", "2025-11-25", nil)
	callText(t, cs, "echo", map[string]any{"text": "1"})
	waitFor(t, "the idle connection to close", 10*time.Second, func() bool {
		return up.openStreams() == 0 && f.pool.current(users["alice"]) == nil
	})
	if got := callText(t, cs, "whoami", nil); got != "local:alice" {
		t.Fatalf("after reconnecting: whoami %q, want local:alice", got)
	}
	if n := up.getCount(); n != 2 {
		t.Fatalf("%d SSE connections, want 2", n)
	}
	if !strings.Contains(f.logs.String(), "stopping an idle SSE connection") {
		t.Errorf("no log line for the reaping")
	}
}

// No endpoint event within StartTimeout: 502, promptly.
func TestSSEEndpointTimeout(t *testing.T) {
	sse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, ": hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer sse.Close()
	f := newSSEFixture(t, sse.URL, SSEOptions{StartTimeout: 300 * time.Millisecond})
	start := time.Now()
	resp, body := f.rpc(t, context.Background(), "alice", "", initBody, nil)
	if resp.StatusCode != 502 || time.Since(start) > 5*time.Second {
		t.Fatalf("%d %s after %v; want 502 within 5 s", resp.StatusCode, body, time.Since(start))
	}
	if !strings.Contains(f.logs.String(), "no endpoint event in time") {
		t.Errorf("not logged:\n%s", f.logs)
	}
}

func TestNewSSERejectsBadOptions(t *testing.T) {
	for _, u := range []string{"", "/sse", "ftp://x/sse", "http://user:pw@x/sse", "http://x/sse#f", "http:///sse"} {
		if _, err := NewSSE(SSEOptions{URL: u}); err == nil {
			t.Errorf("NewSSE(%q) succeeded, want an error", u)
		}
	}
	if _, err := NewSSE(SSEOptions{URL: "http://127.0.0.1:1/sse", IdentityHeaders: proxy.IdentityHeaders{User: "X-User"}}); err != nil {
		t.Error(err)
	}
}

// A failing identity token fails the connection; it is never opened
// without the token.
func TestSSEIdentityTokenFailure(t *testing.T) {
	for name, mint := range map[string]func(*identity.Caller) (string, error){
		"error": func(*identity.Caller) (string, error) { return "", errors.New("no key") },
		"empty": func(*identity.Caller) (string, error) { return "", nil },
		"crlf":  func(*identity.Caller) (string, error) { return "a\r\nX-Forwarded-User: root", nil },
	} {
		t.Run(name, func(t *testing.T) {
			up := newLegacyUpstream(t)
			f := newSSEFixture(t, up.srv.URL+"/sse", SSEOptions{IdentityToken: mint})
			resp, body := f.rpc(t, context.Background(), "alice", "", initBody, nil)
			if resp.StatusCode != 502 || strings.Contains(body, "no key") {
				t.Fatalf("%d %s; want 502 without the minting error", resp.StatusCode, body)
			}
			if len(up.requests()) != 0 {
				t.Fatalf("the upstream was reached without the identity token: %+v", up.requests())
			}
		})
	}
}

// SEC-135: the bridge's log never holds an upstream URL's query (a hosted
// server's API key) nor the legacy session's id, which its endpoint's query
// carries, also when a POST fails. Fails before this change: the key was
// on every line of the bridge, the session id in the failed POST's error.
func TestSEC135_UpstreamQueryAndSessionIDNotLogged(t *testing.T) {
	up := newLegacyUpstream(t)
	f := newSSEFixture(t, up.srv.URL+"/sse?api_key=SUPERSECRET", SSEOptions{})
	sid := f.session(t, "alice")
	up.drop.Store(true)
	f.rpc(t, context.Background(), "alice", sid, callBody(3, "echo", map[string]any{"text": "x"}), nil)
	logs := f.logs.String()
	if !strings.Contains(logs, "POST to the SSE upstream failed") {
		t.Fatalf("no failed POST was logged:\n%s", logs)
	}
	if strings.Contains(logs, "SUPERSECRET") || regexp.MustCompile(`sessionid=[A-Za-z0-9]`).MatchString(logs) {
		t.Errorf("the upstream's API key or session id in the log:\n%s", logs)
	}
}
