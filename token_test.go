package mcpgate_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TOK-6: a token response is JSON, no-store, with access_token and a
// Bearer token_type; TOK-5: the access token lives an hour.
// (The code's single use, PKCE-3, is TestPKCE3_ReplayedCodeRevokesGrant's.)
func TestTOK6_TokenResponse(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("got %d %v, want 200 no-store application/json", resp.StatusCode, resp.Header)
	}
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.ExpiresIn != 3600 || tok.Scope != "mcp" {
		t.Fatalf("got %+v, want a Bearer access token, a refresh token, expires_in 3600 and scope mcp", tok)
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
		t.Fatalf("fresh token refused: %d, want 200", r.StatusCode)
	}
	resp, again := g.exchange(a, code)
	if resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("replay: %d %+v, want 400 invalid_grant", resp.StatusCode, again)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of a replayed code still works: %d, want 401", r.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("refresh token of a replayed code still works: %d, want 400", resp.StatusCode)
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
	descriptions := map[string]string{}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			code, _ := g.login(a)
			mutate(a)
			resp, b := g.postForm(g.url+"/token", url.Values{
				"grant_type": {"authorization_code"}, "code": {code}, "client_id": {a.ClientID},
				"redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}, "resource": {a.Resource},
			})
			e := decode[map[string]string](t, b)
			if resp.StatusCode != 400 || e["error"] != "invalid_grant" {
				t.Errorf("got %d %v, want 400 invalid_grant", resp.StatusCode, e)
			}
			descriptions[name] = e["error_description"]
		})
	}
	if len(descriptions) != len(cases) {
		t.Fatalf("descriptions of %d failures, want %d", len(descriptions), len(cases))
	}
	for name, d := range descriptions {
		if d != descriptions["wrong verifier"] {
			t.Errorf("failures must not say which binding failed: %s says %q, wrong verifier %q", name, d, descriptions["wrong verifier"])
		}
	}
	// Missing verifier: invalid_request, and no token.
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	resp, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "client_id": {c.ClientID}, "redirect_uri": {a.Redirect}})
	if resp.StatusCode != 400 || strings.Contains(string(b), "access_token") {
		t.Fatalf("no verifier: %d %s, want 400 and no access token", resp.StatusCode, b)
	}
	// Expiry.
	a = g.newAuth(c.ClientID)
	code, _ = g.login(a)
	g.clock.Advance(61 * time.Second)
	if resp, tok := g.exchange(a, code); resp.StatusCode != 400 || tok.Error != "invalid_grant" {
		t.Fatalf("expired code: %d %+v, want 400 invalid_grant", resp.StatusCode, tok)
	}
}

// SEC-176: whoever intercepted a code but not its verifier (another
// application listening on the loopback port, a proxy's log) cannot spend
// it: exchanges with a wrong verifier, even from the client itself or
// from one of the attacker's own, leave it for the client that holds the
// verifier, whose tokens then work. Fails before: the first wrong exchange
// spent the code, and the client's own was a replay that ended the grant.
func TestSEC176_WrongVerifierLeavesCodeUnspent(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	thief := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	for name, form := range map[string]url.Values{
		"the client's id, a verifier of its own": {"client_id": {c.ClientID}, "redirect_uri": {a.Redirect}, "code_verifier": {strings.Repeat("v", 43)}},
		"the client's id, an invalid verifier":   {"client_id": {c.ClientID}, "redirect_uri": {a.Redirect}, "code_verifier": {"short"}},
		"another client, a verifier of its own":  {"client_id": {thief.ClientID}, "redirect_uri": {a.Redirect}, "code_verifier": {strings.Repeat("w", 43)}},
	} {
		form.Set("grant_type", "authorization_code")
		form.Set("code", code)
		resp, b := g.postForm(g.url+"/token", form)
		if e := decode[map[string]string](t, b); resp.StatusCode != 400 || e["error"] != "invalid_grant" {
			t.Fatalf("%s: %d %v, want 400 invalid_grant", name, resp.StatusCode, e)
		}
	}
	resp, tok := g.exchange(a, code)
	if resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("the client's exchange after the wrong ones: %d %+v, want 200 and tokens", resp.StatusCode, tok)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("its access token: %d, want 200", r.StatusCode)
	}
	// Once spent, a wrong verifier is refused and leaves the grant alone
	// (SEC-185: TestSEC185_ReplayWithoutVerifierKeepsTheGrant).
	resp, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"client_id": {c.ClientID}, "redirect_uri": {a.Redirect}, "code_verifier": {strings.Repeat("v", 43)}})
	if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_grant") {
		t.Fatalf("replay with a wrong verifier: %d %s, want 400 invalid_grant", resp.StatusCode, b)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("access token after its code came back without the verifier: %d, want 200 (SEC-185)", r.StatusCode)
	}
}

// SEC-185: a spent code that comes back without its PKCE verifier, or
// from another client, is refused and ends nothing: only the code's own
// client holding the verifier can be the one who finds it spent by a
// thief (PKCE-3 then ends the grant). Fails before: whoever saw the code
// (a proxy's log, browser history) ended the person's new grant by
// sending it again just after the client's exchange, at every sign-in.
func TestSEC185_ReplayWithoutVerifierKeepsTheGrant(t *testing.T) {
	g := newGateway(t)
	c := g.register(nil)
	thief := g.register(nil)
	for name, form := range map[string]url.Values{
		"another client, a verifier of its own": {"client_id": {thief.ClientID}, "code_verifier": {strings.Repeat("w", 43)}},
		"the client's id, a wrong verifier":     {"client_id": {c.ClientID}, "code_verifier": {strings.Repeat("v", 43)}},
		"the client's id, an invalid verifier":  {"client_id": {c.ClientID}, "code_verifier": {"x"}},
	} {
		t.Run(name, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(c.ClientID)
			code, _ := g.login(a)
			resp, tok := g.exchange(a, code)
			if resp.StatusCode != 200 {
				t.Fatalf("the client's exchange: %d, want 200", resp.StatusCode)
			}
			form.Set("grant_type", "authorization_code")
			form.Set("code", code)
			form.Set("redirect_uri", a.Redirect)
			r, b := g.postForm(g.url+"/token", form)
			if e := decode[map[string]string](t, b); r.StatusCode != 400 || e["error"] != "invalid_grant" {
				t.Fatalf("the replay: %d %s, want 400 invalid_grant", r.StatusCode, b)
			}
			if st, _ := g.mcpInitialize(g.url, tok.AccessToken); st.StatusCode != 200 {
				t.Errorf("the client's access token after the replay: %d, want 200", st.StatusCode)
			}
			if r, rt := g.refresh(c.ClientID, tok.RefreshToken, nil); r.StatusCode != 200 {
				t.Errorf("the client's refresh after the replay: %d %+v, want 200", r.StatusCode, rt)
			}
		})
	}
	// The code's own client with its verifier: PKCE-3 as before.
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if resp, _ := g.exchange(a, code); resp.StatusCode != 400 {
		t.Fatalf("the client's own replay: %d, want 400", resp.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 401 {
		t.Errorf("PKCE-3: the access token after its client replayed the code with its verifier: %d, want 401", r.StatusCode)
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
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no grant_type", url.Values{"client_id": {c.ClientID}}, 400, "invalid_request"},
		{"password grant", url.Values{"client_id": {c.ClientID}, "grant_type": {"password"}}, 400, "unsupported_grant_type"},
		{"unknown client", url.Values{"client_id": {"unknown"}, "grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {"y"}}, 401, "invalid_client"},
		{"no client_id", url.Values{"grant_type": {"authorization_code"}}, 400, "invalid_request"},
		{"unknown code", url.Values{"client_id": {c.ClientID}, "grant_type": {"authorization_code"}, "code": {"nope"}, "code_verifier": {strings.Repeat("a", 43)}}, 400, "invalid_grant"},
		{"unknown resource", url.Values{"client_id": {c.ClientID}, "grant_type": {"authorization_code"}, "code": {"x"}, "code_verifier": {"y"}, "resource": {"https://elsewhere.example/mcp"}}, 400, "invalid_target"},
		{"client_id twice", url.Values{"client_id": {c.ClientID, c.ClientID}, "grant_type": {"authorization_code"}}, 400, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := g.on(t).postForm(g.url+"/token", tc.form)
			e := decode[map[string]string](t, b)
			if resp.StatusCode != tc.status || e["error"] != tc.code || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("got %d %v (Cache-Control %q), want %d %s no-store", resp.StatusCode, e, resp.Header.Get("Cache-Control"), tc.status, tc.code)
			}
		})
	}
}

// Confidential clients authenticate with Basic or the body; a wrong
// secret is invalid_client.
func TestConfidentialClientAuthentication(t *testing.T) {
	g := newGateway(t)
	for _, method := range []string{"client_secret_basic", "client_secret_post"} {
		t.Run(method, func(t *testing.T) {
			g := g.on(t)
			c := g.register(map[string]any{"token_endpoint_auth_method": method})
			if c.ClientSecret == "" || c.AuthMethod != method {
				t.Fatalf("registered %+v, want a secret and auth method %s", c, method)
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
				t.Fatalf("wrong secret: %d %s, want 401 invalid_client", resp.StatusCode, b)
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
				t.Fatalf("right secret after a wrong one: %d, want 200", resp.StatusCode)
			}
		})
	}
}

// A client that tried HTTP Basic and got it wrong is answered 401
// invalid_client with a Basic challenge (RFC 6749 §5.2: "If the client
// attempted to authenticate via the Authorization request header field …
// MUST … include the WWW-Authenticate response header field"), even when
// the header is not valid Basic at all, or names no client (a Basic of
// ":secret" was 400 invalid_request before); the body's client_id does not
// stand in for a header that failed, for a public client either.
func TestMalformedBasicIsInvalidClientWithChallenge(t *testing.T) {
	g := newGateway(t)
	confidential := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	public := g.register(nil)
	for _, c := range []registered{confidential, public} {
		a := g.newAuth(c.ClientID)
		code, _ := g.login(a)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.Redirect},
			"code_verifier": {a.Verifier}, "client_id": {c.ClientID}}
		for _, h := range []string{"Basic !!!", "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID)), "basic", "Basic  ",
			"Basic " + base64.StdEncoding.EncodeToString([]byte(":some-secret")), "Basic " + base64.StdEncoding.EncodeToString([]byte(":"))} {
			req, _ := http.NewRequest("POST", g.url+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", h)
			resp, b := g.do(req)
			if resp.StatusCode != 401 || !strings.Contains(string(b), `"invalid_client"`) ||
				!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("%s client, Authorization %q: %d %s, WWW-Authenticate %q; want 401 invalid_client with a Basic challenge",
					c.AuthMethod, h, resp.StatusCode, b, resp.Header.Get("WWW-Authenticate"))
			}
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
		t.Fatalf("refresh: %d %+v, want 200 with new access and refresh tokens", resp.StatusCode, second)
	}
	if r, _ := g.mcpInitialize(g.url, second.AccessToken); r.StatusCode != 200 {
		t.Fatalf("refreshed access token refused: %d, want 200", r.StatusCode)
	}
	// Reuse of the rotated token, after the grace window.
	g.clock.Advance(31 * time.Second)
	if resp, again := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 || again.Error != "invalid_grant" {
		t.Fatalf("old refresh token: %d %+v, want 400 invalid_grant", resp.StatusCode, again)
	}
	if resp, _ := g.refresh(c.ClientID, second.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("RT-1: the family survived a reuse: %d, want 400", resp.StatusCode)
	}
	if r, _ := g.mcpInitialize(g.url, second.AccessToken); r.StatusCode != 401 {
		t.Fatalf("access token of a revoked family still works: %d, want 401", r.StatusCode)
	}
}

// A refresh token presented by another client is refused and its family
// ends.
func TestRefreshByAnotherClient(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	other := g.register(nil)
	if resp, _ := g.refresh(other.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("refresh by another client: %d, want 400", resp.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("family survived theft: %d, want 400", resp.StatusCode)
	}
}

// Refresh may narrow the scope, never widen it.
func TestRefreshScopeNarrowing(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.Scopes = []string{"mcp", "mcp:admin"} })
	c, _, tok := g.fullFlow()
	if tok.Scope != "mcp mcp:admin" {
		t.Fatalf("granted %q, want mcp mcp:admin", tok.Scope)
	}
	resp, narrow := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"scope": {"mcp"}})
	if resp.StatusCode != 200 || narrow.Scope != "mcp" {
		t.Fatalf("narrow: %d %+v, want 200 with scope mcp", resp.StatusCode, narrow)
	}
	// The refresh token keeps the full scope (RFC 6749 §6).
	resp, full := g.refresh(c.ClientID, narrow.RefreshToken, nil)
	if resp.StatusCode != 200 || full.Scope != "mcp mcp:admin" {
		t.Fatalf("after narrowing: %d %+v, want 200 with scope mcp mcp:admin", resp.StatusCode, full)
	}
	resp, wide := g.refresh(c.ClientID, full.RefreshToken, url.Values{"scope": {"mcp other"}})
	if resp.StatusCode != 400 || wide.Error != "invalid_scope" {
		t.Fatalf("widen: %d %+v, want 400 invalid_scope", resp.StatusCode, wide)
	}
}

// Refresh tokens expire.
func TestRefreshExpiry(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) { c.RefreshTokenTTL = 2 * time.Hour })
	c, _, tok := g.fullFlow()
	g.clock.Advance(3 * time.Hour)
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("expired refresh token accepted: %d, want 400", resp.StatusCode)
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
		t.Fatalf("SCOPE-7/RT-2: got %+v, want scope mcp (the unknown scope dropped) and no refresh token", tok)
	}
	a = g.newAuth(c.ClientID)
	a.Scope = "mcp offline_access"
	code, _ = g.login(a)
	_, tok = g.exchange(a, code)
	if tok.Scope != "mcp" || tok.RefreshToken == "" {
		t.Fatalf("RT-2: offline_access must bring a refresh token: got %+v, want scope mcp and a refresh token", tok)
	}
}

// A /token body over the limit is refused as too large, not as a body
// that is not a form; an /authorize with two client_ids says so.
func TestOversizedTokenBodyAndTwoClientIDs(t *testing.T) {
	g := newGateway(t)
	resp, body := g.postForm(g.url+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {strings.Repeat("x", 20<<10)}})
	if e := decode[map[string]string](t, body); resp.StatusCode != 400 || e["error"] != "invalid_request" || !strings.Contains(e["error_description"], "the body is over") {
		t.Errorf("/token with a 20 KB body: %d %s; want 400 invalid_request saying the body is too large", resp.StatusCode, body)
	}
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	resp, page := g.get(a.URL() + "&client_id=" + url.QueryEscape(c.ClientID))
	if resp.StatusCode != 400 || !strings.Contains(string(page), "client_id is given more than once") {
		t.Errorf("/authorize with two client_ids: %d; want 400 and a page saying client_id is given more than once\n%s", resp.StatusCode, page)
	}
}
