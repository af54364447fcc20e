package mcpgate_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
)

// introspector is a confidential client (a resource server, say) allowed
// to call /introspect.
type introspector struct {
	g *gw
	c registered
}

func (g *gw) newIntrospector(method string) *introspector {
	return &introspector{g: g, c: g.register(map[string]any{"token_endpoint_auth_method": method})}
}

// on returns in for subtest t, as gw.on does.
func (in *introspector) on(t *testing.T) *introspector {
	return &introspector{g: in.g.on(t), c: in.c}
}

// introspect posts token and returns the decoded RFC 7662 answer, after
// checking it is a no-store JSON 200.
func (in *introspector) introspect(token string) map[string]any {
	in.g.t.Helper()
	form := url.Values{"token": {token}}
	var resp *http.Response
	var body []byte
	if in.c.AuthMethod == "client_secret_basic" {
		req, _ := http.NewRequest("POST", in.g.url+"/introspect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(in.c.ClientID, in.c.ClientSecret)
		resp, body = in.g.do(req)
	} else {
		form.Set("client_id", in.c.ClientID)
		form.Set("client_secret", in.c.ClientSecret)
		resp, body = in.g.postForm(in.g.url+"/introspect", form)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		in.g.t.Fatalf("RFC 7662 §2.2: introspect: %d %v %s; want a no-store JSON 200", resp.StatusCode, resp.Header, body)
	}
	return decode[map[string]any](in.g.t, body)
}

// wantInactive checks the answer for a token that is not active: only
// {"active":false}, nothing about the token (RFC 7662 §2.2).
func wantInactive(t *testing.T, what string, got map[string]any) {
	t.Helper()
	if len(got) != 1 || got["active"] != false {
		t.Errorf("%s: want only {\"active\":false}, got %v", what, got)
	}
}

// RFC 7662: an active access token is described by its claims; an active
// refresh token by its grant.
func TestIntrospect_ActiveTokens(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	in := g.newIntrospector("client_secret_basic")

	at := in.introspect(tok.AccessToken)
	want := map[string]any{"active": true, "scope": "mcp", "client_id": c.ClientID, "username": testUser,
		"token_type": "Bearer", "aud": g.url + "/mcp", "iss": g.url}
	for k, v := range want {
		if at[k] != v {
			t.Errorf("access token: %s = %v, want %v", k, at[k], v)
		}
	}
	for _, k := range []string{"sub", "jti"} {
		if s, _ := at[k].(string); s == "" {
			t.Errorf("access token: %s missing or empty in %v, want a string", k, at)
		}
	}
	now := g.clock.Now().Unix()
	if exp, _ := at["exp"].(float64); int64(exp) != now+3600 && int64(exp) != now+3599 {
		t.Errorf("access token: exp %v, want an hour from now (%d)", at["exp"], now+3600)
	}
	if iat, _ := at["iat"].(float64); int64(iat) > now || int64(iat) < now-5 {
		t.Errorf("access token: iat %v, want now (%d) or up to 5 s before", at["iat"], now)
	}

	rt := in.introspect(tok.RefreshToken)
	want = map[string]any{"active": true, "scope": "mcp", "client_id": c.ClientID, "token_type": "refresh_token", "sub": at["sub"]}
	for k, v := range want {
		if rt[k] != v {
			t.Errorf("refresh token: %s = %v, want %v", k, rt[k], v)
		}
	}
	if exp, _ := rt["exp"].(float64); int64(exp) < now+29*24*3600 {
		t.Errorf("refresh token: exp %v, want at least 29 days from now (%d)", rt["exp"], now+29*24*3600)
	}

	// client_secret_post works as well.
	if got := g.newIntrospector("client_secret_post").introspect(tok.AccessToken); got["active"] != true {
		t.Errorf("client_secret_post: %v, want active", got)
	}
}

// RFC 7662 §2.2: expired, revoked, rotated, unknown and forged tokens are
// all just {"active":false}.
func TestIntrospect_InactiveTokens(t *testing.T) {
	g := newGateway(t)
	in := g.newIntrospector("client_secret_basic")

	// Rotated refresh token: not active, though a retry within the grace
	// window would still get its pair; its successor is.
	c, _, tok := g.fullFlow()
	_, second := g.refresh(c.ClientID, tok.RefreshToken, nil)
	wantInactive(t, "rotated refresh token", in.introspect(tok.RefreshToken))
	if got := in.introspect(second.RefreshToken); got["active"] != true {
		t.Errorf("the rotated token's successor: %v, want active", got)
	}

	// Revoked: the access token and the refresh token of the grant.
	g.revokeToken(c.ClientID, second.RefreshToken, "")
	wantInactive(t, "access token of a revoked grant", in.introspect(second.AccessToken))
	wantInactive(t, "revoked refresh token", in.introspect(second.RefreshToken))

	// Unknown and forged.
	parts := strings.Split(second.AccessToken, ".")
	for name, token := range map[string]string{
		"unknown": "unknown", "long": strings.Repeat("x", 500), "not a jwt": "a.b.c",
		"bad signature": parts[0] + "." + parts[1] + ".AAAA",
	} {
		t.Run(name, func(t *testing.T) { wantInactive(t, name, in.on(t).introspect(token)) })
	}

	// Expired access token; the refresh token of the same grant lives on.
	c, _, tok = g.fullFlow()
	g.clock.Advance(time.Hour)
	wantInactive(t, "expired access token", in.introspect(tok.AccessToken))
	if got := in.introspect(tok.RefreshToken); got["active"] != true {
		t.Errorf("refresh token of an expired access token: %v, want active", got)
	}
	// Expired refresh token.
	g.clock.Advance(30 * 24 * time.Hour)
	wantInactive(t, "expired refresh token", in.introspect(tok.RefreshToken))
}

// RT-1: a family revoked for reuse is inactive at once.
func TestIntrospect_ReusedFamilyInactive(t *testing.T) {
	g := newGateway(t)
	in := g.newIntrospector("client_secret_post")
	c, _, tok := g.fullFlow()
	_, second := g.refresh(c.ClientID, tok.RefreshToken, nil)
	g.clock.Advance(31 * time.Second)
	g.refresh(c.ClientID, tok.RefreshToken, nil)
	wantInactive(t, "access token of a reused family", in.introspect(second.AccessToken))
	wantInactive(t, "refresh token of a reused family", in.introspect(second.RefreshToken))
}

// RFC 7662 §2.1: introspection needs client authentication; a public
// client (client_id alone) gets 401 invalid_client, as do a wrong secret
// and an unknown client.
func TestIntrospect_PublicClientRefused(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	conf := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	for name, form := range map[string]url.Values{
		"public client":  {"token": {tok.AccessToken}, "client_id": {c.ClientID}},
		"wrong secret":   {"token": {tok.AccessToken}, "client_id": {conf.ClientID}, "client_secret": {"wrong"}},
		"no secret":      {"token": {tok.AccessToken}, "client_id": {conf.ClientID}},
		"unknown client": {"token": {tok.AccessToken}, "client_id": {"nobody"}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, b := g.on(t).postForm(g.url+"/introspect", form)
			if e := decode[map[string]string](t, b); resp.StatusCode != 401 || e["error"] != "invalid_client" || strings.Contains(string(b), "active") {
				t.Errorf("got %d %s, want 401 invalid_client and nothing about the token", resp.StatusCode, b)
			}
		})
	}
	// A confidential client without a token: invalid_request.
	req, _ := http.NewRequest("POST", g.url+"/introspect", strings.NewReader(""))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(conf.ClientID, conf.ClientSecret)
	if resp, b := g.do(req); resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_request") {
		t.Errorf("no token: %d %s, want 400 invalid_request", resp.StatusCode, b)
	}
}

// Pre-registered confidential clients may introspect too.
func TestIntrospect_StaticConfidentialClient(t *testing.T) {
	g := newGateway(t, func(c *mcpgateConfig) {
		c.Clients = append(c.Clients, mcpgate.Client{ID: "resource-server", Secret: "s3cret-of-the-rs", RedirectURIs: []string{"https://rs.example/cb"}})
	})
	_, _, tok := g.fullFlow()
	req, _ := http.NewRequest("POST", g.url+"/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("resource-server", "s3cret-of-the-rs")
	resp, b := g.do(req)
	if got := decode[map[string]any](t, b); resp.StatusCode != 200 || got["active"] != true {
		t.Fatalf("static confidential client: %d %s, want 200 with active true", resp.StatusCode, b)
	}
}
