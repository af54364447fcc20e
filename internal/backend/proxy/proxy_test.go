package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/metrics"
	"github.com/mcpgate/mcpgate/internal/metrics/metricstest"
)

var alice = &identity.Caller{
	User: identity.User{
		ID: "github:583231", Upstream: "github", Username: "alice", Name: "Alice",
		Email: "alice@example.com", EmailVerified: true, Groups: []string{"eng", "ops"},
	},
	ClientID: "https://claude.ai/oauth/claude-code-client-metadata",
	Scopes:   []string{"mcp"},
}

// asGuard simulates the resource guard: it puts c into the context.
func asGuard(h http.Handler, c *identity.Caller) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c != nil {
			r = r.WithContext(identity.WithCaller(r.Context(), c))
		}
		h.ServeHTTP(w, r)
	})
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// front starts the gateway side: the proxy to upstream behind asGuard.
func front(t testing.TB, upstream string, opts Options, c *identity.Caller) *httptest.Server {
	t.Helper()
	opts.Upstream = mustURL(t, upstream)
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(asGuard(h, c))
	t.Cleanup(s.Close)
	return s
}

// recorder is a raw backend that records the requests it gets.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (rec *recorder) handler(reply func(w http.ResponseWriter, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, r)
		rec.body = append(rec.body, b)
		rec.mu.Unlock()
		if reply != nil {
			reply(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.reqs)
}

func (rec *recorder) last(t *testing.T) (*http.Request, []byte) {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("the backend got no request")
	}
	return rec.reqs[len(rec.reqs)-1], rec.body[len(rec.body)-1]
}

// upstream starts backends that speak one protocol, and gateway fronts
// that reach them.
type upstream struct {
	h2 bool
	tr http.RoundTripper // trusts the last TLS backend started
}

// bothProtocols runs f with an http upstream (HTTP/1.1) and an https one
// that speaks HTTP/2.
func bothProtocols(t *testing.T, f func(t *testing.T, up *upstream)) {
	t.Run("http1", func(t *testing.T) { f(t, &upstream{}) })
	t.Run("h2", func(t *testing.T) { f(t, &upstream{h2: true}) })
}

func (u *upstream) backend(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	if !u.h2 {
		return backend(t, h)
	}
	s := httptest.NewUnstartedServer(h)
	s.EnableHTTP2 = true
	s.StartTLS()
	t.Cleanup(s.Close)
	u.tr = s.Client().Transport
	return s
}

func (u *upstream) scheme() string {
	if u.h2 {
		return "https"
	}
	return "http"
}

// front is the package's front with the transport that reaches u's
// backends, unless opts has one.
func (u *upstream) front(t testing.TB, upstream string, opts Options, c *identity.Caller) *httptest.Server {
	t.Helper()
	if opts.Transport == nil {
		opts.Transport = u.tr
	}
	return front(t, upstream, opts, c)
}

func backend(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func post(t *testing.T, url string, body string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkJSONRPCError checks a proxy-made error answer.
func checkJSONRPCError(t *testing.T, resp *http.Response, status, code int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d", resp.StatusCode, status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json", ct)
	}
	var m struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if m.JSONRPC != "2.0" || string(m.ID) != "null" || m.Error.Code != code || m.Error.Message == "" {
		t.Fatalf("JSON-RPC error %+v, want code %d and id null", m, code)
	}
}

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// sdkBackend is a session-ful go-sdk MCP server with the default
// DNS-rebinding protection on, whose tool "who" returns the identity
// headers it received.
func sdkBackend(t testing.TB) *httptest.Server {
	t.Helper()
	s := mcp.NewServer(&mcp.Implementation{Name: "backend", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "who"}, func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		h := req.Extra.Header
		text := h.Get("X-Forwarded-User") + "|" + h.Get("X-Forwarded-Client-Id") + "|" + h.Get("Authorization")
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}, nil, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(ctx context.Context, req *mcp.CallToolRequest, args struct {
		Text string `json:"text"`
	}) (*mcp.CallToolResult, any, error) {
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: args.Text}}}, nil, nil
	})
	return backend(t, mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
}

// authTransport adds the gateway's bearer token, as a real client would.
type authTransport struct{}

func (authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer gateway-token")
	return http.DefaultTransport.RoundTrip(r)
}

func TestSessionThroughProxyWithGoSDK(t *testing.T) {
	be := sdkBackend(t)
	var sessions []string
	var mu sync.Mutex
	seen := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			sessions = append(sessions, r.Header.Get("Mcp-Session-Id"))
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	opts := Options{Upstream: mustURL(t, be.URL+"/")}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	fe := httptest.NewServer(seen(asGuard(h, alice)))
	defer fe.Close()

	ctx := context.Background()
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   fe.URL + "/mcp",
		HTTPClient: &http.Client{Transport: authTransport{}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if cs.ID() == "" {
		t.Fatal("initialize through the proxy returned no Mcp-Session-Id")
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "who"})
	if err != nil {
		t.Fatal(err)
	}
	got := res.Content[0].(*mcp.TextContent).Text
	if want := alice.User.ID + "|" + alice.ClientID + "|"; got != want {
		t.Fatalf("backend saw %q, want %q (identity set, no Authorization)", got, want)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	if err != nil || res.Content[0].(*mcp.TextContent).Text != "hi" {
		t.Fatalf("echo: %v %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var with int
	for _, s := range sessions {
		if s == cs.ID() {
			with++
		}
	}
	if with < 2 {
		t.Fatalf("requests after initialize did not carry the session id %q: %q", cs.ID(), sessions)
	}
}

// The go-sdk refuses a non-loopback Host on loopback: the proxy must send
// the upstream's own Host whatever name the client used for the gateway.
func TestUpstreamHostSentToGoSDK(t *testing.T) {
	be := sdkBackend(t)
	fe := front(t, be.URL, Options{}, alice)
	req, _ := http.NewRequest("POST", fe.URL+"/mcp", strings.NewReader(initBody))
	req.Host = "mcp.example.com"
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatal("no Mcp-Session-Id in the proxied initialize answer")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" && ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

// The upstream's URL decides the path and host, and its query, when it
// has one, is the whole query: a client's parameters would override the
// operator's (SEC-156). Without one, the client's query goes on.
func TestRewriteTargetPathQueryHost(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL+"/up/mcp?tenant=a&read_only=true", Options{}, alice)
	for _, q := range []string{"x=1", "tenant=b&read_only=false", "Tenant=b;read_only=false", ""} {
		resp := post(t, fe.URL+"/mcp/other?"+q, "{}", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		r, _ := rec.last(t)
		if r.URL.Path != "/up/mcp" || r.URL.RawQuery != "tenant=a&read_only=true" {
			t.Errorf("SEC-156: the client's ?%s: backend got %s?%s, want the operator's query alone", q, r.URL.Path, r.URL.RawQuery)
		}
		if r.Host != mustURL(t, be.URL).Host {
			t.Fatalf("backend got Host %q", r.Host)
		}
	}
	fe = front(t, be.URL+"/up/mcp", Options{}, alice)
	post(t, fe.URL+"/mcp?x=1&y=2", "{}", nil)
	if r, _ := rec.last(t); r.URL.RawQuery != "x=1&y=2" {
		t.Errorf("without an operator's query: backend got ?%s, want the client's x=1&y=2", r.URL.RawQuery)
	}
}

func TestPASS2_StripsAuthorizationCookieAndHopByHop(t *testing.T) {
	bothProtocols(t, testPASS2)
}

func testPASS2(t *testing.T, up *upstream) {
	var opts Options
	rec := &recorder{}
	be := up.backend(t, rec.handler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Up-Hop")
		w.Header().Set("X-Up-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Backend", "kept")
		w.Header().Set("Mcp-Session-Id", "sess-1")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	fe := up.front(t, be.URL, opts, alice)
	// The first answer hands out sess-1, which binds it to alice (SESS-3).
	post(t, fe.URL+"/mcp", `{"jsonrpc":"2.0","id":0,"method":"initialize"}`, nil).Body.Close()
	resp := post(t, fe.URL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, map[string]string{
		"Authorization":        "Bearer gateway-token",
		"Cookie":               "mcpgate_session=secret",
		"Proxy-Authorization":  "Basic eDp5",
		"Connection":           "X-Client-Hop",
		"X-Client-Hop":         "1",
		"Keep-Alive":           "timeout=5",
		"Upgrade":              "websocket",
		"Origin":               "http://localhost:6274",
		"Sec-Fetch-Site":       "cross-site",
		"Mcp-Session-Id":       "sess-1",
		"Mcp-Protocol-Version": "2025-06-18",
		"Last-Event-ID":        "ev-7",
		"X-Custom":             "kept",
		"X-Forwarded-For":      "10.0.0.1",
		"Forwarded":            "for=10.0.0.1",
	})
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp))
	}
	r, body := rec.last(t)
	for _, h := range []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Client-Hop", "Keep-Alive", "Upgrade", "Origin", "Sec-Fetch-Site", "X-Forwarded-For", "Forwarded"} {
		if v := r.Header.Values(h); len(v) > 0 {
			t.Errorf("backend got %s: %q", h, v)
		}
	}
	for h, want := range map[string]string{
		"Mcp-Session-Id":       "sess-1",
		"Mcp-Protocol-Version": "2025-06-18",
		"Last-Event-Id":        "ev-7",
		"Accept":               "application/json, text/event-stream",
		"Content-Type":         "application/json",
		"X-Custom":             "kept",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("backend got %s %q, want %q", h, got, want)
		}
	}
	if string(body) != `{"jsonrpc":"2.0","id":1,"method":"ping"}` {
		t.Errorf("backend got body %q", body)
	}
	if up.h2 && r.ProtoMajor != 2 {
		t.Errorf("the https upstream got %s, want HTTP/2", r.Proto)
	}
	hops := []string{"X-Up-Hop", "Keep-Alive"}
	if up.h2 {
		// HTTP/2 has no connection-specific headers: the upstream's server
		// drops Connection itself, and X-Up-Hop is an ordinary header.
		hops = hops[1:]
	}
	for _, h := range hops {
		if v := resp.Header.Values(h); len(v) > 0 {
			t.Errorf("client got %s: %q", h, v)
		}
	}
	if resp.Header.Get("X-Backend") != "kept" || resp.Header.Get("Mcp-Session-Id") != "sess-1" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("client got headers %v", resp.Header)
	}
}

func TestIdentityHeadersReplaceSpoofedOnes(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	bob := &identity.Caller{
		User:     identity.User{ID: "local:bob", Username: "bob", Email: "bob@example.com", EmailVerified: false, Groups: []string{"dev", "a,b", "qa"}},
		ClientID: "client-1",
	}
	fe := front(t, be.URL, Options{}, bob)
	req, _ := http.NewRequest("POST", fe.URL+"/mcp", strings.NewReader("{}"))
	req.Header.Set("X-Forwarded-User", "local:admin")
	req.Header.Set("x-forwarded-email", "admin@example.com")
	req.Header.Set("X-Forwarded-Groups", "admins")
	req.Header.Set("X-Forwarded-Client-Id", "trusted")
	req.Header["X_Forwarded_User"] = []string{"local:admin"}
	req.Header["x_forwarded_preferred_username"] = []string{"admin"}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := rec.last(t)
	want := http.Header{
		"X-Forwarded-User":               {"local:bob"},
		"X-Forwarded-Preferred-Username": {"bob"},
		"X-Forwarded-Groups":             {"dev,a%2Cb,qa"}, // SEC-74: encoded, never dropped
		"X-Forwarded-Client-Id":          {"client-1"},
	}
	for k, v := range want {
		if got := r.Header.Values(k); len(got) != 1 || got[0] != v[0] {
			t.Errorf("backend got %s %q, want %q", k, got, v)
		}
	}
	if got := r.Header.Values("X-Forwarded-Email"); len(got) > 0 {
		t.Errorf("backend got an unverified or spoofed email %q", got)
	}
	for k := range r.Header {
		if strings.Contains(k, "_") {
			t.Errorf("backend got the underscore spelling %s: %q", k, r.Header[k])
		}
	}
}

// SEC-191: a value with blanks at either end is not forwarded: HTTP trims
// them, and the backend would read "admin " as the user "admin". Before,
// X-Forwarded-Preferred-Username reached it as "admin".
func TestIdentityValueWithOuterBlanksNotForwarded(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	mallory := &identity.Caller{User: identity.User{ID: "corp:8f3e", Username: "admin ", Email: "\tm@example.com", EmailVerified: true}, ClientID: "client-1"}
	fe := front(t, be.URL, Options{}, mallory)
	resp, err := http.Post(fe.URL+"/mcp", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	r, _ := rec.last(t)
	for _, k := range []string{"X-Forwarded-Preferred-Username", "X-Forwarded-Email"} {
		if got := r.Header.Values(k); len(got) > 0 {
			t.Errorf("backend got %s %q from a value with outer blanks, want none", k, got)
		}
	}
	if got := r.Header.Get("X-Forwarded-User"); got != "corp:8f3e" {
		t.Errorf("backend got X-Forwarded-User %q, want corp:8f3e", got)
	}
}

func TestIdentityHeadersCustomNames(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL, Options{IdentityHeaders: IdentityHeaders{User: "x-remote-user", Groups: "-"}}, alice)
	resp := post(t, fe.URL, "{}", map[string]string{"X-Remote-User": "spoof", "X-Forwarded-Groups": "passes-as-unknown"})
	readAll(t, resp)
	r, _ := rec.last(t)
	if got := r.Header.Values("X-Remote-User"); len(got) != 1 || got[0] != alice.User.ID {
		t.Errorf("X-Remote-User %q, want %q", got, alice.User.ID)
	}
	if got := r.Header.Get("X-Forwarded-Email"); got != alice.User.Email {
		t.Errorf("verified email %q, want %q", got, alice.User.Email)
	}
	// Groups disabled and the user header renamed: nothing is sent under
	// the default names, and a client's header of a default name is
	// removed too: a backend written for the defaults may still read it.
	for _, k := range []string{"X-Forwarded-Groups", "X-Forwarded-User"} {
		if got := r.Header.Values(k); len(got) != 0 {
			t.Errorf("%s %q, want none", k, got)
		}
	}
}

// SESS-3: the session check reads one Mcp-Session-Id; a request with two
// is refused, and another spelling of the header never reaches the
// upstream, which might read it as the session.
func TestOneSessionHeaderOnly(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL, Options{}, alice)
	req, _ := http.NewRequest("POST", fe.URL, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("Mcp-Session-Id", "one")
	req.Header.Add("Mcp-Session-Id", "two")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	checkJSONRPCError(t, resp, 400, -32600)
	if rec.count() != 0 {
		t.Fatal("a request with two session ids reached the backend, want it refused")
	}
	resp = post(t, fe.URL, "{}", map[string]string{"Mcp_Session_Id": "alices-session"})
	readAll(t, resp)
	r, _ := rec.last(t)
	for k := range r.Header {
		if strings.EqualFold(strings.ReplaceAll(k, "_", "-"), "Mcp-Session-Id") {
			t.Errorf("backend got %s: %q, want no session header", k, r.Header[k])
		}
	}
}

// SEC-202: the MCP headers the gateway checks against the body (TRANS-2)
// pass under their canonical spelling alone: Mcp_Name: secret beside a
// checked Mcp-Name: ok reached the upstream, where a server that folds _
// into - (CGI, WSGI) could act on the other name. Fails before: the
// underscore spellings reached the backend.
func TestSEC202_CheckedMCPHeadersCanonicalOnly(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL, Options{}, alice)
	resp := post(t, fe.URL, "{}", map[string]string{"Mcp-Name": "ok", "Mcp_Name": "secret", "Mcp-Method": "tools/call", "mcp_method": "tools/list",
		"Mcp_Protocol_Version": "2024-11-05", "Mcp-Protocol-Version": "2025-06-18"})
	readAll(t, resp)
	r, _ := rec.last(t)
	for k, v := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "mcp_") {
			t.Errorf("backend got %s: %q, want only the canonical spellings", k, v)
		}
	}
	if r.Header.Get("Mcp-Name") != "ok" || r.Header.Get("Mcp-Method") != "tools/call" || r.Header.Get("Mcp-Protocol-Version") != "2025-06-18" {
		t.Errorf("backend got Mcp-Name %q, Mcp-Method %q, Mcp-Protocol-Version %q; want the canonical ones passed",
			r.Header.Get("Mcp-Name"), r.Header.Get("Mcp-Method"), r.Header.Get("Mcp-Protocol-Version"))
	}
}

func TestNoCallerIs500AndNeverForwarded(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL, Options{}, nil)
	resp := post(t, fe.URL+"/mcp", "{}", map[string]string{"X-Forwarded-User": "local:admin"})
	checkJSONRPCError(t, resp, 500, -32603)
	if rec.count() != 0 {
		t.Fatal("a request without a caller reached the backend")
	}
}

func TestSSEEventsFlushedImmediately(t *testing.T) {
	bothProtocols(t, testSSEEventsFlushedImmediately)
}

func testSSEEventsFlushedImmediately(t *testing.T, up *upstream) {
	var opts Options
	release := make(chan struct{})
	be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		io.WriteString(w, "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "id: 2\ndata: last\n\n")
	}))
	// Timeout shorter than the stream: it bounds only the headers.
	opts.Timeout = 50 * time.Millisecond
	fe := up.front(t, be.URL, opts, alice)
	req, _ := http.NewRequest("GET", fe.URL+"/mcp", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	var first []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the first event: %v", err)
		}
		if line == "\n" {
			break
		}
		first = append(first, line)
	}
	if len(first) != 3 || first[0] != "id: 1\n" {
		t.Fatalf("first event %q", first)
	}
	// The backend is still blocked: the event came through unbuffered.
	close(release)
	rest, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(rest) != "id: 2\ndata: last\n\n" {
		t.Fatalf("rest of stream %q", rest)
	}
}

func TestTrailingSlashRedirectFollowedOnce(t *testing.T) {
	bothProtocols(t, testTrailingSlashRedirectFollowedOnce)
}

func testTrailingSlashRedirectFollowedOnce(t *testing.T, up *upstream) {
	var opts Options
	for _, tc := range []struct{ name, upstream, target string }{
		{"add slash", "/mcp", "/mcp/"},
		{"drop slash", "/mcp/", "/mcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var redirects int
			mux := http.NewServeMux()
			mux.HandleFunc(tc.upstream, func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				redirects++
				mu.Unlock()
				io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, tc.target+"?"+r.URL.RawQuery, http.StatusPermanentRedirect)
			})
			mux.HandleFunc(tc.target, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Seen", r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Forwarded-User"))
				w.Write(b)
			})
			be := up.backend(t, mux)
			fe := up.front(t, be.URL+tc.upstream, opts, alice)
			resp := post(t, fe.URL+"/mcp?q=1", `{"jsonrpc":"2.0","id":3,"method":"ping"}`, nil)
			body := readAll(t, resp)
			if resp.StatusCode != 200 || body != `{"jsonrpc":"2.0","id":3,"method":"ping"}` {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("X-Seen"), "POST "+tc.target+"?q=1 "+alice.User.ID; got != want {
				t.Fatalf("target saw %q, want %q", got, want)
			}
			if redirects != 1 {
				t.Fatalf("%d redirects", redirects)
			}
		})
	}
}

func TestOtherRedirectsPassedUnchanged(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/other", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://other.example/other/", http.StatusPermanentRedirect)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop/", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/loop/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/found", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/found/", http.StatusFound)
	})
	be := backend(t, mux)
	for path, want := range map[string]string{
		"/mcp":   "/elsewhere",
		"/other": "http://other.example/other/",
		"/loop":  "/loop", // followed once, then passed on
		"/found": "/found/",
	} {
		fe := front(t, be.URL+path, Options{}, alice)
		resp := post(t, fe.URL+"/mcp", "{}", nil)
		readAll(t, resp)
		if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != want {
			t.Errorf("%s: status %d Location %q, want %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestBodyLimit413(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL, Options{MaxBodyBytes: 1024}, alice)

	resp := post(t, fe.URL, strings.Repeat("x", 1025), nil)
	checkJSONRPCError(t, resp, 413, -32600)

	// Chunked, no Content-Length: caught while reading.
	req, _ := http.NewRequest("POST", fe.URL, io.MultiReader(strings.NewReader(strings.Repeat("y", 2000))))
	req.ContentLength = -1
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	checkJSONRPCError(t, resp2, 413, -32600)
	if rec.count() != 0 {
		t.Fatal("an oversized body reached the backend")
	}

	resp3 := post(t, fe.URL, strings.Repeat("z", 1024), nil)
	readAll(t, resp3)
	if resp3.StatusCode != 200 {
		t.Fatalf("a body of exactly the limit: status %d", resp3.StatusCode)
	}
	if _, b := rec.last(t); len(b) != 1024 {
		t.Fatalf("backend got %d bytes", len(b))
	}
	// Chunked within the limit is forwarded with its length.
	req, _ = http.NewRequest("POST", fe.URL, io.MultiReader(strings.NewReader("{}")))
	req.ContentLength = -1
	resp4, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp4.Body.Close()
	if r, b := rec.last(t); resp4.StatusCode != 200 || string(b) != "{}" || r.ContentLength != 2 {
		t.Fatalf("chunked body: status %d, backend got %q (length %d)", resp4.StatusCode, b, r.ContentLength)
	}
}

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

func TestUpstreamDownIs502Quickly(t *testing.T) {
	bothProtocols(t, testUpstreamDownIs502Quickly)
}

func testUpstreamDownIs502Quickly(t *testing.T, up *upstream) {
	var opts Options
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs syncBuffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	opts.Metrics, opts.Resource = metrics.New(), "/mcp"
	fe := up.front(t, up.scheme()+"://"+addr+"/mcp", opts, alice)

	start := time.Now()
	resp := post(t, fe.URL+"/mcp", "{}", nil)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("answered after %v", d)
	}
	raw := readAll(t, resp)
	if want := string(errUnavailable); raw != want {
		t.Fatalf("body %q, want %q", raw, want)
	}
	resp.Body = io.NopCloser(strings.NewReader(raw))
	checkJSONRPCError(t, resp, 502, -32603)
	if !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("the log lacks the cause: %s", logs.String())
	}
	if got := metricstest.Gather(t, opts.Metrics.Registry()).Value("mcpgate_backend_errors_total", "resource", "/mcp", "kind", "unavailable"); got != 1 {
		t.Errorf("backend_errors{/mcp,unavailable} = %v, want 1", got)
	}
}

func TestUpstreamHeaderTimeoutIs504(t *testing.T) {
	bothProtocols(t, testUpstreamHeaderTimeoutIs504)
}

func testUpstreamHeaderTimeoutIs504(t *testing.T, up *upstream) {
	var opts Options
	release := make(chan struct{})
	be := up.backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(release) }) // runs before be.Close
	opts.Timeout = 100 * time.Millisecond
	fe := up.front(t, be.URL, opts, alice)
	start := time.Now()
	resp := post(t, fe.URL, "{}", nil)
	checkJSONRPCError(t, resp, 504, -32603)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("answered after %v", d)
	}
}

func TestNewRejectsBadUpstream(t *testing.T) {
	for _, u := range []string{"", "ftp://127.0.0.1/mcp", "/mcp", "http://user:pw@127.0.0.1/mcp"} {
		var opts Options
		if u != "" {
			opts.Upstream = mustURL(t, u)
		}
		if _, err := New(opts); err == nil {
			t.Errorf("New accepted upstream %q", u)
		}
	}
}

func BenchmarkProxyToolsCall(b *testing.B) {
	be := sdkBackend(b)
	fe := front(b, be.URL, Options{}, alice)
	for _, tc := range []struct{ name, url string }{{"direct", be.URL}, {"proxied", fe.URL + "/mcp"}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			client := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil)
			cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
				Endpoint: tc.url, DisableStandaloneSSE: true,
				HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer cs.Close()
			params := &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := cs.CallTool(ctx, params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// SESS-3: a session an upstream hands out is bound to the user who opened
// it: another user, an unknown id, and a deleted session get 404.
func TestSESS3_SessionBoundToOpener(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") == "" {
			w.Header().Set("Mcp-Session-Id", "sess-A")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	h, err := New(Options{Upstream: mustURL(t, be.URL)})
	if err != nil {
		t.Fatal(err)
	}
	bob := &identity.Caller{User: identity.User{ID: "local:bob"}}
	asAlice := httptest.NewServer(asGuard(h, alice))
	asBob := httptest.NewServer(asGuard(h, bob))
	t.Cleanup(asAlice.Close)
	t.Cleanup(asBob.Close)

	resp := post(t, asAlice.URL, `{"jsonrpc":"2.0","id":1,"method":"initialize"}`, nil)
	resp.Body.Close()
	if resp.Header.Get("Mcp-Session-Id") != "sess-A" {
		t.Fatalf("session id not passed through: %q", resp.Header.Get("Mcp-Session-Id"))
	}
	status := func(srv *httptest.Server, method, sid string) int { return sessionStatus(t, srv.URL, method, sid) }
	if s := status(asBob, "POST", "sess-A"); s != 404 {
		t.Fatalf("bob used alice's session: %d", s)
	}
	if s := status(asAlice, "POST", "sess-unknown"); s != 404 {
		t.Fatalf("unknown session: %d", s)
	}
	if s := status(asAlice, "POST", "sess-A"); s != 200 {
		t.Fatalf("alice's own session: %d", s)
	}
	if s := status(asAlice, "DELETE", "sess-A"); s != 200 {
		t.Fatalf("delete: %d", s)
	}
	if s := status(asAlice, "POST", "sess-A"); s != 404 {
		t.Fatalf("a deleted session still works: %d", s)
	}
}

// SEC-35, SESS-3: a DELETE ends the session's binding whatever the
// upstream answers short of failing: one that refuses DELETE (405, as MCP
// allows) keeps the session on its side, but the gateway no longer lets
// anyone use it, so that the per-user cap, which ends sessions with a
// DELETE, holds. A failed DELETE (5xx) keeps the binding. Fails before
// this change: after the 405 the session still worked.
func TestDeleteRefusedByUpstreamEndsBinding(t *testing.T) {
	var fail atomic.Bool
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			if fail.Load() {
				http.Error(w, "down", http.StatusBadGateway)
				return
			}
			http.Error(w, "sessions end on their own", http.StatusMethodNotAllowed)
			return
		}
		if sid := r.Header.Get("Mcp-Session-Id"); sid == "" {
			w.Header().Set("Mcp-Session-Id", "sess-"+r.URL.Query().Get("n"))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	h, err := New(Options{Upstream: mustURL(t, be.URL)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(asGuard(h, alice))
	t.Cleanup(srv.Close)
	status := func(method, query, sid string) int { return sessionStatus(t, srv.URL+query, method, sid) }
	for _, n := range []string{"A", "B"} {
		if s := status("POST", "?n="+n, ""); s != 200 {
			t.Fatalf("opening session %s: %d", n, s)
		}
	}
	if s := status("DELETE", "", "sess-A"); s != http.StatusMethodNotAllowed {
		t.Fatalf("DELETE refused by the upstream: %d, want its 405", s)
	}
	if s := status("POST", "", "sess-A"); s != 404 {
		t.Errorf("a session whose DELETE the upstream refused: %d, want 404 (the binding ended)", s)
	}
	fail.Store(true)
	if s := status("DELETE", "", "sess-B"); s != http.StatusBadGateway {
		t.Fatalf("DELETE failing upstream: %d, want its 502", s)
	}
	if s := status("POST", "", "sess-B"); s != 200 {
		t.Errorf("a session whose DELETE failed upstream: %d, want 200 (still bound)", s)
	}
}

// sessionStatus sends a ping with method to u in session sid (none if
// empty) and returns the status.
func sessionStatus(t *testing.T, u, method, sid string) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func TestSessionOwnersBounded(t *testing.T) {
	now := time.Unix(0, 0)
	s := newSessionOwners(3, time.Hour, func() time.Time { return now })
	for i := 0; i < 10; i++ {
		now = now.Add(time.Second)
		s.bind(t.Context(), string(rune('a'+i)), "u")
		if len(s.owners) > 3 {
			t.Fatalf("%d sessions kept", len(s.owners))
		}
	}
	if ok, _ := s.allowed(t.Context(), "j", "u"); !ok {
		t.Fatal("the newest session must stay")
	}
	if ok, _ := s.allowed(t.Context(), "a", "u"); ok {
		t.Fatal("the oldest session must go")
	}
}

// BenchmarkProxyCopyBuffers is the reason for copyBuffers: one POST
// answered with an event, as MCP servers answer tools/call, through the
// proxy with ReverseProxy's copy buffers recycled, and allocated per
// answer as it does without a BufferPool.
func BenchmarkProxyCopyBuffers(b *testing.B) {
	be := backend(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n")
	}))
	for _, pooled := range []bool{true, false} {
		b.Run(map[bool]string{true: "pooled", false: "allocated"}[pooled], func(b *testing.B) {
			h, err := New(Options{Upstream: mustURL(b, be.URL)})
			if err != nil {
				b.Fatal(err)
			}
			if !pooled {
				h.(*handler).rp.BufferPool = nil
			}
			fe := httptest.NewServer(asGuard(h, alice))
			defer fe.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(fe.URL, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// SEC-33: what a client says about its address or the hops before it
// (X-Real-IP, Forwarded, any X-Forwarded-*, in any spelling) never
// reaches the upstream, which may log it or trust it; the identity
// headers the gateway sets under X-Forwarded-* names still do.
func TestSEC33_ClientAddressHeadersStripped(t *testing.T) {
	rec := &recorder{}
	be := backend(t, rec.handler(nil))
	fe := front(t, be.URL, Options{}, alice)
	req, _ := http.NewRequest("POST", fe.URL, strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	spoofed := []string{"X-Real-IP", "X_Real_IP", "x-real-ip", "Forwarded", "forwarded", "X-Forwarded-For", "X_Forwarded_For",
		"X-Forwarded-Host", "X-Forwarded-Proto", "X-Forwarded-Port", "X-Forwarded-Server", "x_forwarded_prefix", "X-Forwarded-User"}
	for _, k := range spoofed {
		req.Header[k] = []string{"10.6.6.6"}
	}
	req.Header.Set("X-Forwardedish", "kept") // not one of them
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	r, _ := rec.last(t)
	for k, v := range r.Header {
		if strings.Contains(strings.Join(v, ","), "10.6.6.6") {
			t.Errorf("upstream got %s: %q, want the client's address headers removed", k, v)
		}
	}
	if got := r.Header.Get("X-Forwarded-User"); got != alice.User.ID {
		t.Errorf("X-Forwarded-User %q, want the gateway's %q", got, alice.User.ID)
	}
	if got := r.Header.Get("X-Forwardedish"); got != "kept" {
		t.Errorf("X-Forwardedish %q, want an unrelated header kept", got)
	}
}

// PASS-2: a client's request trailers never reach the upstream, over
// HTTP/1.1 or HTTP/2, where they would carry identity header names the
// gateway did not set. Fails before this change over HTTP/2: the upstream
// got X-Forwarded-User: local:admin as a trailer.
func TestClientTrailersNeverForwarded(t *testing.T) {
	bothProtocols(t, func(t *testing.T, up *upstream) {
		rec := &recorder{}
		be := up.backend(t, rec.handler(nil))
		gw := up.front(t, be.URL+"/mcp", Options{}, &identity.Caller{User: identity.User{ID: "local:mallory"}, ClientID: "c"})
		conn, err := net.Dial("tcp", gw.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
		fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nTrailer: X-Forwarded-User\r\n\r\n"+
			"%x\r\n%s\r\n0\r\nX-Forwarded-User: local:admin\r\nX-Mcpgate-Identity: forged\r\n\r\n", len(body), body)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r, _ := rec.last(t)
		if len(r.Trailer) != 0 || r.Header.Get("X-Forwarded-User") != "local:mallory" {
			t.Errorf("the upstream got trailers %v and X-Forwarded-User %q, want no trailer and local:mallory", r.Trailer, r.Header.Get("X-Forwarded-User"))
		}
	})
}
