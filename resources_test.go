package mcpgate_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate"
)

// Several resources under one issuer: each has its own path-inserted PRM
// (PRM-1, PRM-9) and scopes; a token is issued for one resource and
// refused at the other (RES-3, RES-4); the caller reaches the right one.
func TestRES4_SeveralResourcesOneIssuer(t *testing.T) {
	hit := map[string]string{}
	handler := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hit[name] = callerFromContext(r).Resource
			w.WriteHeader(204)
		})
	}
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{
			{Path: "/mcp", MCP: handler("demo")},
			{Path: "/github/mcp", MCP: handler("github"), Name: "GitHub tools", Scopes: []string{"repo:read"}},
		}
	})
	_, body := g.get(g.url + "/.well-known/oauth-protected-resource/github/mcp")
	p := decode[map[string]any](t, body)
	if p["resource"] != g.url+"/github/mcp" || p["resource_name"] != "GitHub tools" || p["scopes_supported"].([]any)[0] != "repo:read" {
		t.Fatalf("PRM of the second resource: %v; want resource %s/github/mcp, resource_name GitHub tools, scopes_supported [repo:read]", p, g.url)
	}
	_, body = g.get(g.url + "/.well-known/oauth-protected-resource")
	if p := decode[map[string]any](t, body); p["resource"] != g.url+"/mcp" {
		t.Fatalf("root PRM: %v, want the first resource, %s/mcp", p, g.url)
	}
	resp, _ := g.mcpInitialize(g.url, "")
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "/.well-known/oauth-protected-resource/mcp") {
		t.Fatalf("challenge at /mcp: %q, want the PRM URL of /mcp", resp.Header.Get("WWW-Authenticate"))
	}

	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Resource = g.url + "/github/mcp"
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if tok.Scope != "repo:read" {
		t.Fatalf("granted %q, want repo:read", tok.Scope)
	}
	call := func(path string) int {
		req := newReq(t, "POST", g.url+path)
		req.Body = io.NopCloser(strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		r, _ := g.do(req)
		return r.StatusCode
	}
	if s := call("/github/mcp"); s != 204 || hit["github"] != g.url+"/github/mcp" {
		t.Fatalf("own resource: %d, callers %v; want 204 with the caller's resource %s/github/mcp", s, hit, g.url)
	}
	if s := call("/mcp"); s != 401 || hit["demo"] != "" {
		t.Fatalf("RES-4: a token for /github/mcp at /mcp: %d, callers %v; want 401 and no call", s, hit)
	}
}

// A resource path may not shadow the gateway's own endpoints.
func TestResourcePathsChecked(t *testing.T) {
	for _, p := range []string{"/token", "/.well-known/x", "/login/local", "mcp", "/"} {
		g := func(c *mcpgateConfig) { c.Resources = []mcpgate.Resource{{Path: p}} }
		cfg := mcpgate.Config{}
		g(&cfg)
		if _, err := mcpgate.New(t.Context(), withStore(cfg)); err == nil {
			t.Errorf("resource path %q accepted, want an error", p)
		}
	}
	cfg := withStore(mcpgate.Config{Resources: []mcpgate.Resource{{Path: "/a"}, {Path: "/a"}}})
	if _, err := mcpgate.New(t.Context(), cfg); err == nil {
		t.Error("a resource path used twice was accepted, want an error")
	}
	// RES-1: a path ending in / was published as the resource, which no
	// client naming it (compared without the slash) could get a token
	// for. Refused with the path to use.
	cfg = withStore(mcpgate.Config{Resources: []mcpgate.Resource{{Path: "/x/"}}})
	if _, err := mcpgate.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), `use "/x"`) {
		t.Errorf("resource path /x/: %v, want it refused, naming /x", err)
	}
}

// PRM-8: offline_access is never a resource's scope, nor a scope no
// request could name: through the library as through the configuration
// file, mcpgate.New refuses it. Fails before: accepted, the guard then
// refused every token with a challenge naming scopes it carried.
func TestPRM8_ResourceScopesChecked(t *testing.T) {
	for name, res := range map[string]mcpgate.Resource{
		"offline_access required":   {Path: "/mcp", Scopes: []string{"mcp", "offline_access"}},
		"offline_access optional":   {Path: "/mcp", OptionalScopes: []string{"offline_access"}},
		"a scope with a space":      {Path: "/mcp", Scopes: []string{"mcp read"}},
		"a scope with a quote":      {Path: "/mcp", OptionalScopes: []string{`a"b`}},
		"offline_access implied":    {Path: "/mcp", ScopeImplies: map[string][]string{"mcp:admin": {"offline_access"}}},
		"a non-ASCII implying name": {Path: "/mcp", ScopeImplies: map[string][]string{"mcp:é": {"mcp"}}},
	} {
		cfg := withStore(mcpgate.Config{Resources: []mcpgate.Resource{res}})
		if _, err := mcpgate.New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "not a resource's scope") {
			t.Errorf("%s: %v, want it refused as not a resource's scope", name, err)
		}
	}
}

// RES-1, RES-3 (RFC 8707 §2.2): a code or a refresh token issued for one
// resource, exchanged naming another the gateway serves, gets
// invalid_target and no token; named right, they work. Fails before for
// the code: it was answered invalid_grant (a binding it named nothing
// of), and for neither did a test fail without the check.
func TestRES1_TokenForAnotherServedResourceRefused(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp"}, {Path: "/other/mcp"}}
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID) // for /mcp
	code, _ := g.login(a)
	wrong := *a
	wrong.Resource = g.url + "/other/mcp"
	if resp, tok := g.exchange(&wrong, code); resp.StatusCode != 400 || tok.Error != "invalid_target" || tok.AccessToken != "" {
		t.Errorf("a code for /mcp exchanged for /other/mcp: %d %+v, want 400 invalid_target and no token", resp.StatusCode, tok)
	}
	code, _ = g.login(a)
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || tok.RefreshToken == "" {
		t.Fatalf("a code for /mcp exchanged for /mcp: %d %+v, want 200 with a refresh token", resp.StatusCode, tok)
	}
	if resp, got := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"resource": {g.url + "/other/mcp"}}); resp.StatusCode != 400 || got.Error != "invalid_target" || got.AccessToken != "" {
		t.Errorf("a refresh token for /mcp refreshed for /other/mcp: %d %+v, want 400 invalid_target and no token", resp.StatusCode, got)
	}
	if resp, got := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"resource": {g.url + "/mcp"}}); resp.StatusCode != 200 || got.AccessToken == "" {
		t.Errorf("the refresh token refreshed for its own resource after: %d %+v, want 200", resp.StatusCode, got)
	}
}
