package mcpgate_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/e2e/browser"
)

// Claude Code registers (DCR) a port-less loopback redirect, then uses an
// ephemeral port, and sends neither resource nor scope.
func TestClaudeCode_DCRNoResourceNoScope(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"redirect_uris": []string{"http://localhost/callback"}})
	a := g.newAuth(c.ClientID)
	a.Redirect, a.Resource, a.Scope = "http://localhost:54613/callback", "", ""
	code, _ := g.login(a)
	a.Resource = ""
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || tok.Scope != "mcp" {
		t.Fatalf("token: %d %+v, want 200 with scope mcp", resp.StatusCode, tok)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("RES-1: the defaulted resource is the token's audience: got %d, want 200", r.StatusCode)
	}
}

// Claude.ai registers its claude.ai and claude.com callbacks; each works,
// matched exactly.
func TestClaudeAI_Callbacks(t *testing.T) {
	g := newGateway(t)
	callbacks := []string{"https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback"}
	c := g.register(map[string]any{"redirect_uris": callbacks, "application_type": "web"})
	for _, cb := range callbacks {
		t.Run(cb, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			a.Redirect = cb
			code, _ := g.login(a)
			if resp, _ := g.exchange(a, code); resp.StatusCode != 200 {
				t.Fatalf("token: %d, want 200", resp.StatusCode)
			}
		})
	}
	a := g.newAuth(c.ClientID)
	a.Redirect = "https://claude.ai/api/mcp/auth_callback/"
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("REDIR-1: a trailing slash variant must not match: got %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// Cursor registers cursor://anysphere.cursor-mcp/oauth/callback with
// application_type web; the code goes to that private-use URI.
func TestCursor_PrivateSchemeWithWebApplicationType(t *testing.T) {
	g := newGateway(t)
	const cb = "cursor://anysphere.cursor-mcp/oauth/callback"
	c := g.register(map[string]any{"redirect_uris": []string{cb}, "application_type": "web"})
	a := g.newAuth(c.ClientID)
	a.Redirect = cb
	resp, page := g.get(a.URL())
	if resp.StatusCode != 200 || !strings.Contains(string(page), "cursor: (an application on this computer)") {
		t.Fatalf("consent page: %d, want 200 saying an application on this computer gets the code", resp.StatusCode)
	}
	code, _ := g.login(a)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token: %d %+v, want 200 with an access token", resp.StatusCode, tok)
	}
}

// VS Code registers http://127.0.0.1:33418/ and, when that port is busy,
// comes back on another; vscode.dev sends a 24-character state.
func TestVSCode_PortFallbackAndShortState(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"redirect_uris": []string{"http://127.0.0.1:33418/"}})
	a := g.newAuth(c.ClientID)
	a.Redirect = "http://127.0.0.1:49873/"
	a.State = "abcdefghijklmnopqrstuvwx"
	code, _ := g.login(a) // asserts the state comes back verbatim
	if resp, _ := g.exchange(a, code); resp.StatusCode != 200 {
		t.Fatalf("token with the fallback port: %d, want 200", resp.StatusCode)
	}
}

// ChatGPT sends a resource with a path; the token's audience is exactly
// that resource, and the origin alone is not a resource we serve.
func TestChatGPT_ResourceWithPath(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"redirect_uris": []string{"https://chatgpt.com/connector_platform_oauth_redirect"}})
	a := g.newAuth(c.ClientID)
	a.Redirect = "https://chatgpt.com/connector_platform_oauth_redirect"
	a.Resource = g.url + "/mcp"
	code, b := g.login(a)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token for the resource with a path: %d %+v, want 200 with an access token", resp.StatusCode, tok)
	}
	// In the browser that approved ChatGPT, whose errors now go to it at
	// once (REDIR-3).
	a = g.newAuth(c.ClientID)
	a.Redirect = "https://chatgpt.com/connector_platform_oauth_redirect"
	a.Resource = g.url
	_, _, _, err := b.Authorize(context.Background(), a.URL(), a.Redirect)
	if ae := (*browser.AuthorizationError)(nil); !errors.As(err, &ae) || ae.Code != "invalid_target" {
		t.Fatalf("origin-only resource: %v, want a redirect with error invalid_target", err)
	}
}

// MCP Inspector runs in a browser: CORS on every endpoint it touches,
// error answers and the 401 included.
func TestMCPInspector_CORSOnErrors(t *testing.T) {
	g := newGateway(t)
	origin := "http://localhost:6274"
	check := func(name string, resp *http.Response) {
		t.Helper()
		// The MCP endpoint echoes an allowed origin (SEC-34); the others
		// allow any.
		want := "*"
		if name == "401" {
			want = origin
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != want {
			t.Errorf("%s: Access-Control-Allow-Origin %q on a %d, want %s", name, resp.Header.Get("Access-Control-Allow-Origin"), resp.StatusCode, want)
		}
	}
	req := jsonReq(t, g.url+"/register", `{"redirect_uris":["http://evil.example/cb"]}`)
	req.Header.Set("Origin", origin)
	r, _ := g.do(req)
	check("register error", r)
	r, _ = g.postForm(g.url+"/token", map[string][]string{"grant_type": {"nope"}, "client_id": {"x"}}, "Origin", origin)
	check("token error", r)
	r, _ = g.mcpInitialize(g.url, "bad-token", "Origin", origin)
	check("401", r)
	r, _ = g.get(g.url+"/.well-known/oauth-protected-resource/mcp", "Origin", origin)
	check("PRM", r)
	r, _ = g.get(g.url+"/.well-known/oauth-authorization-server", "Origin", origin)
	check("metadata", r)
}

// A client whose registration was lost (deleted, or registered with
// another server) is told to register again at /authorize, and gets
// invalid_client at /token.
func TestLostRegistration(t *testing.T) {
	g := newGateway(t)
	a := g.newAuth("gone-client")
	_, _, _, err := browser.New(testUser, testPassword).Authorize(context.Background(), a.URL(), a.Redirect)
	if err == nil || !strings.Contains(err.Error(), "register again") {
		t.Fatalf("authorize: %v, want a page telling the client to register again", err)
	}
	resp, tok := g.exchange(a, "some-code")
	if resp.StatusCode != 401 || tok.Error != "invalid_client" {
		t.Fatalf("token: %d %+v, want 401 invalid_client", resp.StatusCode, tok)
	}
}
