package mcpgate_test

import (
	"io"
	"maps"
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

// resourceServer is the pre-registered confidential client that
// withResourceServer configures and lists in IntrospectionClients.
const resourceServer, resourceServerSecret = "resource-server", "s3cret-of-the-rs"

// withResourceServer pre-registers resourceServer and lets it introspect
// every access token (SEC-10).
func withResourceServer(c *mcpgate.Config) {
	c.Clients = append(c.Clients, mcpgate.Client{ID: resourceServer, Secret: resourceServerSecret, RedirectURIs: []string{"https://rs.example/cb"}})
	c.IntrospectionClients = append(c.IntrospectionClients, resourceServer)
}

// resourceServer returns the introspector of withResourceServer.
func (g *gw) resourceServer() *introspector {
	return &introspector{g: g, c: registered{ClientID: resourceServer, ClientSecret: resourceServerSecret, AuthMethod: "client_secret_basic"}}
}

// confidentialFlow registers a confidential client (method is how it
// authenticates), runs a whole flow for it and returns it, as an
// introspector of its own tokens, with its tokens.
func (g *gw) confidentialFlow(method string) (*introspector, tokenResponse) {
	g.t.Helper()
	in := g.newIntrospector(method)
	a := g.newAuth(in.c.ClientID)
	code, _ := g.login(a)
	resp, tok := in.token(url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {a.Redirect}, "code_verifier": {a.Verifier}, "resource": {a.Resource}})
	if resp.StatusCode != 200 || tok.AccessToken == "" || tok.RefreshToken == "" {
		g.t.Fatalf("token: %d %+v, want 200 with an access and a refresh token", resp.StatusCode, tok)
	}
	return in, tok
}

// post posts form to the endpoint path, authenticated as in's client.
func (in *introspector) post(path string, form url.Values) (*http.Response, []byte) {
	in.g.t.Helper()
	form = maps.Clone(form)
	req, _ := http.NewRequest("POST", in.g.url+path, nil)
	if in.c.AuthMethod == "client_secret_basic" {
		req.SetBasicAuth(in.c.ClientID, in.c.ClientSecret)
	} else {
		form.Set("client_id", in.c.ClientID)
		form.Set("client_secret", in.c.ClientSecret)
	}
	req.Body = io.NopCloser(strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return in.g.do(req)
}

// token posts form to /token as in's client.
func (in *introspector) token(form url.Values) (*http.Response, tokenResponse) {
	in.g.t.Helper()
	resp, b := in.post("/token", form)
	return resp, decode[tokenResponse](in.g.t, b)
}

// refresh uses rt as in's client.
func (in *introspector) refresh(rt string) (*http.Response, tokenResponse) {
	in.g.t.Helper()
	return in.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

// revoke revokes token as in's client and checks the RFC 7009 §2.2 answer.
func (in *introspector) revoke(token string) {
	in.g.t.Helper()
	resp, body := in.post("/revoke", url.Values{"token": {token}})
	if resp.StatusCode != 200 || len(body) != 0 {
		in.g.t.Fatalf("RFC 7009 §2.2: revoke: %d %q; want 200 and an empty body", resp.StatusCode, body)
	}
}

// on returns in for subtest t, as gw.on does.
func (in *introspector) on(t *testing.T) *introspector {
	return &introspector{g: in.g.on(t), c: in.c}
}

// introspect posts token and returns the decoded RFC 7662 answer, after
// checking it is a no-store JSON 200.
func (in *introspector) introspect(token string) map[string]any {
	in.g.t.Helper()
	resp, body := in.post("/introspect", url.Values{"token": {token}})
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
// refresh token by its grant. The token's own client sees both (SEC-10).
func TestIntrospect_ActiveTokens(t *testing.T) {
	g := newGateway(t)
	in, tok := g.confidentialFlow("client_secret_basic")

	at := in.introspect(tok.AccessToken)
	want := map[string]any{"active": true, "scope": "mcp", "client_id": in.c.ClientID, "username": testUser,
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
	want = map[string]any{"active": true, "scope": "mcp", "client_id": in.c.ClientID, "token_type": "refresh_token", "sub": at["sub"]}
	for k, v := range want {
		if rt[k] != v {
			t.Errorf("refresh token: %s = %v, want %v", k, rt[k], v)
		}
	}
	if exp, _ := rt["exp"].(float64); int64(exp) < now+29*24*3600 {
		t.Errorf("refresh token: exp %v, want at least 29 days from now (%d)", rt["exp"], now+29*24*3600)
	}

	// client_secret_post works as well.
	post, tok2 := g.confidentialFlow("client_secret_post")
	if got := post.introspect(tok2.AccessToken); got["active"] != true {
		t.Errorf("client_secret_post: %v, want active", got)
	}
}

// RFC 7662 §2.2: expired, revoked, rotated, unknown and forged tokens are
// all just {"active":false}, even to the token's own client.
func TestIntrospect_InactiveTokens(t *testing.T) {
	g := newGateway(t)

	// Rotated refresh token: not active, though a retry within the grace
	// window would still get its pair; its successor is.
	in, tok := g.confidentialFlow("client_secret_basic")
	_, second := in.refresh(tok.RefreshToken)
	wantInactive(t, "rotated refresh token", in.introspect(tok.RefreshToken))
	if got := in.introspect(second.RefreshToken); got["active"] != true {
		t.Errorf("the rotated token's successor: %v, want active", got)
	}

	// Revoked: the access token and the refresh token of the grant.
	in.revoke(second.RefreshToken)
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
	in, tok = g.confidentialFlow("client_secret_post")
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
	in, tok := g.confidentialFlow("client_secret_post")
	_, second := in.refresh(tok.RefreshToken)
	g.clock.Advance(31 * time.Second)
	in.refresh(tok.RefreshToken)
	wantInactive(t, "access token of a reused family", in.introspect(second.AccessToken))
	wantInactive(t, "refresh token of a reused family", in.introspect(second.RefreshToken))
}

// SEC-10: a confidential client learns nothing of another client's tokens:
// its access token and its refresh token are {"active":false} to it, the
// same answer as for a token that does not exist; and probing a stolen
// refresh token neither uses it up nor trips reuse detection.
// SEC-12 at /introspect: a grant ended here while the store took no
// write is refused at /token, and introspection says so of its refresh
// token too, as it does of its access token. Fails before: the refresh
// token was reported active.
func TestIntrospect_EndedGrantNotYetStoredInactive(t *testing.T) {
	g := newGateway(t, withFaultyStore)
	owner, tok := g.confidentialFlow("client_secret_post")
	other := g.register(nil)
	g.faulty().failWrites.Store(true)
	if resp, _ := g.refresh(other.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("the refresh token presented by another client: %d, want 400 (the grant ends)", resp.StatusCode)
	}
	if resp, _ := owner.refresh(tok.RefreshToken); resp.StatusCode != 400 {
		t.Fatalf("the owner's refresh after the misuse: %d, want 400", resp.StatusCode)
	}
	for name, token := range map[string]string{"refresh": tok.RefreshToken, "access": tok.AccessToken} {
		if got := owner.introspect(token); got["active"] != false {
			t.Errorf("introspection of the %s token of a grant ended, its write not stored: %v, want active false", name, got)
		}
	}
}

func TestSEC10_IntrospectionOnlyForTheTokensClient(t *testing.T) {
	g := newGateway(t)
	a, tok := g.confidentialFlow("client_secret_basic")
	b := g.newIntrospector("client_secret_post")
	_, _, public := g.fullFlow()
	for name, token := range map[string]string{
		"A's access token": tok.AccessToken, "A's refresh token": tok.RefreshToken,
		"a public client's access token": public.AccessToken, "a public client's refresh token": public.RefreshToken,
	} {
		wantInactive(t, "B introspecting "+name, b.introspect(token))
	}
	// A pre-registered confidential client that is not listed is no
	// different.
	g2 := newGateway(t, func(c *mcpgate.Config) {
		c.Clients = append(c.Clients, mcpgate.Client{ID: "rs", Secret: "s3cret-of-the-rs", RedirectURIs: []string{"https://rs.example/cb"}})
	})
	_, _, other := g2.fullFlow()
	unlisted := &introspector{g: g2, c: registered{ClientID: "rs", ClientSecret: "s3cret-of-the-rs", AuthMethod: "client_secret_basic"}}
	wantInactive(t, "an unlisted static client introspecting an access token", unlisted.introspect(other.AccessToken))

	// The token's own client sees both.
	for name, token := range map[string]string{"access token": tok.AccessToken, "refresh token": tok.RefreshToken} {
		if got := a.introspect(token); got["active"] != true || got["client_id"] != a.c.ClientID {
			t.Errorf("A introspecting its %s: %v, want active with its client_id", name, got)
		}
	}
	// After B's probe (and A's own look), A's refresh token refreshes once,
	// and its family lives on.
	resp, next := a.refresh(tok.RefreshToken)
	if resp.StatusCode != 200 || next.RefreshToken == "" {
		t.Fatalf("A refreshing after B's probe: %d %+v, want 200 with a new pair", resp.StatusCode, next)
	}
	if r, _ := g.mcpInitialize(g.url, next.AccessToken); r.StatusCode != 200 {
		t.Errorf("the refreshed access token: %d, want 200", r.StatusCode)
	}
	if got := a.introspect(next.RefreshToken); got["active"] != true {
		t.Errorf("A's new refresh token: %v, want active", got)
	}
}

// SEC-10: a resource server the operator lists (IntrospectionClients) sees
// every access token, and no refresh token but its own.
func TestSEC10_IntrospectionResourceServers(t *testing.T) {
	g := newGateway(t, withResourceServer)
	rs := g.resourceServer()
	c, _, tok := g.fullFlow()
	if got := rs.introspect(tok.AccessToken); got["active"] != true || got["username"] != testUser {
		t.Errorf("listed resource server, access token: %v, want active with the username", got)
	}
	wantInactive(t, "listed resource server, another client's refresh token", rs.introspect(tok.RefreshToken))
	// The probe left the refresh token as it was.
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Errorf("refreshing after the resource server's probe: %d, want 200", resp.StatusCode)
	}
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

// Pre-registered confidential clients listed in IntrospectionClients may
// introspect any access token (SEC-10).
func TestIntrospect_StaticConfidentialClient(t *testing.T) {
	g := newGateway(t, withResourceServer)
	_, _, tok := g.fullFlow()
	req, _ := http.NewRequest("POST", g.url+"/introspect", strings.NewReader(url.Values{"token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(resourceServer, resourceServerSecret)
	resp, b := g.do(req)
	if got := decode[map[string]any](t, b); resp.StatusCode != 200 || got["active"] != true {
		t.Fatalf("static confidential client: %d %s, want 200 with active true", resp.StatusCode, b)
	}
}

// SEC-10: only a pre-registered client with a secret may be listed.
func TestSEC10_IntrospectionClientsMustBeConfidential(t *testing.T) {
	for name, clients := range map[string][]mcpgate.Client{
		"public": {{ID: "rs", RedirectURIs: []string{"https://rs.example/cb"}}},
		"absent": nil,
	} {
		_, err := mcpgate.New(t.Context(), withStore(mcpgate.Config{Clients: clients, IntrospectionClients: []string{"rs"}}))
		if err == nil || !strings.Contains(err.Error(), "introspection") {
			t.Errorf("%s: %v, want an error naming introspection", name, err)
		}
	}
}
