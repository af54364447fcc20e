package mcpgate_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/store"
	"github.com/mcpgate/mcpgate/store/memory"
	"github.com/mcpgate/mcpgate/upstream"
)

// revokeToken posts to /revoke as a public client (client_id in the body)
// and checks the RFC 7009 §2.2 answer: 200, empty body, no-store.
func (g *gw) revokeToken(clientID, token, hint string) {
	g.t.Helper()
	form := url.Values{"token": {token}, "client_id": {clientID}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	resp, body := g.postForm(g.url+"/revoke", form)
	if resp.StatusCode != 200 || len(body) != 0 || resp.Header.Get("Cache-Control") != "no-store" {
		g.t.Fatalf("RFC 7009 §2.2: revoke: %d %q %v; want 200, an empty body, no-store", resp.StatusCode, body, resp.Header)
	}
}

// RFC 7009: revoking a refresh token ends its whole family, and the
// family's access tokens are refused at /mcp at once, even one the guard
// has verified and cached before.
func TestRevoke_RefreshTokenKillsFamily(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	_, second := g.refresh(c.ClientID, tok.RefreshToken, nil)
	for i, at := range []string{tok.AccessToken, second.AccessToken} {
		if r, _ := g.mcpInitialize(g.url, at); r.StatusCode != 200 {
			t.Fatalf("access token %d of the family, before any revocation: %d, want 200", i+1, r.StatusCode)
		}
	}
	g.revokeToken(c.ClientID, second.RefreshToken, "refresh_token")
	if resp, _ := g.refresh(c.ClientID, second.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("revoked refresh token still refreshes: %d, want 400", resp.StatusCode)
	}
	for name, at := range map[string]string{"first": tok.AccessToken, "second": second.AccessToken} {
		if r, _ := g.mcpInitialize(g.url, at); r.StatusCode != 401 {
			t.Errorf("%s access token of a revoked family still works: %d, want 401", name, r.StatusCode)
		}
	}
	// The hint is only a hint: the wrong one, or none, still revokes.
	c2, _, tok2 := g.fullFlow()
	g.revokeToken(c2.ClientID, tok2.RefreshToken, "access_token")
	if r, _ := g.mcpInitialize(g.url, tok2.AccessToken); r.StatusCode != 401 {
		t.Errorf("wrong hint: access token still works: %d, want 401", r.StatusCode)
	}
}

// RFC 7009: revoking an access token kills it at /mcp at once, and its
// grant with it: the refresh token stops working too.
func TestRevoke_AccessTokenKillsGrant(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("fresh access token refused: %d, want 200", r.StatusCode)
	}
	g.revokeToken(c.ClientID, tok.AccessToken, "")
	r, _ := g.mcpInitialize(g.url, tok.AccessToken)
	if r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("revoked access token: %d %q, want 401 invalid_token", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("the grant of a revoked access token still refreshes: %d, want 400", resp.StatusCode)
	}
	// Another grant of the same user is untouched.
	_, _, other := g.fullFlow()
	if r, _ := g.mcpInitialize(g.url, other.AccessToken); r.StatusCode != 200 {
		t.Fatalf("another grant was revoked too: %d, want 200", r.StatusCode)
	}
}

// A client may revoke an access token past its expiry: its grant, whose
// refresh token still lives, ends.
func TestRevoke_ExpiredAccessToken(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	g.clock.Advance(2 * time.Hour)
	g.revokeToken(c.ClientID, tok.AccessToken, "access_token")
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("the grant of a revoked expired access token still refreshes: %d, want 400", resp.StatusCode)
	}
}

// RFC 7009 §2.1: the server checks that the token was issued to the
// client asking; another client's request is answered 200 and changes
// nothing.
func TestRevoke_OtherClientCannotRevoke(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	thief := g.register(nil)
	confidential := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	for name, token := range map[string]string{"access token": tok.AccessToken, "refresh token": tok.RefreshToken} {
		t.Run(name, func(t *testing.T) {
			g := g.on(t)
			g.revokeToken(thief.ClientID, token, "")
			req, _ := http.NewRequest("POST", g.url+"/revoke", strings.NewReader(url.Values{"token": {token}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(confidential.ClientID, confidential.ClientSecret)
			if resp, _ := g.do(req); resp.StatusCode != 200 {
				t.Fatalf("revocation by another, confidential client: %d, want 200", resp.StatusCode)
			}
		})
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("another client revoked the access token: %d, want 200", r.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Fatalf("another client revoked the refresh token: %d, want 200", resp.StatusCode)
	}
}

// RFC 7009 §2.2: unknown and invalid tokens get 200 too. A request
// without a token, or from a client that fails authentication, is an
// error as at /token (§2.2.1).
func TestRevoke_UnknownTokenAndErrors(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	parts := strings.Split(tok.AccessToken, ".")
	for name, token := range map[string]string{"unknown": "unknown", "long": strings.Repeat("x", 500), "not a jwt": "a.b.c",
		"bad signature": parts[0] + "." + parts[1] + ".AAAA"} {
		t.Run(name, func(t *testing.T) { g.on(t).revokeToken(c.ClientID, token, "refresh_token") })
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("a forged token revoked the grant: %d, want 200", r.StatusCode)
	}
	confidential := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_post"})
	cases := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no token", url.Values{"client_id": {c.ClientID}}, 400, "invalid_request"},
		{"no client", url.Values{"token": {tok.RefreshToken}}, 400, "invalid_request"},
		{"unknown client", url.Values{"token": {tok.RefreshToken}, "client_id": {"nobody"}}, 401, "invalid_client"},
		{"wrong secret", url.Values{"token": {tok.RefreshToken}, "client_id": {confidential.ClientID}, "client_secret": {"wrong"}}, 401, "invalid_client"},
		{"no secret", url.Values{"token": {tok.RefreshToken}, "client_id": {confidential.ClientID}}, 401, "invalid_client"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := g.on(t).postForm(g.url+"/revoke", tc.form)
			if e := decode[map[string]string](t, b); resp.StatusCode != tc.status || e["error"] != tc.code || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("got %d %s (Cache-Control %q), want %d %s no-store", resp.StatusCode, b, resp.Header.Get("Cache-Control"), tc.status, tc.code)
			}
		})
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 200 {
		t.Fatalf("a failed revocation revoked: %d, want 200", resp.StatusCode)
	}
}

// MCP Inspector row of CLIENT-QUIRKS: browser clients reach /revoke and
// /introspect with CORS, preflight included.
func TestInspector_RevokeAndIntrospectCORS(t *testing.T) {
	g := newGateway(t)
	for _, path := range []string{"/revoke", "/introspect"} {
		req := newReq(t, "OPTIONS", g.url+path)
		req.Header.Set("Origin", "http://localhost:6274")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, _ := g.do(req)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s preflight: %d %v, want 204 with Access-Control-Allow-Origin *", path, resp.StatusCode, resp.Header)
		}
		resp, _ = g.postForm(g.url+path, url.Values{"token": {"x"}, "client_id": {"nobody"}}, "Origin", "http://localhost:6274")
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: answer headers %v, want Access-Control-Allow-Origin *", path, resp.Header)
		}
	}
}

// A revocation survives a restart: a new gateway on the same store loads
// the grants revoked within one access-token lifetime into its denylist,
// so the revoked access token, still unexpired, stays refused there, while
// an unrevoked one of the same store passes.
func TestRevoke_SurvivesRestart(t *testing.T) {
	st := memory.New()
	g := newGateway(t, func(c *mcpgateConfig) { c.Store = st })
	c, _, revoked := g.fullFlow()
	_, _, kept := g.fullFlow()
	g.revokeToken(c.ClientID, revoked.AccessToken, "access_token")

	g.clock.Advance(10 * time.Minute)
	restarted := g.restartOn(st)
	if code := initializeStatus(restarted, g.url, kept.AccessToken); code != 200 {
		t.Fatalf("after the restart, an unrevoked access token is refused: %d, want 200", code)
	}
	if code := initializeStatus(restarted, g.url, revoked.AccessToken); code != 401 {
		t.Fatalf("after the restart, the revoked access token works again: %d, want 401", code)
	}
}

// SEC-80: a gateway that starts reads the grants revoked while their
// access tokens may still be unexpired, reaching back as far before that
// as its periodic reload does: revoked_at is the revoking gateway's clock,
// which may run behind this one's, and a grant it revoked must not be
// missed for that.
func TestSEC80_RestartReadsRevocationsOfALaggingClock(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	g := newGateway(t, func(c *mcpgateConfig) { c.Store = st })
	_, _, tok := g.fullFlow()
	grants := mustListGrants(t, st, "local:"+testUser)
	if len(grants) != 1 {
		t.Fatalf("grants after one flow: %d, want 1", len(grants))
	}
	// Revoked by a gateway whose clock ran 30 s behind, at the moment the
	// token was minted; this gateway restarts 10 s before the token
	// expires (the default lifetime, 1 h).
	if err := st.RevokeGrant(ctx, grants[0].ID, g.clock.Now().Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	g.clock.Advance(time.Hour - 10*time.Second)
	restarted := g.restartOn(st)
	if code := initializeStatus(restarted, g.url, tok.AccessToken); code != http.StatusUnauthorized {
		t.Fatalf("after the restart, the access token of a grant revoked by a lagging clock: %d, want 401", code)
	}
}

// restartOn starts another gateway on st with g's key, connector and
// clock: g restarted.
func (g *gw) restartOn(st store.Store) *mcpgate.Gateway {
	g.t.Helper()
	restarted, err := mcpgate.New(context.Background(), mcpgate.Config{
		Store:      st,
		SecretKey:  g.secretKey(),
		Connectors: []upstream.Connector{g.local},
		Now:        g.clock.Now,
	})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(func() { restarted.Close(context.Background()) })
	return restarted
}

// initializeStatus sends an MCP initialize with token to gateway, at
// base's /mcp (the same issuer as the gateway that minted the token: the
// request names its loopback host, which the issuer follows), and
// returns the status.
func initializeStatus(gateway http.Handler, base, token string) int {
	req := httptest.NewRequest("POST", base+"/mcp", strings.NewReader(
		`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	gateway.ServeHTTP(rec, req)
	return rec.Code
}

// secretKey is the key newGateway gives every gateway.
func (g *gw) secretKey() []byte { return []byte(strings.Repeat("\x07", 32)) }

// SEC-12: a revocation the store could not commit is answered 503
// temporarily_unavailable with Retry-After (RFC 7009 §2.2.1: the client
// must then assume the token still exists, and may retry), without the
// store's error text; and the token does still exist: the gateway does not
// deny in memory what the store kept, so the access token and the refresh
// token behave alike, here and in any other process. The retry revokes.
func TestSEC12_RevokeThatFailsToCommit(t *testing.T) {
	g := newGateway(t, withFaultyStore)
	c, _, tok := g.fullFlow()
	g.faulty().failWrites.Store(true)
	resp, body := g.postForm(g.url+"/revoke", url.Values{"token": {tok.AccessToken}, "client_id": {c.ClientID}})
	e := decode[map[string]string](t, body)
	if resp.StatusCode != 503 || e["error"] != "temporarily_unavailable" || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("revoke while the store cannot write: %d %v %s, want 503 temporarily_unavailable with Retry-After, no-store", resp.StatusCode, resp.Header, body)
	}
	if strings.Contains(string(body), "disk") || strings.Contains(string(body), "sqlite") {
		t.Errorf("the store's error reached the client: %s", body)
	}
	g.faulty().failWrites.Store(false)
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Errorf("access token after a revocation that was not committed: %d, want 200, as the store says", r.StatusCode)
	}
	resp, next := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("refresh token after a revocation that was not committed: %d, want 200", resp.StatusCode)
	}
	// The client retries, and this time it holds.
	g.revokeToken(c.ClientID, next.RefreshToken, "")
	if r, _ := g.mcpInitialize(g.url, next.AccessToken); r.StatusCode != 401 {
		t.Errorf("access token after the retried revocation: %d, want 401", r.StatusCode)
	}
	if resp, _ := g.refresh(c.ClientID, next.RefreshToken, nil); resp.StatusCode != 400 {
		t.Errorf("refresh token after the retried revocation: %d, want 400", resp.StatusCode)
	}
}

// SEC-142: an access token lifetime the guard would refuse is refused by
// New, with a message, instead of a gateway whose every token is 401.
func TestAccessTokenTTLBounded(t *testing.T) {
	_, err := mcpgate.New(context.Background(), mcpgate.Config{
		Store: memory.New(), SecretKey: make([]byte, 32), AccessTokenTTL: 48 * time.Hour,
	})
	if err == nil || !strings.Contains(err.Error(), "AccessTokenTTL 48h0m0s is longer than") {
		t.Fatalf("New with AccessTokenTTL 48h: %v, want it refused naming AccessTokenTTL", err)
	}
}

// New refuses a PublicURL with a path, as serve's settings do: the
// resources' paths are matched under the origin, and their access rules
// would otherwise apply to no request.
func TestPublicURLIsAnOrigin(t *testing.T) {
	for _, u := range []string{"https://mcp.example.com/base", "https://mcp.example.com/?x=1", "https://user:pw@mcp.example.com", "mcp.example.com"} {
		_, err := mcpgate.New(context.Background(), mcpgate.Config{Store: memory.New(), SecretKey: make([]byte, 32), PublicURL: u})
		if err == nil || !strings.Contains(err.Error(), "PublicURL must be an origin") {
			t.Errorf("New with PublicURL %s: %v, want it refused", u, err)
		}
	}
}

// SEC-158: an open event stream ends when its grant is revoked, instead of
// delivering the server's messages for hours to a client whose token is
// refused everywhere else.
func TestSEC158_EventStreamEndsWhenRevoked(t *testing.T) {
	g := newGateway(t)
	c, _, tok := g.fullFlow()
	sid := g.mcpSession(tok.AccessToken)
	send := func(method, body string) *http.Response {
		req, _ := http.NewRequest(method, g.url+"/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if method == http.MethodGet {
			req.Header.Set("Accept", "text/event-stream")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	send(http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`).Body.Close()
	stream := send(http.MethodGet, "")
	defer stream.Body.Close()
	if stream.StatusCode != 200 {
		t.Fatalf("GET stream: %d", stream.StatusCode)
	}
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, stream.Body)
		close(ended)
	}()
	g.revokeToken(c.ClientID, tok.AccessToken, "")
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the event stream is still open 5 s after its grant was revoked")
	}
}
