package mcpgate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

const (
	testUser     = "alice"
	testPassword = "correct horse battery staple"
	redirectURI  = "http://127.0.0.1:33418/callback"
)

// clock is a settable time source for expiry tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects log output from concurrent handlers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

type gw struct {
	t      *testing.T
	srv    *httptest.Server
	url    string // http://127.0.0.1:PORT
	clock  *clock
	logs   *syncBuffer
	gw     *mcpgate.Gateway
	client *http.Client
	local  *local.Connector
	store  store.Store // the gateway's, after the options
}

// on returns g for subtest t: the helpers then report to t, and a fatal
// failure in one case ends that case only.
func (g *gw) on(t *testing.T) *gw {
	c := *g
	c.t = t
	return &c
}

func localConnector(g *gw) *local.Connector { return g.local }

type gwOption func(*mcpgate.Config)

func newGateway(t *testing.T, opts ...gwOption) *gw {
	t.Helper()
	return newGatewayOn(t, nil, opts...)
}

// loopback is a listener on a free loopback port and its http:// URL, for
// a test that must know a gateway's address before it is built.
func loopback(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// hashed returns a bcrypt hash of password, made once per test binary:
// SetUser stores a hash as it is, and under the race detector a hash at
// bcrypt's cost of 10 takes about a second to make.
func hashed(password string) string {
	f, _ := hashes.LoadOrStore(password, sync.OnceValue(func() string {
		h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
		if err != nil {
			panic(err)
		}
		return string(h)
	}))
	return f.(func() string)()
}

var hashes sync.Map // password → func() string, its hash made once

// newGatewayOn is newGateway serving on ln, when a test must know the
// gateway's URL before it is built (an upstream's registered callback).
func newGatewayOn(t *testing.T, ln net.Listener, opts ...gwOption) *gw {
	t.Helper()
	ctx := context.Background()
	st := memory.New()
	clk := &clock{now: time.Now()}
	logs := &syncBuffer{}
	lc := local.New(st, local.Options{Now: clk.Now})
	if err := lc.SetUser(ctx, testUser, hashed(testPassword)); err != nil {
		t.Fatal(err)
	}
	cfg := mcpgate.Config{
		Store:      st,
		SecretKey:  bytes.Repeat([]byte{7}, 32),
		Connectors: []upstream.Connector{lc},
		Logger:     slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        clk.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := mcpgate.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// After the server's close, registered below: Close wants no request
	// in flight. Its follower of revocations (SEC-80) ends with it.
	t.Cleanup(func() {
		if err := g.Close(context.Background()); err != nil {
			t.Errorf("closing the gateway: %v", err)
		}
	})
	srv := httptest.NewUnstartedServer(g)
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &gw{t: t, srv: srv, url: srv.URL, clock: clk, logs: logs, gw: g,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, local: lc, store: cfg.Store}
}

// localhostURL is the same server reached through the name localhost.
func (g *gw) localhostURL() string { return strings.Replace(g.url, "127.0.0.1", "localhost", 1) }

func (g *gw) do(req *http.Request) (*http.Response, []byte) {
	g.t.Helper()
	resp, err := g.client.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

func (g *gw) get(u string, header ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return g.do(req)
}

func (g *gw) postForm(u string, form url.Values, header ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return g.do(req)
}

func (g *gw) postJSON(u string, body any) (*http.Response, []byte) {
	g.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", u, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	return g.do(req)
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return v
}

type registered struct {
	ClientID     string   `json:"client_id"`
	ClientSecret string   `json:"client_secret"`
	RedirectURIs []string `json:"redirect_uris"`
	AuthMethod   string   `json:"token_endpoint_auth_method"`
}

// register registers a public client (DCR) with redirectURI.
func (g *gw) register(extra map[string]any) registered {
	g.t.Helper()
	body := map[string]any{
		"client_name": "Test Client", "redirect_uris": []string{redirectURI},
		"token_endpoint_auth_method": "none", "application_type": "native",
	}
	for k, v := range extra {
		body[k] = v
	}
	resp, b := g.postJSON(g.url+"/register", body)
	if resp.StatusCode != 201 {
		g.t.Fatalf("register: %d %s, want 201", resp.StatusCode, b)
	}
	return decode[registered](g.t, b)
}

// authRequest is one /authorize request with its PKCE verifier.
type authRequest struct {
	ClientID, Redirect, Verifier, State, Resource, Scope string
	base                                                 string
}

func (g *gw) newAuth(clientID string) *authRequest {
	return &authRequest{ClientID: clientID, Redirect: redirectURI, Verifier: tokens.NewSecret() + "-pkce",
		State: tokens.NewID(), Resource: g.url + "/mcp", base: g.url}
}

func (a *authRequest) URL() string {
	q := url.Values{}
	q.Set("response_type", "code")
	q.Set("client_id", a.ClientID)
	q.Set("redirect_uri", a.Redirect)
	q.Set("code_challenge", tokens.S256(a.Verifier))
	q.Set("code_challenge_method", "S256")
	q.Set("state", a.State)
	if a.Resource != "" {
		q.Set("resource", a.Resource)
	}
	if a.Scope != "" {
		q.Set("scope", a.Scope)
	}
	return a.base + "/authorize?" + q.Encode()
}

// login walks the consent and login pages with a fresh browser and
// returns the code.
func (g *gw) login(a *authRequest) (code string, b *browser.Browser) {
	g.t.Helper()
	b = browser.New(testUser, testPassword)
	code, state, iss, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		g.t.Fatalf("authorize: %v", err)
	}
	if state != a.State {
		g.t.Fatalf("REDIR-5: state %q, want %q", state, a.State)
	}
	if iss != a.base { // ISS-1, ISS-3: exactly the metadata issuer
		g.t.Fatalf("ISS-1: iss %q, want %q", iss, a.base)
	}
	return code, b
}

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
	Error        string `json:"error"`
}

func (g *gw) exchange(a *authRequest, code string) (*http.Response, tokenResponse) {
	g.t.Helper()
	resp, b := g.postForm(a.base+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.ClientID},
		"redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}, "resource": {a.Resource},
	})
	return resp, decode[tokenResponse](g.t, b)
}

func (g *gw) refresh(clientID, rt string, extra url.Values) (*http.Response, tokenResponse) {
	g.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
	for k, v := range extra {
		form[k] = v
	}
	resp, b := g.postForm(g.url+"/token", form)
	return resp, decode[tokenResponse](g.t, b)
}

// tokens runs a whole flow for a fresh client and returns its tokens.
func (g *gw) fullFlow() (registered, *authRequest, tokenResponse) {
	g.t.Helper()
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		g.t.Fatalf("token: %d %+v, want 200 with an access token", resp.StatusCode, tok)
	}
	return c, a, tok
}

// mcpSession opens an MCP session at the gateway with token and returns
// its Mcp-Session-Id.
func (g *gw) mcpSession(token string) string {
	g.t.Helper()
	resp, body := g.mcpInitialize(g.url, token)
	sid := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != 200 || sid == "" {
		g.t.Fatalf("initialize: %d, session %q: %s; want 200 with an Mcp-Session-Id", resp.StatusCode, sid, body)
	}
	return sid
}

// mcpInitialize posts an MCP initialize with token (if any).
func (g *gw) mcpInitialize(base, token string, header ...string) (*http.Response, []byte) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return g.do(req)
}

type mcpgateConfig = mcpgate.Config

func newReq(t *testing.T, method, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func callerFromContext(r *http.Request) *identity.Caller {
	return mcpgate.CallerFromContext(r.Context())
}

// withStore fills the required parts of a Config for construction tests.
func withStore(c mcpgate.Config) mcpgate.Config {
	st := memory.New()
	c.Store = st
	c.SecretKey = bytes.Repeat([]byte{1}, 32)
	c.Connectors = []upstream.Connector{local.New(st, local.Options{})}
	return c
}

// codeAtProvider walks the authorization request a with a fresh browser
// to the OpenID provider op, signs sub in there, and returns the code the
// gateway's callback sent to the client.
func codeAtProvider(t *testing.T, ctx context.Context, op *oidctest.Provider, a *authRequest, sub string) string {
	t.Helper()
	b := browser.New("", "")
	toProvider, err := b.Walk(ctx, a.URL(), op.Issuer()+"/")
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	done, err := b.Walk(ctx, op.Login(t, b.Client, toProvider.String(), sub).String(), a.Redirect)
	if err != nil || done.Query().Get("code") == "" {
		t.Fatalf("the provider's callback: %v, %v; want a code", done, err)
	}
	return done.Query().Get("code")
}
