package mcpgate_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
)

// SCOPE-5, PRM-7, PRM-8, SCOPE-6, SCOPE-7: with a hierarchy, PRM and the
// challenge name only the minimal scope; a broader optional scope is
// granted when asked for and satisfies the resource; offline_access is
// accepted and never advertised in PRM or challenges.
func TestSCOPE5_HierarchyAndMinimalAdvertising(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Scopes = []string{"mcp:read"}
		c.OptionalScopes = []string{"mcp:write", "mcp:admin"}
		c.ScopeImplies = map[string][]string{"mcp:admin": {"mcp:read", "mcp:write"}, "mcp:write": {"mcp:read"}}
	})
	_, prm := g.get(g.url + "/.well-known/oauth-protected-resource/mcp")
	if p := decode[map[string]any](t, prm); len(p["scopes_supported"].([]any)) != 1 || p["scopes_supported"].([]any)[0] != "mcp:read" {
		t.Fatalf("PRM-7: scopes_supported %v, want [mcp:read]", p["scopes_supported"])
	}
	resp, _ := g.mcpInitialize(g.url, "")
	if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `scope="mcp:read"`) || strings.Contains(h, "offline_access") {
		t.Fatalf("PRM-8: challenge %q, want scope=\"mcp:read\" and no offline_access", h)
	}
	_, asm := g.get(g.url + "/.well-known/oauth-authorization-server")
	for _, want := range []string{"mcp:read", "mcp:write", "mcp:admin", "offline_access"} {
		if !strings.Contains(string(asm), `"`+want+`"`) {
			t.Errorf("RT-2: AS metadata lacks %s in scopes_supported:\n%s", want, asm)
		}
	}

	c := g.register(nil)
	for scope, want := range map[string]string{
		"mcp:admin offline_access": "mcp:admin", // implies mcp:read, so nothing is added
		"mcp:write":                "mcp:write",
		"":                         "mcp:read",
		"other mcp:nope":           "mcp:read", // SCOPE-7: unknown scopes dropped
	} {
		t.Run("scope="+scope, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			a.Scope = scope
			code, _ := g.login(a)
			_, tok := g.exchange(a, code)
			if tok.Scope != want {
				t.Errorf("granted %q, want %q", tok.Scope, want)
			}
			if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
				t.Errorf("SCOPE-5: token with %q refused: %d, want 200", tok.Scope, r.StatusCode)
			}
		})
	}
}

// SCOPE-5 at consent and refresh: a person who approved the broader
// mcp:admin has approved the narrower scopes it implies, so a request for
// mcp:read gets its code at once (prompt=none too) rather than the
// consent page again; and a refresh of an mcp:admin grant may narrow to
// mcp:read. Before, both compared the scope names only: consent_required,
// and invalid_scope.
func TestSCOPE5_ImpliedScopesAtConsentAndRefresh(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Scopes = []string{"mcp:read", "mcp:write"}
		c.OptionalScopes = []string{"mcp:admin"}
		c.ScopeImplies = map[string][]string{"mcp:admin": {"mcp:read", "mcp:write"}}
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Scope = "mcp:admin offline_access"
	code, b := g.login(a)
	_, tok := g.exchange(a, code)
	if tok.Scope != "mcp:admin" {
		t.Fatalf("granted %q, want mcp:admin", tok.Scope)
	}
	resp, narrowed := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"scope": {"mcp:read"}})
	if resp.StatusCode != 200 || narrowed.Scope != "mcp:read" {
		t.Errorf("refresh narrowing mcp:admin to the mcp:read it implies: %d %q %s, want 200 and mcp:read", resp.StatusCode, narrowed.Scope, narrowed.Error)
	}
	if resp, wider := g.refresh(c.ClientID, narrowed.RefreshToken, url.Values{"scope": {"mcp:admin mcp:other"}}); resp.StatusCode != 400 || wider.Error != "invalid_scope" {
		t.Errorf("refresh widening past the grant: %d %s, want 400 invalid_scope", resp.StatusCode, wider.Error)
	}
	narrow := g.newAuth(c.ClientID)
	narrow.Scope = "mcp:read"
	if _, _, _, err := b.Authorize(context.Background(), narrow.URL()+"&prompt=none", narrow.Redirect); err != nil {
		t.Errorf("prompt=none for mcp:read after approving mcp:admin: %v, want a code", err)
	}
}

// SCOPE-1, SCOPE-2: a tools/call that the tool policy denies but for a
// scope the resource grants on request gets 403 insufficient_scope naming
// it, with the required scopes and the token's, and resource_metadata:
// the client authorizes again for it and its call then goes through. Such
// a tool is listed, since a client that lists the tools first calls no
// other. A call no scope would allow, and a batch, keep the JSON-RPC
// refusal, and such a tool is not listed. Fails before: every denied call
// was answered 200 with -32602, and optional scopes were never asked for.
func TestSCOPE1_ToolPolicyStepUp(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Scopes: []string{"mcp"}, OptionalScopes: []string{"mcp:write"},
			ToolPolicy: &mcpgate.ToolPolicy{Default: "deny", Rules: []mcpgate.ToolRule{
				{Allow: []string{"echo"}, Scopes: []string{"mcp:write", "mcp:never-granted"}},
				{Allow: []string{"whoami"}, Users: []string{"local:bob"}},
			}}}}
	})
	c, _, tok := g.fullFlow() // scope mcp
	call := g.postMCP
	const echo = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`
	resp, body := call(tok.AccessToken, echo)
	h := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="mcp mcp:write"`) ||
		!strings.Contains(h, `resource_metadata="`+g.url+`/.well-known/oauth-protected-resource/mcp"`) {
		t.Fatalf("echo with scope mcp: %d %q %s; want 403 insufficient_scope, scope=\"mcp mcp:write\" and the resource metadata", resp.StatusCode, h, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	narrow, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(tok.AccessToken)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer narrow.Close()
	list, err := narrow.ListTools(ctx, nil)
	if err != nil || len(list.Tools) != 1 || list.Tools[0].Name != "echo" {
		t.Errorf("tools/list with scope mcp: %v %+v, want echo alone (a step-up away; whoami is bob's)", err, list)
	}
	for name, body := range map[string]string{
		"a tool of another user": `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami"}}`,
		"a batch":                `[` + echo + `,{"jsonrpc":"2.0","id":4,"method":"ping"}]`,
	} {
		if resp, got := call(tok.AccessToken, body); resp.StatusCode != http.StatusOK || !strings.Contains(got, "not allowed") {
			t.Errorf("%s: %d %s; want 200 with a JSON-RPC refusal", name, resp.StatusCode, got)
		}
	}

	// The client's step-up: authorized again for the union, its call goes through.
	a := g.newAuth(c.ClientID)
	a.Scope = "mcp mcp:write"
	code, _ := g.login(a)
	_, wider := g.exchange(a, code)
	if wider.Scope != "mcp mcp:write" {
		t.Fatalf("authorized for mcp mcp:write: granted %q", wider.Scope)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: g.url + "/mcp", HTTPClient: &http.Client{Transport: bearer(wider.AccessToken)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}}); err != nil || res.IsError {
		t.Errorf("echo with mcp:write: %v %+v, want its answer", err, res)
	}
}

// SCOPE-1, SCOPE-5: a rule's scope that the resource does not grant, but
// a broader optional scope implies: the challenge names the broader one.
// Fails before: the call got the JSON-RPC refusal, as no rule's own scope
// could be granted.
func TestSCOPE1_StepUpToAnImplyingScope(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp", Scopes: []string{"mcp"}, OptionalScopes: []string{"mcp:admin"},
			ScopeImplies: map[string][]string{"mcp:admin": {"mcp:write"}},
			ToolPolicy: &mcpgate.ToolPolicy{Default: "deny", Rules: []mcpgate.ToolRule{
				{Allow: []string{"echo"}, Scopes: []string{"mcp:write"}},
			}}}}
	})
	_, _, tok := g.fullFlow()
	resp, body := g.postMCP(tok.AccessToken, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}`)
	if h := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != http.StatusForbidden || !strings.Contains(h, `scope="mcp mcp:admin"`) {
		t.Errorf("echo with scope mcp: %d %q %s; want 403 naming mcp mcp:admin", resp.StatusCode, h, body)
	}
}

// postMCP posts body to the gateway's /mcp with token, as a client of the
// streamable transport does, and returns the answer and its body.
func (g *gw) postMCP(token, body string) (*http.Response, string) {
	g.t.Helper()
	req, _ := http.NewRequest("POST", g.url+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, b := g.do(req)
	return resp, string(b)
}
