package mcpgate_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/flows"
	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// The flow debugger's tests: each drives a real failure through the
// gateway and reads back, from the store, the reason the attempt stopped
// (SEC-117), and checks that none of the flow's secrets was recorded
// (SEC-113).

func withFlows(c *mcpgateConfig) { c.RecordFlows = true }

// flowEvent waits for the recorder to have written an event of step
// with outcome, and returns it with every event recorded so far.
func (g *gw) flowEvent(step, outcome string) (store.FlowEvent, []store.FlowEvent) {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, err := g.store.ListFlowEvents(context.Background(), store.FlowFilter{})
		if err != nil {
			g.t.Fatal(err)
		}
		for _, e := range all {
			if e.Step == step && e.Outcome == outcome {
				return e, all
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("no %s event with outcome %s recorded within 30 s; recorded: %+v", step, outcome, all)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flowsWritten records one more step, a made-up client's /authorize, and
// waits for it: the queue is written in order, so every step recorded
// before it is in too. It returns every event recorded. (Not after a junk
// flood from this address: the step would be left out by the rate.)
func (g *gw) flowsWritten() []store.FlowEvent {
	g.t.Helper()
	if resp, _ := g.get(g.newAuth("made-up").URL()); resp.StatusCode != http.StatusBadRequest {
		g.t.Fatalf("/authorize with a made-up client: %d, want 400", resp.StatusCode)
	}
	_, all := g.flowEvent("authorize", "invalid_client")
	return all
}

// revokedGrant runs a whole flow and revokes its grant, for a client that
// goes on presenting its tokens.
func (g *gw) revokedGrant() (registered, tokenResponse) {
	g.t.Helper()
	c, _, tok := g.fullFlow()
	if resp, _ := g.postForm(g.url+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {c.ClientID}}); resp.StatusCode != 200 {
		g.t.Fatalf("/revoke: %d", resp.StatusCode)
	}
	return c, tok
}

// noSecrets fails if any event holds one of secrets (SEC-113).
func noSecrets(t *testing.T, events []store.FlowEvent, secrets ...string) {
	t.Helper()
	for _, e := range events {
		s := fmt.Sprintf("%+v", e)
		for _, secret := range secrets {
			if secret != "" && strings.Contains(s, secret) {
				t.Errorf("SEC-113: a secret (%.6s…) was recorded: %s", secret, s)
			}
		}
	}
}

func wantReason(t *testing.T, e store.FlowEvent, want string) {
	t.Helper()
	if e.Reason != want {
		t.Errorf("reason:\n got %q\nwant %q", e.Reason, want)
	}
}

func wantReasonPrefix(t *testing.T, e store.FlowEvent, want string) {
	t.Helper()
	if !strings.HasPrefix(e.Reason, want) {
		t.Errorf("reason:\n got %q\nwant it to start with %q", e.Reason, want)
	}
}

// The secrets of a flow that went as far as a code: every one a test
// can hold.
func flowSecrets(a *authRequest, code string, more ...string) []string {
	return append([]string{a.Verifier, tokens.S256(a.Verifier), a.State, code, testPassword}, more...)
}

// SEC-117: the successful flow's timeline, every step ok, in one attempt
// from /authorize to the refresh, and no secret in it.
func TestSEC117_SuccessfulFlowTimeline(t *testing.T) {
	g := newGateway(t, withFlows)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Scope = "mcp offline_access"
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	_, next := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if next.AccessToken == "" {
		t.Fatalf("refresh failed: %+v", next)
	}
	e, all := g.flowEvent("token_refresh", "ok")
	var steps []string
	for _, x := range all {
		if x.Attempt == e.Attempt {
			steps = append(steps, x.Step+":"+x.Outcome)
			if x.ClientID != c.ClientID {
				t.Errorf("step %s names client %q, want %q", x.Step, x.ClientID, c.ClientID)
			}
		}
	}
	if got := strings.Join(steps, " "); got != "authorize:ok consent:ok login:ok token_code:ok token_refresh:ok" {
		t.Errorf("the attempt's steps: %s, want authorize, consent, login, token_code, token_refresh, all ok", got)
	}
	if e.UserID != "local:"+testUser {
		t.Errorf("user %q, want local:%s", e.UserID, testUser)
	}
	auth, _ := g.flowEvent("authorize", "ok")
	for k, want := range map[string]string{"redirect_uri": redirectURI, "resource": g.url + "/mcp", "scope": "mcp offline_access", "pkce": "S256"} {
		if auth.Details[k] != want {
			t.Errorf("authorize detail %s = %q, want %q", k, auth.Details[k], want)
		}
	}
	reg, _ := g.flowEvent("register", "ok")
	if reg.ClientID != c.ClientID || reg.Details["redirect_uris"] != redirectURI {
		t.Errorf("register event: %+v", reg)
	}
	noSecrets(t, all, flowSecrets(a, code, tok.AccessToken, tok.RefreshToken, next.AccessToken, next.RefreshToken)...)
}

// SEC-117: a redirect URI the client did not register.
func TestSEC117_UnregisteredRedirectURI(t *testing.T) {
	g := newGateway(t, withFlows)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Redirect = "http://127.0.0.1:33419/cb"
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 {
		t.Fatalf("/authorize: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("authorize", "invalid_redirect_uri")
	wantReason(t, e, "redirect_uri http://127.0.0.1:33419/cb is not registered for this client; registered: "+redirectURI)
	if e.ClientID != c.ClientID || e.Details["redirect_uri"] != a.Redirect {
		t.Errorf("event: %+v", e)
	}
	noSecrets(t, all, flowSecrets(a, "")...)
}

// SEC-117: a client whose registration the gateway lost (here: another
// gateway with a fresh store, as after a store reset).
func TestSEC117_LostRegistration(t *testing.T) {
	old := newGateway(t)
	c := old.register(nil)
	g := newGateway(t, withFlows)
	a := g.newAuth(c.ClientID)
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 {
		t.Fatalf("/authorize: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("authorize", "invalid_client")
	wantReasonPrefix(t, e, "client_id "+c.ClientID+" is not registered here: the registration was lost")
	if !strings.Contains(e.Reason, "must register again") {
		t.Errorf("reason does not say what to do: %q", e.Reason)
	}
	noSecrets(t, all, flowSecrets(a, "")...)
}

// SEC-117: a metadata document that cannot be fetched.
func TestSEC117_MetadataDocumentUnreachable(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withFlows, withDocHost(docs))
	id := "https://127.0.0.1:1/client.json" // nothing listens on port 1
	a := g.newAuth(id)
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 {
		t.Fatalf("/authorize: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("metadata_document", "invalid_client")
	wantReasonPrefix(t, e, "the metadata document at "+id+" was refused: the application's client metadata document could not be fetched (")
	if !strings.Contains(e.Reason, "refused") || e.Details["metadata_document"] != id {
		t.Errorf("event: %+v", e)
	}
	noSecrets(t, all, flowSecrets(a, "")...)
}

// SEC-117: a metadata document that answers, but is not valid: the
// reason says what is wrong with it.
func TestSEC117_MetadataDocumentInvalid(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withFlows, withDocHost(docs))
	id := docs.put("/no-name.json", map[string]any{"redirect_uris": []string{redirectURI}})
	a := g.newAuth(id)
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 {
		t.Fatalf("/authorize: %d, want 400", resp.StatusCode)
	}
	e, _ := g.flowEvent("metadata_document", "invalid_client")
	wantReason(t, e, "the metadata document at "+id+" was refused: the document has no client_name")

	missing := docs.srv.URL + "/missing.json"
	resp, _ := g.postForm(g.url+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"c0de"}, "client_id": {missing}, "code_verifier": {a.Verifier}})
	if resp.StatusCode != 401 {
		t.Fatalf("/token: %d, want 401", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, _ := g.store.ListFlowEvents(context.Background(), store.FlowFilter{ClientID: missing})
		if len(all) == 1 {
			wantReason(t, all[0], "the metadata document at "+missing+" was refused: the client metadata URL answered HTTP 404 instead of 200")
			if all[0].Step != "metadata_document" || all[0].Details["grant_type"] != "authorization_code" {
				t.Errorf("event at /token: %+v", all[0])
			}
			noSecrets(t, all, a.Verifier, "c0de")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no event for the document at /token within 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// SEC-117: a code exchanged with another PKCE verifier.
func TestSEC117_PKCEMismatch(t *testing.T) {
	g := newGateway(t, withFlows)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	right := a.Verifier
	a.Verifier = strings.Repeat("w", 50)
	if resp, _ := g.exchange(a, code); resp.StatusCode != 400 {
		t.Fatalf("/token: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("token_code", "invalid_grant")
	wantReason(t, e, "PKCE code_verifier does not match the code_challenge sent to /authorize; the code is left unused, for the client that holds its verifier (SEC-176)")
	if e.UserID != "local:"+testUser || e.ClientID != c.ClientID {
		t.Errorf("event: %+v", e)
	}
	if steps := stepsOf(all, e.Attempt); steps != "authorize:ok consent:ok login:ok token_code:invalid_grant" {
		t.Errorf("the attempt: %s, want every step from authorize to the failed token_code", steps)
	}
	noSecrets(t, all, flowSecrets(a, code, right)...)
}

// countSteps counts the events of step with outcome.
func countSteps(all []store.FlowEvent, step, outcome string) int {
	n := 0
	for _, e := range all {
		if e.Step == step && e.Outcome == outcome {
			n++
		}
	}
	return n
}

func stepsOf(all []store.FlowEvent, attempt string) string {
	var steps []string
	for _, e := range all {
		if e.Attempt == attempt {
			steps = append(steps, e.Step+":"+e.Outcome)
		}
	}
	return strings.Join(steps, " ")
}

// SEC-117: a code redeemed after its 60 s.
func TestSEC117_ExpiredCode(t *testing.T) {
	g := newGateway(t, withFlows)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	g.clock.Advance(61 * time.Second)
	if resp, _ := g.exchange(a, code); resp.StatusCode != 400 {
		t.Fatalf("/token: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("token_code", "invalid_grant")
	wantReasonPrefix(t, e, "authorization code expired or unknown: a code lives 60 s and is used once; it was redeemed too late")
	noSecrets(t, all, flowSecrets(a, code)...)
}

// SEC-117: a code redeemed twice.
func TestSEC117_CodeReplay(t *testing.T) {
	g := newGateway(t, withFlows)
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if resp, _ := g.exchange(a, code); resp.StatusCode != 400 {
		t.Fatalf("second /token: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("token_code", "invalid_grant")
	wantReason(t, e, "authorization code used a second time (replayed): the grant it created, "+e.Attempt+
		", is revoked and its tokens refused (PKCE-3)")
	if steps := stepsOf(all, e.Attempt); !strings.HasSuffix(steps, "token_code:ok token_code:invalid_grant") {
		t.Errorf("the attempt: %s, want the good exchange then the replay", steps)
	}
	noSecrets(t, all, flowSecrets(a, code, tok.AccessToken, tok.RefreshToken)...)
}

// SEC-117: a rotated refresh token used again after the grace window.
func TestSEC117_RefreshReuse(t *testing.T) {
	g := newGateway(t, withFlows)
	c, a, tok := g.fullFlow()
	_, next := g.refresh(c.ClientID, tok.RefreshToken, nil)
	if next.RefreshToken == "" {
		t.Fatalf("first refresh: %+v", next)
	}
	g.clock.Advance(31 * time.Second)
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != 400 {
		t.Fatalf("reuse: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("token_refresh", "invalid_grant")
	wantReason(t, e, "refresh token reused after the grace window (30s): family revoked (grant "+e.Attempt+"); the client must authorize again")
	noSecrets(t, all, flowSecrets(a, "", tok.AccessToken, tok.RefreshToken, next.AccessToken, next.RefreshToken)...)
}

// SEC-117: a token for one resource presented at another, and a resource
// /authorize does not serve.
func TestSEC117_WrongResource(t *testing.T) {
	g := newGateway(t, withFlows, func(c *mcpgateConfig) {
		c.Resources = []mcpgate.Resource{{Path: "/mcp"}, {Path: "/github/mcp", Scopes: []string{"repo:read"}}}
	})
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	a.Resource = g.url + "/github/mcp"
	code, _ := g.login(a)
	_, tok := g.exchange(a, code)
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("a /github/mcp token at /mcp: %d, want 401", resp.StatusCode)
	}
	e, all := g.flowEvent("resource", "wrong_audience")
	wantReason(t, e, "the access token was issued for "+g.url+"/github/mcp, not "+g.url+
		"/mcp: the client must ask for a token for this resource (the resource parameter, RFC 8707)")
	if e.ClientID != c.ClientID || e.UserID != "local:"+testUser {
		t.Errorf("event: %+v", e)
	}
	if steps := stepsOf(all, e.Attempt); !strings.HasPrefix(steps, "authorize:ok") || !strings.HasSuffix(steps, "resource:wrong_audience") {
		t.Errorf("the refused token is not in its attempt: %s", steps)
	}
	noSecrets(t, all, flowSecrets(a, code, tok.AccessToken, tok.RefreshToken)...)

	b := g.newAuth(c.ClientID)
	b.Resource = "http://127.0.0.1:1/elsewhere"
	if resp, _ := g.get(b.URL()); resp.StatusCode != 302 {
		t.Fatalf("/authorize with an unserved resource: %d, want 302 with invalid_target", resp.StatusCode)
	}
	e, all = g.flowEvent("authorize", "invalid_target")
	wantReason(t, e, "resource http://127.0.0.1:1/elsewhere is not served by this gateway; it serves: "+g.url+"/mcp, "+g.url+"/github/mcp")
	noSecrets(t, all, flowSecrets(b, "")...)
}

// SEC-117: a token without a scope the resource requires.
func TestSEC117_InsufficientScope(t *testing.T) {
	g := newGateway(t, withFlows, func(c *mcpgateConfig) { c.Scopes = []string{"mcp", "mcp:write"} })
	c, a, tok := g.fullFlow()
	_, narrow := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"scope": {"mcp"}})
	if resp, _ := g.mcpInitialize(g.url, narrow.AccessToken); resp.StatusCode != 403 {
		t.Fatalf("narrow token: %d, want 403", resp.StatusCode)
	}
	e, all := g.flowEvent("resource", "insufficient_scope")
	wantReason(t, e, "the access token lacks a scope "+g.url+"/mcp requires: it needs mcp mcp:write and carries mcp")
	noSecrets(t, all, flowSecrets(a, "", tok.AccessToken, tok.RefreshToken, narrow.AccessToken, narrow.RefreshToken)...)
}

// SEC-117: a user the access rules keep out, at login.
func TestSEC117_AccessPolicyRefusal(t *testing.T) {
	g := newGateway(t, withFlows, func(c *mcpgateConfig) { c.Access = mcpgate.Access{Users: []string{"local:bob"}} })
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	b := browser.New(testUser, testPassword)
	if _, _, _, err := b.Authorize(context.Background(), a.URL(), a.Redirect); err == nil {
		t.Fatal("a refused user got a code")
	}
	e, all := g.flowEvent("login", "access_denied")
	wantReason(t, e, "user local:"+testUser+" is refused by the access rules (access): not a listed user, email domain or group")
	if steps := stepsOf(all, e.Attempt); steps != "authorize:ok consent:ok login:access_denied" {
		t.Errorf("the attempt: %s", steps)
	}
	noSecrets(t, all, flowSecrets(a, "")...)
}

// SEC-115: recording adds no store call to a request: a whole flow, and
// a refused /authorize, make the same store calls with the flow debugger
// on as off; the recorder's batched writes, from its own goroutine, are
// the only ones it adds.
func TestSEC115_RecordingAddsNoStoreCall(t *testing.T) {
	run := func(record bool) ([]string, *watchedStore) {
		ws := &watchedStore{}
		g := newGateway(t, func(c *mcpgateConfig) { c.RecordFlows = record; ws.inner = c.Store; c.Store = ws })
		c := g.register(nil)
		bad := g.newAuth(c.ClientID)
		bad.Redirect = "http://127.0.0.1:33419/cb"
		ws.armed.Store(true)
		g.get(bad.URL())
		a := g.newAuth(c.ClientID)
		a.Scope = "mcp offline_access"
		code, b := g.login(a)
		_, tok := g.exchange(a, code)
		g.refresh(c.ClientID, tok.RefreshToken, nil)
		// Again in the same browser: its session and consent give a code
		// at once.
		again := g.newAuth(c.ClientID)
		if _, _, _, err := b.Authorize(context.Background(), again.URL(), again.Redirect); err != nil {
			t.Fatalf("second authorization: %v", err)
		}
		ws.armed.Store(false)
		if record {
			g.flowEvent("token_refresh", "ok")
		}
		return ws.seen(), ws
	}
	off, _ := run(false)
	on, ws := run(true)
	if strings.Join(on, " ") != strings.Join(off, " ") {
		t.Errorf("store calls of a flow with the flow debugger on:\n%v\nwith it off:\n%v", on, off)
	}
	if ws.flowAppends.Load() == 0 {
		t.Error("the events were not written through the store")
	}
}

// SEC-114: housekeeping deletes events older than 24 hours.
func TestSEC114_HousekeepingBoundsFlowEvents(t *testing.T) {
	g := newGateway(t, withFlows)
	g.register(nil)
	g.flowEvent("register", "ok")
	g.clock.Advance(24*time.Hour + time.Minute)
	if err := g.gw.Housekeeping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if all, _ := g.store.ListFlowEvents(context.Background(), store.FlowFilter{}); len(all) != 0 {
		t.Fatalf("%d events older than 24 h left after housekeeping", len(all))
	}
}

// SEC-117: introspection, a resource server's question asked per request,
// is no step of a client's attempt and is not recorded; a revocation is,
// in the attempt of its grant.
func TestSEC117_IntrospectionNotRecorded(t *testing.T) {
	g := newGateway(t, withFlows, withResourceServer)
	c, _, tok := g.fullFlow()
	if resp, _ := g.resourceServer().post("/introspect", url.Values{"token": {tok.AccessToken}}); resp.StatusCode != 200 {
		t.Fatalf("/introspect: %d", resp.StatusCode)
	}
	if resp, _ := g.postForm(g.url+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {c.ClientID}}); resp.StatusCode != 200 {
		t.Fatalf("/revoke: %d", resp.StatusCode)
	}
	// The queue is written in order: once the revocation is in, so is
	// anything recorded before it.
	e, all := g.flowEvent("revoke", "ok")
	for _, x := range all {
		if x.Step == "introspect" {
			t.Errorf("an introspection was recorded: %+v", x)
		}
	}
	if steps := stepsOf(all, e.Attempt); !strings.HasPrefix(steps, "authorize:ok") || !strings.HasSuffix(steps, "token_code:ok revoke:ok") {
		t.Errorf("the revocation is not in its grant's attempt: %s", steps)
	}
	noSecrets(t, all, tok.AccessToken, tok.RefreshToken, resourceServerSecret)
}

// SEC-117: an access token whose grant was revoked, refused at /mcp.
func TestSEC117_RevokedTokenAtTheResource(t *testing.T) {
	g := newGateway(t, withFlows)
	c, a, tok := g.fullFlow()
	if resp, _ := g.postForm(g.url+"/revoke", url.Values{"token": {tok.RefreshToken}, "client_id": {c.ClientID}}); resp.StatusCode != 200 {
		t.Fatalf("/revoke: %d", resp.StatusCode)
	}
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 401 {
		t.Fatalf("a revoked grant's token at /mcp: %d, want 401", resp.StatusCode)
	}
	e, all := g.flowEvent("resource", "revoked")
	wantReason(t, e, "the access token's grant "+e.Attempt+" was revoked: the client must authorize again")
	if steps := stepsOf(all, e.Attempt); !strings.HasSuffix(steps, "token_code:ok revoke:ok resource:revoked") || e.UserID != "local:"+testUser {
		t.Errorf("the attempt: %s, event %+v", steps, e)
	}
	noSecrets(t, all, flowSecrets(a, "", tok.AccessToken, tok.RefreshToken)...)
}

// SEC-117: a consent form without its authorization request is not
// explained as an expired request (it never named one).
func TestSEC117_ConsentWithoutRequest(t *testing.T) {
	g := newGateway(t, withFlows)
	if resp, _ := g.postForm(g.url+"/consent", url.Values{"request_id": {""}, "action": {"allow"}}, "Origin", g.url); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("/consent without request_id: %d, want 400", resp.StatusCode)
	}
	e, _ := g.flowEvent("consent", "invalid_request")
	wantReason(t, e, "the consent form came without its authorization request (request_id): it was not posted from the gateway's consent page")
}

// SEC-119: steps that belong to no authorization request or grant (here
// /authorize with made-up client_ids, which anyone can send without
// credentials) are recorded from one address only up to a rate, so that
// one caller cannot fill the store's 100,000 events between two
// housekeeping runs and push every real attempt out of the bound; the
// steps of a real attempt from that same address are still recorded.
func TestSEC119_JunkStepsDoNotCrowdOutAttempts(t *testing.T) {
	g := newGateway(t, withFlows)
	const junk = 400
	for i := range junk {
		a := g.newAuth(fmt.Sprintf("made-up-%d", i))
		if resp, _ := g.get(a.URL()); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("/authorize with a made-up client: %d, want 400", resp.StatusCode)
		}
	}
	_, _, tok := g.fullFlow()
	if tok.AccessToken == "" {
		t.Fatal("the flow after the junk failed")
	}
	// The queue is written in order: once the code's exchange is in, so
	// is everything recorded before it.
	e, all := g.flowEvent("token_code", "ok")
	if steps := stepsOf(all, e.Attempt); steps != "authorize:ok consent:ok login:ok token_code:ok" {
		t.Errorf("the real attempt after the junk: %s", steps)
	}
	n := countSteps(all, "authorize", "invalid_client")
	// The test's clock stands still: no token comes back to the bucket.
	if n != flows.KeyBurst {
		t.Errorf("%d of %d junk /authorize steps from one address recorded, want %d", n, junk, flows.KeyBurst)
	}
}

// SEC-119: a client that keeps presenting a refused token (here a revoked
// grant's, at /mcp, as a client that does not read the 401 does) has its
// refusals recorded up to the same rate, per grant, and not one per
// request, which would push every other attempt out of the bound.
func TestSEC119_RefusedTokenLoopIsBounded(t *testing.T) {
	g := newGateway(t, withFlows)
	_, tok := g.revokedGrant()
	const tries = 300
	for range tries {
		if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 401 {
			t.Fatalf("a revoked grant's token at /mcp: %d, want 401", resp.StatusCode)
		}
	}
	n := countSteps(g.flowsWritten(), "resource", "revoked")
	if n != flows.KeyBurst {
		t.Errorf("%d of %d refusals of one revoked grant's token recorded, want %d", n, tries, flows.KeyBurst)
	}
}

// SEC-207: a person who presents refused tokens of many grants of theirs
// (grants cost a signed-in person next to nothing: one flow each) has
// those refusals recorded up to the rate per person, not per grant.
// Fails before: every grant had a bucket of its own, and one person
// pushed every other person's attempts out of the events kept.
func TestSEC207_RefusedTokensOfManyGrantsBoundedPerPerson(t *testing.T) {
	g := newGateway(t, withFlows)
	const grants, tries = 4, 60 // each grant's tries within a bucket of its own
	for range grants {
		_, tok := g.revokedGrant()
		for range tries {
			if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 401 {
				t.Fatalf("a revoked grant's token at /mcp: %d, want 401", resp.StatusCode)
			}
		}
	}
	if n := countSteps(g.flowsWritten(), "resource", "revoked"); n > flows.KeyBurst {
		t.Errorf("%d of %d refusals of one person's %d revoked grants recorded, want at most %d", n, grants*tries, grants, flows.KeyBurst)
	}
}

// SEC-207: the refusals of a person's tokens at /mcp have a bucket of
// their own, apart from the person's other failures (SEC-127): a client
// that loops on a revoked token never hides why a refresh of theirs
// failed. Fails with the refusals in the person's failures bucket: the
// refused refresh was not recorded.
func TestSEC207_RefusedTokensHideNoOtherFailure(t *testing.T) {
	g := newGateway(t, withFlows)
	c, _, tok := g.fullFlow()
	_, revoked := g.revokedGrant()
	for range flows.KeyBurst + 10 {
		if resp, _ := g.mcpInitialize(g.url, revoked.AccessToken); resp.StatusCode != 401 {
			t.Fatalf("a revoked grant's token at /mcp: %d, want 401", resp.StatusCode)
		}
	}
	if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"scope": {"made-up-scope"}}); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a refresh asking for a scope never granted: %d, want 400", resp.StatusCode)
	}
	if n := countSteps(g.flowsWritten(), "token_refresh", "invalid_scope"); n != 1 {
		t.Errorf("%d refused refreshes recorded after a loop of refused tokens, want 1", n)
	}
}

// SEC-119: /authorize with a real client and good parameters, sent in a
// loop without ever signing in, starts a new attempt each time; those
// steps, which no signed-in person vouches for, are kept to the rate per
// address too, and a junk flood does not spend the bucket of real
// attempts' first steps, nor the other way round.
func TestSEC119_AuthorizeLoopIsBounded(t *testing.T) {
	g := newGateway(t, withFlows)
	c := g.register(nil)
	const tries = 300
	for i := range tries {
		resp, _ := g.get(g.newAuth(c.ClientID).URL())
		// Past 120 a minute the address stores no more (SEC-180).
		if busy := strings.Contains(resp.Header.Get("Location"), "error=temporarily_unavailable"); i < 120 && resp.StatusCode != http.StatusOK || i >= 120 && !busy {
			t.Fatalf("/authorize %d: %d %q, want the consent page, or temporarily_unavailable after 120", i, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	all := g.flowsWritten()
	n := countSteps(all, "authorize", "ok") + countSteps(all, "authorize", "temporarily_unavailable")
	if n != flows.KeyBurst {
		t.Errorf("%d of %d /authorize steps without a sign-in recorded, want %d", n, tries, flows.KeyBurst)
	}
}

// SEC-119: a client that retries a refused step of its attempt in a loop
// (here the refresh of a revoked grant, as a client that does not read
// invalid_grant does) has those failures recorded up to the rate per
// attempt, not one per request.
func TestSEC119_FailureLoopOfAnAttemptIsBounded(t *testing.T) {
	g := newGateway(t, withFlows)
	c, tok := g.revokedGrant()
	const tries = 300
	for range tries {
		if resp, _ := g.refresh(c.ClientID, tok.RefreshToken, nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("a revoked grant's refresh: %d, want 400", resp.StatusCode)
		}
	}
	n := countSteps(g.flowsWritten(), "token_refresh", "invalid_grant")
	if n != flows.KeyBurst {
		t.Errorf("%d of %d refused refreshes of one grant recorded, want %d", n, tries, flows.KeyBurst)
	}
}

// otherConnector is a second password connector, so that a sign-in can
// come back at a provider it did not start with.
type otherConnector struct{}

func (otherConnector) ID() string          { return "other" }
func (otherConnector) DisplayName() string { return "Other" }
func (otherConnector) Login(context.Context, string, string) (identity.User, error) {
	return identity.User{}, errors.New("no one signs in here")
}

// SEC-117: a sign-in link of one provider opened at another's login
// page is refused with a reason, not a bare "refused".
func TestSEC117_SignInAtAnotherProvider(t *testing.T) {
	g := newGateway(t, withFlows, func(c *mcpgateConfig) { c.Connectors = append(c.Connectors, otherConnector{}) })
	c := g.register(nil)
	a := g.newAuth(c.ClientID)
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(a.URL())
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", g.url+"/consent", strings.NewReader(url.Values{
		"request_id": {browser.InputValue(string(page), "request_id")}, "csrf_token": {browser.InputValue(string(page), "csrf_token")},
		"connector": {"local"}, "decision": {"allow"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.url)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/login/local?state=") {
		t.Fatalf("consent: %d to %q, want the local login", resp.StatusCode, loc)
	}
	state := strings.TrimPrefix(loc, "/login/local?state=")
	req, _ = http.NewRequest("POST", g.url+"/login/other", strings.NewReader(url.Values{"state": {state}, "username": {testUser}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", g.url)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the local sign-in posted at /login/other: %d, want 400", resp.StatusCode)
	}
	e, all := g.flowEvent("login", "refused")
	wantReason(t, e, "the sign-in came back at provider other, but started with local: a link or callback of another provider's sign-in")
	noSecrets(t, all, flowSecrets(a, "", state)...)
}

// SEC-117: a client that asks to revoke another client's token revokes
// nothing (RFC 7009 §2.1), and its request is its own step, never a
// "revoke: ok" in the timeline of the grant it named, whose person and
// client it is not.
func TestSEC117_RevocationOfAnotherClientsToken(t *testing.T) {
	g := newGateway(t, withFlows)
	c, a, tok := g.fullFlow()
	other := g.register(nil)
	for _, token := range []string{tok.RefreshToken, tok.AccessToken} {
		if resp, _ := g.postForm(g.url+"/revoke", url.Values{"token": {token}, "client_id": {other.ClientID}}); resp.StatusCode != 200 {
			t.Fatalf("/revoke by another client: %d, want 200", resp.StatusCode)
		}
	}
	if resp, _ := g.mcpInitialize(g.url, tok.AccessToken); resp.StatusCode != 200 {
		t.Fatalf("the grant's token after another client's revocation: %d, want 200", resp.StatusCode)
	}
	all := g.flowsWritten()
	var grant string
	for _, e := range all {
		if e.Step == "token_code" && e.ClientID == c.ClientID {
			grant = e.Attempt
		}
	}
	if steps := stepsOf(all, grant); grant == "" || strings.Contains(steps, "revoke") {
		t.Errorf("the grant's attempt %q: %s, want no revocation in it", grant, steps)
	}
	n := 0
	for _, e := range all {
		if e.Step != "revoke" {
			continue
		}
		n++
		if e.Attempt == grant || e.ClientID != other.ClientID || e.Outcome != "refused" {
			t.Errorf("revocation recorded as %+v; want client %s's own attempt, outcome refused", e, other.ClientID)
		}
		wantReason(t, e, "client "+other.ClientID+" asked to revoke a token issued to client "+c.ClientID+
			" (grant "+grant+"): left alone (RFC 7009 §2.1); the token has reached a client it was not issued to")
	}
	if n != 2 {
		t.Errorf("%d revocations recorded, want 2", n)
	}
	noSecrets(t, all, flowSecrets(a, "", tok.AccessToken, tok.RefreshToken)...)
}

// SEC-127: the steps that go through of one person's attempts (here a
// client refreshing in a loop, each refresh a good one) are recorded up to
// the rate per person, not one per request, which would let one person
// push every other person's attempts out of the bound; another person's
// attempt is recorded whole meanwhile.
func TestSEC127_SignedInLoopIsBounded(t *testing.T) {
	g := newGateway(t, withFlows)
	c, _, tok := g.fullFlow()
	const tries = 300
	rt := tok.RefreshToken
	for i := range tries {
		resp, next := g.refresh(c.ClientID, rt, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("refresh %d: %d %+v, want 200", i+1, resp.StatusCode, next)
		}
		rt = next.RefreshToken
	}
	if err := g.local.SetUser(context.Background(), "bob", "bob-password"); err != nil {
		t.Fatal(err)
	}
	other := g.register(nil)
	a := g.newAuth(other.ClientID)
	code, _, _, err := browser.New("bob", "bob-password").Authorize(context.Background(), a.URL(), a.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	if resp, tok := g.exchange(a, code); resp.StatusCode != http.StatusOK {
		t.Fatalf("bob's code: %d %+v", resp.StatusCode, tok)
	}
	all := g.flowsWritten()
	// The test's clock stands still: no token comes back to the bucket.
	// The person's bucket also paid for the first flow's steps from the
	// sign-in on (login, token_code).
	if n := countSteps(all, "token_refresh", "ok"); n != flows.KeyBurst-2 {
		t.Errorf("%d of %d refreshes of one person recorded, want %d", n, tries, flows.KeyBurst-2)
	}
	var bobs string
	for _, e := range all {
		if e.UserID == "local:bob" && e.Step == "token_code" {
			bobs = stepsOf(all, e.Attempt)
		}
	}
	if bobs != "authorize:ok consent:ok login:ok token_code:ok" {
		t.Errorf("bob's attempt after the loop: %q, want it whole", bobs)
	}
}

// SEC-127: the failures of the attempts a person signed in to are kept to
// the rate per person, not per attempt: a person who signs in again and
// again makes a new attempt each time, and a fresh bucket of failures with
// it, and could push everyone else's attempts out all the same.
func TestSEC127_SignedInFailuresBoundedPerPerson(t *testing.T) {
	g := newGateway(t, withFlows)
	const grants, tries = 3, flows.KeyBurst + 10
	for range grants {
		c, _, tok := g.fullFlow()
		for i := range tries {
			resp, body := g.refresh(c.ClientID, tok.RefreshToken, url.Values{"scope": {"made-up-scope"}})
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("refresh %d for a scope never granted: %d %+v, want 400", i+1, resp.StatusCode, body)
			}
		}
	}
	// The test's clock stands still: no token comes back to the bucket.
	if n := countSteps(g.flowsWritten(), "token_refresh", "invalid_scope"); n != flows.KeyBurst {
		t.Errorf("%d of one person's %d failures over %d attempts recorded, want %d", n, grants*tries, grants, flows.KeyBurst)
	}
}
