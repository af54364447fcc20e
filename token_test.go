package mcpgate_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TOK-6: a token response is JSON, no-store, with access_token and a
// Bearer token_type; the code is single-use (PKCE-3).
func TestTOK6_TokenResponse(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3600 || tok.Scope != "mcp" {
		t.Fatalf("%+v", tok)
	}
}

// PKCE-3: a replayed code fails and revokes what the first exchange
// issued: the refresh token stops working and the access token is denied.
func TestPKCE3_ReplayedCodeRevokesGrant(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("fresh token refused: %d", r.StatusCode)
	}
	resp, again := g.exchange(a, code)
	if resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("replay: %d %+v", resp.StatusCode, again)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of a replayed code still works: %d", r.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("refresh token of a replayed code still works: %d", resp.StatusCode)
	}
}

// PKCE-2, PKCE-3: the code is bound to the verifier, client, redirect URI
// and resource; every failure is the same invalid_grant; the code expires
// after 60 s.
func TestPKCE2_CodeBindings(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	other := g.register(nil)
	cases := map[string]func(a *authRequest){
		"wrong verifier":     func(a *authRequest) { a.Verifier = strings.Repeat("v", 43) },
		"wrong client":       func(a *authRequest) { a.ClientID = other.ClientID },
		"wrong redirect uri": func(a *authRequest) { a.Redirect = "http://127.0.0.1:33418/other" },
	}
	var descriptions []string
	for name, mutate := range cases {
		a := g.newAuth(c.ClientID)
		code, _ := g.login(a)
		mutate(a)
		resp, b := g.postForm(g.url+"/token", url.Values{
			"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.ClientID},
			"redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}, "resource": {a.Resource},
		})
		e := decode[map[string]string](t, b)
		if resp.StatusCode != 400 || e["error"] != "invalid_grant" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, e)
		}
		descriptions = append(descriptions, e["error_description"])
	}
	for _, d := range descriptions {
		if d != descriptions[0] {
			t.Errorf("failures must not say which binding failed: %q vs %q", d, descriptions[0])
		}
	}
	// Missing verifier: invalid_request, and no token.
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.ClientID}, "redirect_uri": {a.Redirect}})
	if resp.StatusCode != 400 || strings.Contains(string(b), "access_token") {
		t.Fatalf("no verifier: %d %s", resp.StatusCode, b)
	}
	// Expiry.
	a = g.newAuth(c.ClientID)
	code, _ = g.login(a)
	g.clock.Advance(61 * time.Second)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 400 || tok.Error != "invalid_grant" {
		t.Fatalf("expired code: %d %+v", resp.StatusCode, tok)
	}
}

// PKCE-3: racing exchanges of one code: exactly one gets tokens.
func TestPKCE3_ConcurrentExchangeOneWinner(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.ClientID},
				"redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}}
			resp, err := http.PostForm(g.url+"/token", form)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == 200 {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d exchanges succeeded, want 1", wins)
	}
}

// Errors of the token endpoint: RFC 6749 §5.2 codes, no-store.
func TestTokenEndpointErrors(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	cases := []struct {
		form   url.Values
		status int
		code   string
	}{
		{url.Values{"client_id": {c.ClientID}}, 400, "invalid_request"},
		{url.Values{"client_id": {c.ClientID}, "grant_type": {"password"}}, 400, "unsupported_grant_type"},
		{url.Values{"client_id": {"unknown"}, "grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {"y"}}, 401, "invalid_client"},
		{url.Values{"grant_type": {"authorization_code"}}, 400, "invalid_request"},
		{url.Values{"client_id": {c.ClientID}, "grant_type": {"authorization_code"}, "code": {"nope"}, "code_verifier": {strings.Repeat("a", 43)}}, 400, "invalid_grant"},
		{url.Values{"client_id": {c.ClientID}, "grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {"y"}, "resource": {"https://elsewhere.example/mcp"}}, 400, "invalid_target"},
		{url.Values{"client_id": {c.ClientID, c.ClientID}, "grant_type": {"authorization_code"}}, 400, "invalid_request"},
	}
	for i, tc := range cases {
		resp, b := g.postForm(g.url+"/token", tc.form)
		e := decode[map[string]string](t, b)
		if resp.StatusCode != tc.status || e["error"] != tc.code || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("case %d: %d %v", i, resp.StatusCode, e)
		}
	}
}

// Confidential clients authenticate with Basic or the body; a wrong
// secret is invalid_client.
func TestConfidentialClientAuthentication(t *testing.T) {
	g := newGateway(t)
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		c := g.register(map[string]any{"token_endpoint_auth_method": method})
		if c.ClientSecret == "" || c.AuthMethod != method {
			t.Fatalf("%s: %+v", method, c)
		}
		a := g.newAuth(c.ClientID)
		code, _ := g.login(a)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}}
		wrong := url.Values{}
		for k, v := range form {
			wrong[k] = v
		}
		wrong.Set("client_id", c.ClientID)
		wrong.Set("client_secret", "wrong")
		if resp, b := g.postForm(g.url+"/token", wrong); resp.StatusCode != 401 || !strings.Contains(string(b), "invalid_client") {
			t.Fatalf("%s wrong secret: %d %s", method, resp.StatusCode, b)
		}
		var resp *http.Response
		if method == "client_secret_basic" {
			req, _ := http.NewRequest("POST", g.url+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
			resp, _ = g.do(req)
		} else {
			form.Set("client_id", c.ClientID)
			form.Set("client_secret", c.ClientSecret)
			resp, _ = g.postForm(g.url+"/token", form)
		}
		// The failed attempt above did not consume the code: authentication
		// comes before the code is touched.
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", method, resp.StatusCode)
		}
	}
}

// RT-1: refresh rotates; the old token then fails; presenting it again
// revokes the family, so the newest token fails too.
func TestRT1_RotationAndReuseDetection(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	resp, second := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 || second.RefreshToken == "" || second.RefreshToken == tok.RefreshToken || second.AccessToken == "" {
		t.Fatalf("refresh: %d %+v", resp.StatusCode, second)
	}
	if r, _ := g.mcpInitialize(g.url, second.AccessToken); r.StatusCode != 200 {
		t.Fatalf("refreshed access token refused: %d", r.StatusCode)
	}
	// Reuse of the rotated token, after the grace window.
	g.clock.Advance(31 * time.Second)
	if resp, again := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("old refresh token accepted: %d", resp.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, second.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("RT-1: the family survived a reuse: %d", resp.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, second.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of a revoked family still works: %d", r.StatusCode)
	}
}

// A refresh token presented by another client is refused and its family
// ends.
func TestRefreshByAnotherClient(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	other := g.register(nil)
	if resp, _ := g.refresh(other.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("%d", resp.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("family survived theft: %d", resp.StatusCode)
	}
}

// Refresh may narrow the scope, never widen it.
func TestRefreshScopeNarrowing(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.Scopes = []string{"mcp", "mcp:admin"} })
	c, _, tok := g.fullFlow()
	if tok.Scope != "mcp mcp:admin" {
		t.Fatalf("granted %q", tok.Scope)
	}
	resp, narrow := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"scope": {"mcp"}})
	if resp.StatusCode != 200 || narrow.Scope != "mcp" {
		t.Fatalf("narrow: %d %+v", resp.StatusCode, narrow)
	}
	// The refresh token keeps the full scope (RFC 6749 §6).
	resp, full := g.refresh(c.ClientID, narrow.RefreshToken, nil)
	if resp.StatusCode != 200 || full.Scope != "mcp mcp:admin" {
		t.Fatalf("after narrowing: %d %+v", resp.StatusCode, full)
	}
	resp, wide := g.refresh(c.ClientID, full.RefreshToken, url.Values{"scope": {"mcp other"}})
	if resp.StatusCode != 400 || wide.Error != "invalid_scope" {
		t.Fatalf("widen: %d %+v", resp.StatusCode, wide)
	}
}

// Refresh tokens expire.
func TestRefreshExpiry(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.RefreshTokenTTL = 2 * time.Hour })
	c, _, tok := g.fullFlow()
	g.clock.Advance(3 * time.Hour)
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("expired refresh token accepted: %d", resp.StatusCode)
	}
}

// RT-2, SCOPE-7: offline_access is accepted, unknown scopes are dropped
// rather than refused, and a refresh token is issued when the client may
// use the refresh_token grant or asked for offline_access.
func TestRT2_OfflineAccessAndRefreshIssuance(t *testing.T) {
	g := newGateway(t)
	c := g.register(map[string]any{"grant_types": []string{"authorization_code"}})
	a := g.newAuth(c.ClientID)
	a.Scope = "mcp unknown:scope"
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if tok.Scope != "mcp" || tok.RefreshToken != "" {
		t.Fatalf("SCOPE-7/RT-2: %+v", tok)
	}
	a = g.newAuth(c.ClientID)
	a.Scope = "mcp offline_access"
	code, _ = g.login(a)
	_, tok = g.exchange(a, code)
	if tok.Scope != "mcp" || tok.RefreshToken == "" {
		t.Fatalf("RT-2: offline_access must bring a refresh token: %+v", tok)
	}
}
