package mcpgate_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// Behind a TLS proxy on loopback with --public-url, requests carry the
// public Host: the whole flow works, the issuer and audience are the public
// URL, the cookies are __Host- and Secure (DEP-4), and the MCP server
// accepts the public Host. The public URL written in capitals is the same
// origin: before, its issuer kept the capitals, and with them lost the
// cookies' prefix and Secure flag, and the resource clients name.
func TestPublicURLBehindProxy(t *testing.T) {
	for _, written := range []string{"https://mcp.example.com", "HTTPS://MCP.Example.com/", "https://mcp.example.com:443"} {
		t.Run(written, func(t *testing.T) { testPublicURLBehindProxy(t, written) })
	}
}

func testPublicURLBehindProxy(t *testing.T, written string) {
	ctx := context.Background()
	st := memory.New()
	lc := local.New(st, local.Options{})
	lc.SetUser(ctx, testUser, hashed(testPassword))
	const public = "https://mcp.example.com"
	g, err := mcpgate.New(ctx, mcpgate.Config{Store: st, SecretKey: bytes.Repeat([]byte{9}, 32), PublicURL: written,
		Connectors: []upstream.Connector{lc}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	// The "proxy": TLS on loopback, forwarding the public Host; and the
	// Origin of a page there is the one a browser at the public URL
	// sends (SEC-5 compares it with the issuer).
	var srv *httptest.Server
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host = "mcp.example.com"
		if r.Header.Get("Origin") == srv.URL {
			r.Header.Set("Origin", public)
		}
		g.ServeHTTP(w, r)
	}))
	defer srv.Close()

	h := &gw{t: t, url: srv.URL, client: srv.Client()}
	h.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := h.register(nil)
	a := h.newAuth(c.ClientID)
	a.Resource = public + "/mcp"

	b := browser.New(testUser, testPassword)
	b.Client = srv.Client()
	b.Client.Jar, _ = cookiejar.New(nil)
	code, state, iss, err := b.Authorize(ctx, a.URL(), a.Redirect)
	if err != nil || state != a.State || iss != public {
		t.Fatalf("authorize: %v, state %q, iss %q; want state %q and iss %s", err, state, iss, a.State, public)
	}
	// DEP-4: over https the cookies carry the __Host- prefix.
	resp, err := b.Client.Get(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var names []string
	for _, ck := range b.Client.Jar.Cookies(resp.Request.URL) {
		names = append(names, ck.Name)
	}
	if !strings.Contains(strings.Join(names, ","), "__Host-mcpgate_session") {
		t.Fatalf("cookies %v, want __Host-mcpgate_session among them", names)
	}
	_, tok := h.exchange(a, code)
	if tok.AccessToken == "" {
		t.Fatalf("token: %+v, want an access token", tok)
	}
	r, _ := h.mcpInitialize(srv.URL, tok.AccessToken)
	if r.StatusCode != 200 {
		t.Fatalf("MCP behind the proxy: %d, want 200", r.StatusCode)
	}
	// TRANS-1 still holds: a foreign Origin is refused.
	if r, _ := h.mcpInitialize(srv.URL, tok.AccessToken, "Origin", "https://evil.example"); r.StatusCode != 403 {
		t.Fatalf("foreign origin: %d, want 403", r.StatusCode)
	}
	if r, _ := h.mcpInitialize(srv.URL, tok.AccessToken, "Origin", public); r.StatusCode != 200 {
		t.Fatalf("own origin: %d, want 200", r.StatusCode)
	}
}

// SEC-177 after an upgrade: a grant stored while the public URL was
// written in capitals names its resource so (HTTPS://MCP.Example.com/mcp);
// its refreshes mint tokens for the resource as the gateway names it now,
// which the MCP endpoint takes. Fails before: every refresh succeeded
// with a token the endpoint refused, so the client never signed in again.
func TestPublicURLInCapitalsGrantOfBefore(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	lc := local.New(st, local.Options{})
	lc.SetUser(ctx, testUser, hashed(testPassword))
	g, err := mcpgate.New(ctx, mcpgate.Config{Store: st, SecretKey: bytes.Repeat([]byte{9}, 32), PublicURL: "HTTPS://MCP.Example.com",
		Connectors: []upstream.Connector{lc}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host = "mcp.example.com"
		g.ServeHTTP(w, r)
	}))
	defer srv.Close()
	h := &gw{t: t, url: srv.URL, client: srv.Client()}
	c := h.register(nil)
	now := time.Now()
	rt := "refresh-of-before-the-upgrade"
	grant := &store.Grant{ID: "g-old", ClientID: c.ClientID, User: identity.User{ID: "local:" + testUser, Username: testUser},
		Resource: "HTTPS://MCP.Example.com/mcp", Scopes: []string{"mcp"}, CreatedAt: now}
	if err := st.CreateGrant(ctx, grant, &store.RefreshToken{Hash: tokens.Hash(rt), GrantID: "g-old", Generation: 1,
		Scopes: []string{"mcp"}, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		resp, b := h.postForm(srv.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ClientID}})
		if resp.StatusCode != 200 {
			t.Fatalf("refresh %d: %d %s, want 200", round, resp.StatusCode, b)
		}
		tok := decode[map[string]any](t, b)
		rt, _ = tok["refresh_token"].(string)
		if r, body := h.mcpInitialize(srv.URL, tok["access_token"].(string)); r.StatusCode != 200 {
			t.Fatalf("refresh %d gave a token the MCP endpoint refuses: %d %s %s", round, r.StatusCode, r.Header.Get("WWW-Authenticate"), body)
		}
	}
}

// RES-2 on loopback without a public URL: a Host that names the scheme's
// default port (127.0.0.1:80) is the issuer without it, so the resource
// the metadata publishes is the one /authorize serves. Fails before: the
// metadata named http://127.0.0.1:80/mcp, which /authorize refused.
func TestLoopbackHostWithDefaultPort(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	hosted := func(method, path string) (*http.Response, []byte) {
		req, _ := http.NewRequest(method, g.url+path, nil)
		req.Host = "127.0.0.1:80"
		return g.do(req)
	}
	_, body := hosted("GET", "/.well-known/oauth-protected-resource/mcp")
	prm := decode[map[string]any](t, body)
	if prm["resource"] != "http://127.0.0.1/mcp" {
		t.Fatalf("metadata's resource %v, want http://127.0.0.1/mcp", prm["resource"])
	}
	a := g.newAuth(c.ClientID)
	a.Resource = "http://127.0.0.1/mcp"
	u, _ := url.Parse(a.URL())
	if resp, body := hosted("GET", "/authorize?"+u.RawQuery); resp.StatusCode != 200 {
		t.Fatalf("/authorize for the published resource: %d %s\n%.300s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}
