package mcpgate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
)

// SESS-3: an MCP session opened by one user cannot be used with another
// user's token.
func TestSESS3_SessionBoundToUser(t *testing.T) {
	g := newGateway(t)
	_, _, alice := g.fullFlow()
	sid := g.mcpSession(alice.AccessToken)
	// Bob logs in through the same gateway.
	if err := localConnector(g).SetUser(context.Background(), "bob", "bob password 1"); err != nil {
		t.Fatal(err)
	}
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _, _, err := browser.New("bob", "bob password 1").Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	_, bob := g.exchange(a, code)

	call := func(token string) int {
		req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		req.Header.Set("Authorization", "Bearer "+token)
		r, _ := g.do(req)
		return r.StatusCode
	}
	if s := call(bob.AccessToken); s == 200 {
		t.Fatal("SESS-3: bob's token on alice's session got 200, want a refusal")
	}
	if s := call(alice.AccessToken); s != 200 {
		t.Fatalf("alice's own session: %d, want 200", s)
	}
}

// REG-1: pre-registered clients from configuration work without
// registration.
func TestStaticClient(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Clients = []mcpgate.Client{{ID: "static-app", Name: "Static App", RedirectURIs: []string{redirectURI}},
			{ID: "static-secret", Secret: "s3cret-value", RedirectURIs: []string{redirectURI}}}
	})
	a := g.newAuth("static-app")
	code, _ := g.login(a)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("static public client: %d, want 200 with an access token", resp.StatusCode)
	}
	a = g.newAuth("static-secret")
	code, _ = g.login(a)
	if resp, _ := g.exchange(a, code); resp.StatusCode != 401 {
		t.Fatalf("confidential static client without its secret: %d, want 401", resp.StatusCode)
	}
}
