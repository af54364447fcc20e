package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/sandbox"
	"github.com/mcpgate/mcpgate/internal/tracing"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type fixture struct {
	pool *Pool
	srv  *httptest.Server
	logs *syncBuffer
	dir  string
}

// users the test middleware knows, by the X-Test-User header.
var users = map[string]*identity.Caller{
	"alice": {User: identity.User{ID: "local:alice", Username: "alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"dev", "ops"}}, ClientID: "c1"},
	"bob":   {User: identity.User{ID: "local:bob", Username: "bob", Email: "bob@example.com", EmailVerified: false}, ClientID: "c2"},
	"eve":   {User: identity.User{ID: "local:eve", Username: "eve\nx"}, ClientID: "c3"},
	"carol": {User: identity.User{ID: "oidc:carol", Groups: []string{"Sales, EMEA", "org/team", "100%"}}, ClientID: "c4"},
}

// newFixture runs the pool with the fake server behind a middleware that
// plays the resource guard.
func newFixture(t *testing.T, opts StdioOptions) *fixture {
	t.Helper()
	f := &fixture{logs: &syncBuffer{}, dir: t.TempDir()}
	opts.Command = []string{os.Args[0]}
	opts.Env = append(opts.Env, fakeEnv+"=server")
	opts.Dir = f.dir
	opts.Resource = "/mcp"
	opts.Logger = f.logger()
	pool, err := NewStdio(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, pool)
	return f
}

// logger logs everything to f.logs.
func (f *fixture) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serve runs pool behind a middleware that plays the resource guard (the
// caller is the one users names in X-Test-User); the end of the test
// closes both.
func (f *fixture) serve(t *testing.T, pool *Pool) {
	t.Helper()
	f.pool = pool
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := users[r.Header.Get("X-Test-User")]; c != nil {
			r = r.WithContext(identity.WithCaller(r.Context(), c))
		}
		// A caller's trace context, as the gateway's request span gives it.
		r = r.WithContext(tracing.Extract(r.Context(), r.Header))
		pool.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		f.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pool.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

type userTransport struct{ user string }

func (u userTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-User", u.user)
	return http.DefaultTransport.RoundTrip(r)
}

// connect opens a go-sdk client session as user; version "" is the SDK's
// default (2026-07-28: server/discover, stateless).
func (f *fixture) connect(t *testing.T, user, version string, client *mcp.Client) *mcp.ClientSession {
	t.Helper()
	if client == nil {
		client = mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: f.srv.URL, HTTPClient: &http.Client{Transport: userTransport{user}}},
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func callText(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	if res.IsError || len(res.Content) == 0 {
		t.Fatalf("%s: %+v, want a result with content", tool, res)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

type envReport struct {
	PID       int    `json:"pid"`
	User      string `json:"user"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	Groups    string `json:"groups"`
	Home      string `json:"home"`
	WD        string `json:"wd"`
	HasTmpdir bool   `json:"has_tmpdir"`
	HasSecret bool   `json:"has_secret"`
	Extra     string `json:"extra"`
}

func envOf(t *testing.T, cs *mcp.ClientSession) envReport {
	t.Helper()
	var e envReport
	if err := json.Unmarshal([]byte(callText(t, cs, "env", nil)), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// rpc is a raw POST as user; sid may be empty.
func (f *fixture) rpc(t *testing.T, ctx context.Context, user, sid, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if user != "" {
		req.Header.Set("X-Test-User", user)
	}
	if sid != "" {
		req.Header.Set(sessionHeader, sid)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// sleep calls the sleep tool as user in session sid until ctx ends, in
// the background; the channel closes when the call has returned.
func (f *fixture) sleep(ctx context.Context, user, sid string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL, strings.NewReader(callBody(7, "sleep", nil)))
		req.Header.Set("X-Test-User", user)
		req.Header.Set(sessionHeader, sid)
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	return done
}

// session opens a raw bridge session as user.
func (f *fixture) session(t *testing.T, user string) string {
	t.Helper()
	resp, body := f.rpc(t, context.Background(), user, "", initBody, nil)
	sid := resp.Header.Get(sessionHeader)
	if resp.StatusCode != 200 || sid == "" {
		t.Fatalf("initialize: %d %s; want 200 and a session id", resp.StatusCode, body)
	}
	return sid
}

func callBody(id any, tool string, args map[string]any) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": args}})
	return string(b)
}

// alive reports whether pid is a live process (a zombie is not).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SEC-74: MCPGATE_USER_GROUPS holds every group, encoded as
// X-Forwarded-Groups is: a comma in a name does not leave it out.
func TestSEC74_StdioGroupsEncoded(t *testing.T) {
	t.Setenv("TMPDIR", os.TempDir())
	f := newFixture(t, StdioOptions{})
	if got := envOf(t, f.connect(t, "carol", "", nil)).Groups; got != "Sales%2C EMEA,org/team,100%25" {
		t.Fatalf("MCPGATE_USER_GROUPS = %q, want %q", got, "Sales%2C EMEA,org/team,100%25")
	}
}

// Two users get two processes, each with only its own identity in an
// environment built from scratch, in its own directory.
func TestUsersGetIsolatedProcesses(t *testing.T) {
	t.Setenv("MCPGATE_TEST_SECRET", "gateway secret")
	t.Setenv("TMPDIR", os.TempDir())
	f := newFixture(t, StdioOptions{Env: []string{"EXTRA=x=1"}})
	a := envOf(t, f.connect(t, "alice", "2025-11-25", nil))
	b := envOf(t, f.connect(t, "bob", "", nil))
	if a.PID == b.PID || a.PID == 0 {
		t.Fatalf("processes %d and %d for two users, want two", a.PID, b.PID)
	}
	if a.User != "local:alice" || a.Name != "alice" || a.Email != "alice@example.com" || a.Groups != "dev,ops" {
		t.Errorf("alice's environment: %+v, want her id, name, email and groups", a)
	}
	if b.User != "local:bob" || b.Email != "" || b.Groups != "" {
		t.Errorf("bob's environment (unverified email must be absent): %+v", b)
	}
	for _, e := range []envReport{a, b} {
		if e.HasSecret || e.HasTmpdir {
			t.Errorf("gateway environment leaked into %s's server: %+v", e.User, e)
		}
		if e.Extra != "x=1" {
			t.Errorf("Options.Env not passed: %+v, want EXTRA=x=1", e)
		}
		want := userDir(f.dir, e.User)
		if e.Home != want || e.WD != want {
			t.Errorf("%s: HOME %q, working directory %q, want %q", e.User, e.Home, e.WD, want)
		}
		st, err := os.Stat(want)
		if err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("%s: directory %v %v, want mode 0700", e.User, st, err)
		}
	}
	// A second session of the same user shares the process.
	if a2 := envOf(t, f.connect(t, "alice", "2025-06-18", nil)); a2.PID != a.PID {
		t.Errorf("alice got a second process: %d, %d; want one", a.PID, a2.PID)
	}
}

// A value with a control character is left out, with a warning.
func TestControlCharactersLeftOut(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	e := envOf(t, f.connect(t, "eve", "2025-11-25", nil))
	if e.User != "local:eve" || e.Name != "" {
		t.Fatalf("eve: %+v, want her id and no name", e)
	}
	if !strings.Contains(f.logs.String(), "MCPGATE_USER_NAME") {
		t.Errorf("no warning logged:\n%s", f.logs)
	}
}

// The go-sdk client through the bridge, in the legacy (initialize,
// sessions) and the stateless 2026-07-28 protocol.
func TestGoSDKClient(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	for _, v := range []string{"2025-11-25", "2025-03-26", ""} {
		t.Run("version="+v, func(t *testing.T) {
			cs := f.connect(t, "alice", v, nil)
			ir := cs.InitializeResult()
			if ir == nil || ir.ServerInfo == nil || ir.ServerInfo.Name != "fake-stdio" {
				t.Fatalf("initialize result: %+v, want server fake-stdio", ir)
			}
			if v != "" && ir.Instructions != "fake instructions" {
				t.Errorf("instructions: %q, want %q", ir.Instructions, "fake instructions")
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
			if v == "" && (cs.ID() != "" || ir.ProtocolVersion != "2026-07-28") {
				t.Errorf("session id %q, protocol %s; want none, 2026-07-28", cs.ID(), ir.ProtocolVersion)
			}
			// The bridge answers from the process's cached InitializeResult:
			// the version the first session (2025-11-25) negotiated.
			if v != "" && (cs.ID() == "" || ir.ProtocolVersion != "2025-11-25") {
				t.Errorf("session id %q, protocol %s; want a bridge session, 2025-11-25", cs.ID(), ir.ProtocolVersion)
			}
		})
	}
}

// SESS-3: a session is its user's only; unknown, ended and missing ids
// are refused.
func TestSessionBoundToUser(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	ctx := context.Background()
	sid := f.session(t, "alice")
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if resp, body := f.rpc(t, ctx, "alice", sid, list, nil); resp.StatusCode != 200 || !strings.Contains(body, `"echo"`) {
		t.Fatalf("alice: %d %s; want 200 and the tools", resp.StatusCode, body)
	}
	resp, body := f.rpc(t, ctx, "bob", sid, list, nil)
	if resp.StatusCode != 404 || !strings.Contains(body, `"code":-32001`) || !strings.Contains(body, `"id":2`) {
		t.Fatalf("bob with alice's session: %d %s; want 404, -32001 for id 2", resp.StatusCode, body)
	}
	if resp, _ := f.rpc(t, ctx, "alice", "no-such-session", list, nil); resp.StatusCode != 404 {
		t.Fatalf("unknown session: %d, want 404", resp.StatusCode)
	}
	if resp, body := f.rpc(t, ctx, "alice", "", list, nil); resp.StatusCode != 400 || !strings.Contains(body, "Mcp-Session-Id") {
		t.Fatalf("no session: %d %s; want 400 naming Mcp-Session-Id", resp.StatusCode, body)
	}
	// Bob cannot end it either.
	del := func(user string) int {
		req, _ := http.NewRequest(http.MethodDelete, f.srv.URL, nil)
		req.Header.Set("X-Test-User", user)
		req.Header.Set(sessionHeader, sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := del("bob"); c != 404 {
		t.Fatalf("bob's DELETE: %d, want 404", c)
	}
	if c := del("alice"); c != 204 {
		t.Fatalf("alice's DELETE: %d, want 204", c)
	}
	if resp, _ := f.rpc(t, ctx, "alice", sid, list, nil); resp.StatusCode != 404 {
		t.Fatalf("ended session: %d, want 404", resp.StatusCode)
	}
	// The process outlives the session.
	if f.pool.current(users["alice"]) == nil {
		t.Fatal("DELETE stopped the process")
	}
}

// Two sessions of one user using the same request ids at once get their
// own answers.
func TestRequestIDsDoNotCollide(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	s1, s2 := f.session(t, "alice"), f.session(t, "alice")
	var wg sync.WaitGroup
	for i := range 20 {
		for _, sid := range []string{s1, s2} {
			wg.Go(func() {
				want := fmt.Sprintf("%s-%d", sid[:6], i)
				resp, body := f.rpc(t, context.Background(), "alice", sid, callBody(i, "echo", map[string]any{"text": want}), nil)
				if resp.StatusCode != 200 || !strings.Contains(body, `"text":"`+want+`"`) || !strings.Contains(body, fmt.Sprintf(`"id":%d`, i)) {
					t.Errorf("%s: %d %s", want, resp.StatusCode, body)
				}
			})
		}
	}
	wg.Wait()
}

// An idle process is stopped; the session survives and the next call
// starts a new process transparently.
func TestIdleProcessReaped(t *testing.T) {
	f := newFixture(t, StdioOptions{IdleTimeout: 300 * time.Millisecond})
	cs := f.connect(t, "alice", "2025-11-25", nil)
	first := envOf(t, cs)
	waitFor(t, "the idle process to stop", 10*time.Second, func() bool {
		return !alive(first.PID) && f.pool.current(users["alice"]) == nil
	})
	second := envOf(t, cs)
	if second.PID == first.PID || !alive(second.PID) {
		t.Fatalf("processes %d then %d, want a new live one", first.PID, second.PID)
	}
	if !strings.Contains(f.logs.String(), "stopping an idle stdio server") {
		t.Errorf("no log line for the reaping")
	}
}

// At the cap a new user evicts the least recently used idle process; with
// none idle the request gets 503 with a JSON-RPC error.
func TestProcessCap(t *testing.T) {
	f := newFixture(t, StdioOptions{MaxProcesses: 1})
	a := envOf(t, f.connect(t, "alice", "2025-11-25", nil))
	bob := f.connect(t, "bob", "2025-11-25", nil)
	b := envOf(t, bob)
	waitFor(t, "alice's process to be evicted", 10*time.Second, func() bool { return !alive(a.PID) })
	if !alive(b.PID) {
		t.Fatal("bob's process is not running")
	}

	// Bob busy: alice cannot evict him.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bobSid := f.session(t, "bob")
	done := f.sleep(ctx, "bob", bobSid)
	home := userDir(f.dir, "local:bob")
	waitFor(t, "bob's sleep to start", 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(home, "started")); return err == nil })
	resp, body := f.rpc(t, context.Background(), "alice", "", initBody, nil)
	if resp.StatusCode != 503 || !strings.Contains(body, `"code":-32000`) || !strings.Contains(body, `"id":1`) || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("at the cap with every process busy: %d %s; want 503 JSON, -32000 for id 1", resp.StatusCode, body)
	}
	cancel()
	<-done
}

// A process that dies mid-request fails the request at once with a
// JSON-RPC error and no internal detail; the next request restarts it.
func TestCrashMidRequest(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	sid := f.session(t, "alice")
	start := time.Now()
	resp, body := f.rpc(t, context.Background(), "alice", sid, callBody("c1", "crash", nil), nil)
	if time.Since(start) > 5*time.Second {
		t.Fatalf("crash answered after %v, want within 5 s", time.Since(start))
	}
	if resp.StatusCode != 200 || !strings.Contains(body, `"code":-32603`) || !strings.Contains(body, `"id":"c1"`) || strings.Contains(body, "exit status") {
		t.Fatalf("crash: %d %s; want 200, -32603 for id c1, no exit status", resp.StatusCode, body)
	}
	if resp, body := f.rpc(t, context.Background(), "alice", sid, callBody(2, "echo", map[string]any{"text": "again"}), nil); resp.StatusCode != 200 || !strings.Contains(body, "again") {
		t.Fatalf("after the crash: %d %s; want 200 and the echo", resp.StatusCode, body)
	}
	if !strings.Contains(f.logs.String(), "exit status 3") {
		t.Errorf("exit not logged:\n%s", f.logs)
	}
}

// The server's stderr reaches the log line by line with the user and pid.
func TestStderrLogged(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	cs := f.connect(t, "alice", "2025-11-25", nil)
	pid := envOf(t, cs).PID
	callText(t, cs, "stderr", map[string]any{"text": "hello from stderr"})
	want := fmt.Sprintf(`msg="stdio server stderr" resource=/mcp user=local:alice client_id=c1 pid=%d line="hello from stderr"`, pid)
	waitFor(t, "the stderr line in the log", 10*time.Second, func() bool { return strings.Contains(f.logs.String(), want) })
}

// A client that goes away, or cancels, has its request cancelled in the
// server; a client's notifications/cancelled ends its request at once.
func TestCancellation(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	home := userDir(f.dir, "local:alice")
	sid := f.session(t, "alice")

	t.Run("client went away", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.srv.URL, strings.NewReader(callBody(1, "sleep", nil)))
			req.Header.Set("X-Test-User", "alice")
			req.Header.Set(sessionHeader, sid)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errc <- err
		}()
		waitFor(t, "the sleep to start", 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(home, "started")); return err == nil })
		cancel()
		<-errc
		waitFor(t, "the server to see the cancellation", 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(home, "cancelled")); return err == nil })
	})

	os.Remove(filepath.Join(home, "started"))
	os.Remove(filepath.Join(home, "cancelled"))
	t.Run("notifications/cancelled", func(t *testing.T) {
		type result struct {
			status int
			body   string
		}
		res := make(chan result, 1)
		go func() {
			resp, body := f.rpc(t, context.Background(), "alice", sid, callBody("s1", "sleep", nil), nil)
			res <- result{resp.StatusCode, body}
		}()
		waitFor(t, "the sleep to start", 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(home, "started")); return err == nil })
		resp, _ := f.rpc(t, context.Background(), "alice", sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s1","reason":"user"}}`, nil)
		if resp.StatusCode != 202 {
			t.Fatalf("cancel: %d, want 202", resp.StatusCode)
		}
		select {
		case r := <-res:
			if !strings.Contains(r.body, `"id":"s1"`) || !strings.Contains(r.body, `"code":-32800`) {
				t.Fatalf("cancelled request: %d %s; want -32800 for id s1", r.status, r.body)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the cancelled request was not answered")
		}
		waitFor(t, "the server to see the cancellation", 10*time.Second, func() bool { _, err := os.Stat(filepath.Join(home, "cancelled")); return err == nil })
	})
}

// Close stops the server and the processes it started (its group).
func TestCloseKillsProcessGroup(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	cs := f.connect(t, "alice", "2025-11-25", nil)
	pid := envOf(t, cs).PID
	child, err := strconv.Atoi(callText(t, cs, "spawn", nil))
	if err != nil || !alive(child) {
		t.Fatalf("spawn: %v, want a live child's pid", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.pool.Close(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the server and its child to be gone", 10*time.Second, func() bool { return !alive(pid) && !alive(child) })
	resp, body := f.rpc(t, context.Background(), "alice", "", initBody, nil)
	if resp.StatusCode != 503 {
		t.Fatalf("after Close: %d %s; want 503", resp.StatusCode, body)
	}
}

// Server→client requests go over the session's GET stream and the
// client's answer comes back; with no stream they fail at once.
func TestServerToClientRequests(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	client := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil)
	client.AddRoots(&mcp.Root{URI: "file:///work/project", Name: "project"})
	cs := f.connect(t, "alice", "2025-11-25", client)
	// The GET stream opens in the background: poll.
	waitFor(t, "the roots answer", 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "roots"})
		return err == nil && !res.IsError && res.Content[0].(*mcp.TextContent).Text == "file:///work/project"
	})

	// Bob has no stream: his server's request is refused, promptly.
	sid := f.session(t, "bob")
	start := time.Now()
	resp, body := f.rpc(t, context.Background(), "bob", sid, callBody(1, "roots", nil), nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "roots failed") || time.Since(start) > 10*time.Second {
		t.Fatalf("roots without a stream: %d %s after %v; want 200, \"roots failed\", within 10 s", resp.StatusCode, body, time.Since(start))
	}
}

// With Accept: text/event-stream, progress for the request precedes the
// answer on its stream, with the client's own token.
func TestProgressOnRequestStream(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	sid := f.session(t, "alice")
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"progress","arguments":{},"_meta":{"progressToken":"tok-1"}}}`
	resp, out := f.rpc(t, context.Background(), "alice", sid, body, nil)
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q: %s; want text/event-stream", resp.Header.Get("Content-Type"), out)
	}
	p, r := strings.Index(out, `"progressToken":"tok-1"`), strings.Index(out, `"id":5`)
	if p < 0 || r < p || !strings.Contains(out, `"text":"done"`) {
		t.Fatalf("stream:\n%s\nwant the progress for tok-1, then the answer to id 5", out)
	}
	// JSON only: the answer alone.
	resp, out = f.rpc(t, context.Background(), "alice", sid, body, map[string]string{"Accept": "application/json"})
	if resp.Header.Get("Content-Type") != "application/json" || strings.Contains(out, "progress") || !strings.Contains(out, `"text":"done"`) {
		t.Fatalf("JSON answer: %s; want application/json, the answer alone", out)
	}
}

// Bad input gets a JSON-RPC error with the right status; a request without
// a verified caller gets 500.
func TestBadInput(t *testing.T) {
	f := newFixture(t, StdioOptions{MaxBodyBytes: 1 << 10})
	sid := f.session(t, "alice")
	ctx := context.Background()
	cases := []struct {
		name, user, sid, body string
		hdr                   map[string]string
		status                int
		want                  string
	}{
		{"no caller", "", sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil, 500, `"code":-32603`},
		{"batch", "alice", sid, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, nil, 400, "batches are not supported"},
		{"not JSON", "alice", sid, `{"jsonrpc":`, nil, 400, `"code":-32700`},
		{"not JSON-RPC", "alice", sid, `{"jsonrpc":"1.0","id":1,"method":"ping"}`, nil, 400, `"code":-32600`},
		{"bad id", "alice", sid, `{"jsonrpc":"2.0","id":{},"method":"ping"}`, nil, 400, `"code":-32600`},
		{"null id", "alice", sid, `{"jsonrpc":"2.0","id":null,"method":"ping"}`, nil, 400, `"code":-32600`},
		{"empty method", "alice", sid, `{"jsonrpc":"2.0","id":3,"method":""}`, nil, 400, `"id":3,"error":{"code":-32600`},
		{"duplicate method", "alice", sid, `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/list"}`, nil, 400, `"code":-32600`},
		{"too large", "alice", sid, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 2<<10) + `"}}`, nil, 413, "too large"},
		{"content type", "alice", sid, `{"jsonrpc":"2.0","id":1,"method":"ping"}`, map[string]string{"Content-Type": "text/plain"}, 415, "Content-Type"},
		{"initialize without version", "alice", "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, nil, 400, `"id":1`},
		{"ping", "alice", sid, `{"jsonrpc":"2.0","id":9,"method":"ping"}`, nil, 200, `"result":{}`},
		{"notification", "alice", sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, 202, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := f.rpc(t, ctx, c.user, c.sid, c.body, c.hdr)
			if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
				t.Fatalf("%d %s; want %d with %q", resp.StatusCode, body, c.status, c.want)
			}
			if c.status >= 400 && resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("content type %q, want application/json", resp.Header.Get("Content-Type"))
			}
		})
	}
	req, _ := http.NewRequest(http.MethodPut, f.srv.URL, nil)
	req.Header.Set("X-Test-User", "alice")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") == "" {
		t.Fatalf("PUT: %d, want 405 with Allow", resp.StatusCode)
	}
	if !strings.Contains(f.logs.String(), "without a verified caller") {
		t.Error("no log line for the missing caller")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []StdioOptions{
		{},
		{Command: []string{""}},
		{Command: []string{"x"}, Env: []string{"NOEQUALS"}},
		{Command: []string{"x"}, Env: []string{"MCPGATE_USER=admin"}},
		{Command: []string{"x"}, Env: []string{"HOME=/"}},
	} {
		o.Dir = t.TempDir()
		if _, err := NewStdio(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
}

// SEC-20: a path every server may read must not hold the users'
// directories or what the gateway keeps private, or Landlock would open
// them to all; an unknown isolation mode is refused.
func TestSEC20_NewRefusesOpenPrivatePaths(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data", "stdio")
	exe, _ := os.Executable()
	for _, o := range []StdioOptions{
		{Command: []string{exe}, Dir: dir, ReadPaths: []string{base}},
		{Command: []string{exe}, Dir: dir, ReadPaths: []string{dir}},
		{Command: []string{exe}, Dir: dir, Private: []string{filepath.Dir(exe)}},
		{Command: []string{exe}, Dir: dir, ReadPaths: []string{"relative/path"}},
		{Command: []string{exe}, Dir: dir, Isolation: "bogus"},
	} {
		if _, err := NewStdio(o); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", o)
		}
	}
	if _, err := NewStdio(StdioOptions{Command: []string{exe}, Dir: dir, ReadPaths: []string{filepath.Join(base, "elsewhere")}, Private: []string{filepath.Join(base, "data")}}); err != nil {
		t.Errorf("New with unrelated read and private paths: %v, want it accepted", err)
	}
}

// SEC-23: stdio_isolation none is said in the log, and as root says
// that the servers run as root with every capability; read paths, which
// only a confined server would be held to, are refused with none rather
// than silently ignored.
func TestSEC23_NoneWarnsAndRefusesConfinementSettings(t *testing.T) {
	exe, _ := os.Executable()
	if _, err := NewStdio(StdioOptions{Command: []string{exe}, Dir: t.TempDir(), Isolation: "none", ReadPaths: []string{"/opt"}}); err == nil {
		t.Error("none with read paths accepted, want an error")
	}
	logs := &syncBuffer{}
	p, err := NewStdio(StdioOptions{Command: []string{exe}, Dir: t.TempDir(), Isolation: "none", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(context.Background())
	if !strings.Contains(logs.String(), "stdio servers run unconfined") {
		t.Errorf("no warning that servers run unconfined: %s", logs)
	}
	if root := strings.Contains(logs.String(), "as root with every capability"); root != (os.Geteuid() == 0) {
		t.Errorf("root warning %v with euid %d: %s", root, os.Geteuid(), logs)
	}
}

// SEC-22: as root with uids, the gateway makes its data directory and
// the directories below it searchable, and never one above it: a data
// directory under a 0700 directory (as /root) is refused, naming it.
func TestSEC22_NewChangesOnlyTheDataDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run this test as root (CI does)")
	}
	exe, _ := os.Executable()
	open, err := os.MkdirTemp("", "mcpgate-bridge-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(open)
	os.Chmod(open, 0o755)
	home := filepath.Join(open, "root")
	data := filepath.Join(home, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	uids := sandbox.Range{First: 3100000, Last: 3100009}
	_, err = NewStdio(StdioOptions{Command: []string{exe}, Dir: filepath.Join(data, "stdio", "mcp"), UIDs: uids, Private: []string{data}})
	if err == nil || !strings.Contains(err.Error(), home+" ") {
		t.Errorf("NewStdio under a 0700 %s: %v, want a refusal naming it", home, err)
	}
	if fi, _ := os.Stat(home); fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want it left 0700", home, fi.Mode().Perm())
	}
	os.Chmod(home, 0o755)
	p, err := NewStdio(StdioOptions{Command: []string{exe}, Dir: filepath.Join(data, "stdio", "mcp"), UIDs: uids, Private: []string{data}})
	if err != nil {
		t.Fatal(err)
	}
	p.Close(context.Background())
	for _, d := range []string{data, filepath.Join(data, "stdio"), filepath.Join(data, "stdio", "mcp")} {
		if fi, _ := os.Stat(d); fi.Mode().Perm() != 0o701 {
			t.Errorf("%s: mode %v, want 0701", d, fi.Mode().Perm())
		}
	}
}

// SEC-20: a relative command is the one in the gateway's working
// directory, made absolute when the pool is made: that file is what runs
// (not one of that name in the user's HOME, the server's working
// directory) and its directory is what the servers may read, not ".".
func TestSEC20_RelativeCommandIsMadeAbsolute(t *testing.T) {
	wd := t.TempDir()
	if err := os.Symlink(os.Args[0], filepath.Join(wd, "server")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	f := &fixture{logs: &syncBuffer{}, dir: t.TempDir()}
	pool, err := NewStdio(StdioOptions{Command: []string{"./server"}, Env: []string{fakeEnv + "=server"}, Dir: f.dir, Resource: "/mcp", Logger: f.logger()})
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, pool)
	t.Chdir(t.TempDir()) // the pool holds the path it was given
	if e := envOf(t, f.connect(t, "alice", "", nil)); e.PID == 0 {
		t.Fatalf("the server did not run: %+v\n%s", e, f.logs)
	}
}

// The log says what confines the servers: the kernel's Landlock ABI when
// the pool is made, and for each server its ABI and uid.
func TestStartLogNamesConfinement(t *testing.T) {
	f := newFixture(t, StdioOptions{})
	envOf(t, f.connect(t, "alice", "", nil))
	abi, _ := sandbox.Available()
	for _, want := range []string{fmt.Sprintf("msg=\"stdio isolation\" resource=/mcp landlock_abi=%d", abi),
		fmt.Sprintf("confinement=\"landlock ABI %d", abi), "no capabilities\""} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("no %q in the log:\n%s", want, f.logs)
		}
	}
}

// A start failure gets 502 with no internal detail.
func TestStartFailure(t *testing.T) {
	p, err := NewStdio(StdioOptions{Command: []string{"/nonexistent/mcp-server"}, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initBody))
	req = req.WithContext(identity.WithCaller(req.Context(), users["alice"]))
	p.ServeHTTP(rec, req)
	if rec.Code != 502 || !strings.Contains(rec.Body.String(), `"code":-32603`) || strings.Contains(rec.Body.String(), "nonexistent") {
		t.Fatalf("%d %s; want 502, -32603, no detail", rec.Code, rec.Body)
	}
}

// A stdio command that is not found says so when the pool is made, not
// only at a client's first request, whose answer says "unavailable" and
// that the gateway's log says why. Silent before.
func TestStdioCommandNotFoundWarnedAtStart(t *testing.T) {
	f := &fixture{logs: &syncBuffer{}, dir: t.TempDir()}
	pool, err := NewStdio(StdioOptions{Command: []string{"mcpgate-no-such-command", "--x"}, Dir: f.dir, Resource: "/mcp", Logger: f.logger()})
	if err != nil {
		t.Fatal(err)
	}
	f.serve(t, pool)
	if logs := f.logs.String(); !strings.Contains(logs, "the command is not found") || !strings.Contains(logs, "mcpgate-no-such-command") {
		t.Errorf("no warning of the missing command at start:\n%s", logs)
	}
	resp, body := f.rpc(t, context.Background(), "alice", "", initBody, nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "the gateway's log says why") {
		t.Errorf("initialize with the command missing: %d %s, want 502 pointing to the log", resp.StatusCode, body)
	}
}
