package mcpgate_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// PRM-3, PRM-5, GEN-4: no token: 401 with resource_metadata and scope,
// and no error code (RFC 6750 §3.1).
func TestPRM3_ChallengeWithoutToken(t *testing.T) {
	g := newGateway(t)
	resp, _ := g.mcpInitialize(g.url, "")
	want := `Bearer scope="mcp", resource_metadata="` + g.url + `/.well-known/oauth-protected-resource/mcp"`
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != want {
		t.Fatalf("got %d %q, want 401 %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), want)
	}
	// SESS-1: every request is verified: GET (SSE) and DELETE too.
	for _, m := range []string{"GET", "DELETE"} {
		r, _ := g.do(newReq(t, m, g.url+"/mcp"))
		if r.StatusCode != 401 {
			t.Errorf("%s /mcp without token: %d, want 401", m, r.StatusCode)
		}
	}
}

// TOK-2, RFC 6750 §3.1: a presented bad token gets error="invalid_token".
func TestTOK2_InvalidTokens(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow()
	parts := strings.Split(tok.AccessToken, ".")
	tampered := parts[0] + "." + parts[1] + "x." + parts[2]
	for name, header := range map[string]string{
		"garbage":   "Bearer not-a-jwt",
		"tampered":  "Bearer " + tampered,
		"malformed": "Bearer a b",
		"basic":     "Basic dXNlcjpwYXNz",
	} {
		req := newReq(t, "POST", g.url+"/mcp")
		req.Header.Set("Authorization", header)
		resp, body := g.do(req)
		if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
			!strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
			t.Errorf("%s: got %d %q %s; want 401 with error=\"invalid_token\" and resource_metadata", name, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
	}
}

// TOK-1: a token in the query string is refused, even a valid one.
func TestTOK1_NoQueryTokens(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow()
	resp, _ := g.do(newReq(t, "GET", g.url+"/mcp?access_token="+tok.AccessToken))
	if resp.StatusCode != 400 && resp.StatusCode != 401 {
		t.Fatalf("query token: %d, want 400 or 401", resp.StatusCode)
	}
	if strings.Contains(g.logs.String(), tok.AccessToken) {
		t.Fatal("TOK-4: the token reached the log")
	}
}

// RES-3, RES-4, PASS-1: a token issued for another resource (here: the
// same gateway reached by another name) is refused.
func TestRES3_AudienceChecked(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow() // issued for http://127.0.0.1:PORT/mcp
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("own audience refused: %d, want 200", r.StatusCode)
	}
	r, _ := g.mcpInitialize(g.localhostURL(), tok.AccessToken)
	if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("RES-3: token for another audience: %d %q, want 401 invalid_token", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
}

// TOK-2, TOK-5: expired tokens are refused, cached or not.
func TestTOK2_ExpiredToken(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow()
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 { // now cached
		t.Fatalf("fresh token: %d, want 200", r.StatusCode)
	}
	g.clock.Advance(time.Hour + time.Minute)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("expired token: %d, want 401", r.StatusCode)
	}
}

// SCOPE-1, SCOPE-3: a token without every required scope gets 403
// insufficient_scope naming all of them at once.
func TestSCOPE1_InsufficientScope(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.Scopes = []string{"mcp", "mcp:write"} })
	c, _, tok := g.fullFlow()
	_, narrow := g.refresh(c.ClientID, tok.RefreshToken, map[string][]string{"scope": {"mcp"}})
	r, _ := g.mcpInitialize(g.url, narrow.AccessToken)
	h := r.Header.Get("WWW-Authenticate")
	if r.StatusCode != 403 || !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="mcp mcp:write"`) || !strings.Contains(h, "resource_metadata=") {
		t.Fatalf("got %d %q; want 403 with error=\"insufficient_scope\", scope=\"mcp mcp:write\" and resource_metadata", r.StatusCode, h)
	}
}

// TRANS-1: a foreign Origin gets 403; a non-loopback Host (DNS rebinding)
// gets 403 when no public URL is set; loopback origins (MCP Inspector)
// pass.
func TestTRANS1_OriginAndHost(t *testing.T) {
	g := newGateway(t)
	_, _, tok := g.fullFlow()
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken, "Origin", "https://evil.example"); r.StatusCode != 403 {
		t.Fatalf("foreign origin: %d, want 403", r.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken, "Origin", "http://localhost:6274"); r.StatusCode != 200 {
		t.Fatalf("loopback origin: %d, want 200", r.StatusCode)
	}
	req := newReq(t, "POST", g.url+"/mcp")
	req.Host = "evil.example"
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if r, _ := g.do(req); r.StatusCode != 403 {
		t.Fatalf("rebinding host: %d, want 403", r.StatusCode)
	}
}

// The caller's identity reaches the MCP handler.
func TestIdentityReachesHandler(t *testing.T) {
	var got string
	g := newGateway(t, func(c *mcpgateConfig) {
		c.MCP = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if caller := callerFromContext(r); caller != nil {
				got = caller.User.ID + "|" + caller.ClientID + "|" + strings.Join(caller.Scopes, " ")
			}
			w.WriteHeader(204)
		})
	})
	c, _, tok := g.fullFlow()
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 204 {
		t.Fatalf("MCP request: %d, want 204 from the handler", r.StatusCode)
	}
	if want := "local:alice|" + c.ClientID + "|mcp"; got != want {
		t.Fatalf("caller %q, want %q", got, want)
	}
}

// TOK-4: no secret (password, code, token, client secret) reaches a log line.
func TestTOK4_NoSecretsInLogs(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, b := g.postForm(g.url+"/token", map[string][]string{"grant_type": {"authorization_code"}, "code": {code},
		"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}, "redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}})
	tok := decode[tokenResponse](t, b)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %d %s, want 200", resp.StatusCode, b)
	}
	g.postForm(g.url+"/token", map[string][]string{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken},
		"client_id": {c.ClientID}, "client_secret": {c.ClientSecret}})
	g.exchange(a, code) // a replay, logged as a warning
	g.mcpInitialize(g.url, tok.AccessToken)
	g.mcpInitialize(g.url, tok.AccessToken+"x")
	logs := g.logs.String()
	if !strings.Contains(logs, "tokens issued") {
		t.Fatalf("the log lacks %q: the flow was not logged at all", "tokens issued")
	}
	for name, secret := range map[string]string{"password": testPassword, "code": code, "access token": tok.AccessToken,
		"refresh token": tok.RefreshToken, "client secret": c.ClientSecret, "verifier": a.Verifier} {
		if strings.Contains(logs, secret) {
			t.Errorf("TOK-4: the %s appears in the log, want no secret there", name)
		}
	}
}

// SEC-34: the preflight at /mcp applies the origin rule of the request
// itself (TRANS-1): an allowed origin is echoed, with Vary: Origin, and
// granted every request header the transport defines (Mcp-Param-*
// included); a refused one gets no grant, as its request would get 403.
func TestSEC34_PreflightFollowsOriginRule(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.AllowedOrigins = []string{"https://app.example"} })
	preflight := func(origin, headers string) *http.Response {
		req := newReq(t, "OPTIONS", g.url+"/mcp")
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", headers)
		resp, _ := g.do(req)
		return resp
	}
	transport := "authorization,content-type,accept,mcp-session-id,mcp-protocol-version,last-event-id,mcp-method,mcp-name,mcp-param-region,mcp-param-x-y"
	for _, origin := range []string{"https://app.example", "http://localhost:6274"} {
		resp := preflight(origin, transport)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != origin || !slices.Contains(resp.Header.Values("Vary"), "Origin") {
			t.Errorf("%s: preflight %d, Allow-Origin %q, Vary %q; want 204, the origin echoed, Vary: Origin", origin, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Values("Vary"))
		}
		granted := strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers"))
		for h := range strings.SplitSeq(transport, ",") {
			if !slices.Contains(strings.Split(strings.ReplaceAll(granted, " ", ""), ","), h) {
				t.Errorf("%s: Access-Control-Allow-Headers %q, want %s among them", origin, granted, h)
			}
		}
		if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") || !strings.Contains(m, "GET") || !strings.Contains(m, "DELETE") || strings.Contains(m, "PUT") {
			t.Errorf("%s: Access-Control-Allow-Methods %q, want the transport's GET, POST, DELETE only", origin, m)
		}
		if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: credentials allowed, want never", origin)
		}
	}
	// A header the transport does not define is not granted.
	if granted := strings.ToLower(preflight("https://app.example", "authorization,x-custom").Header.Get("Access-Control-Allow-Headers")); strings.Contains(granted, "x-custom") {
		t.Errorf("Access-Control-Allow-Headers %q, want x-custom not granted", granted)
	}
	// A refused origin: no grant at the preflight, 403 at the request.
	resp := preflight("https://evil.example", "authorization,content-type")
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Errorf("refused origin: preflight %d %v; want 403 with no CORS grant", resp.StatusCode, resp.Header)
	}
	resp, _ = g.mcpInitialize(g.url, "", "Origin", "https://evil.example")
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("refused origin: request %d, Allow-Origin %q; want 403 with no CORS grant", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	// An allowed origin reads the 401 and its headers.
	resp, _ = g.mcpInitialize(g.url, "", "Origin", "https://app.example")
	exposed := resp.Header.Get("Access-Control-Expose-Headers")
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(exposed, "WWW-Authenticate") || !strings.Contains(exposed, "Mcp-Session-Id") || !strings.Contains(exposed, "Mcp-Protocol-Version") {
		t.Errorf("allowed origin, no token: %d, Allow-Origin %q, Expose %q; want 401 readable with WWW-Authenticate, Mcp-Session-Id, Mcp-Protocol-Version exposed",
			resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), exposed)
	}
}
