package mcpgate_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/internal/tokens"
	"github.com/mcpgate/mcpgate/store"
)

// pkjClient is a private_key_jwt client published on a document host, the
// way ChatGPT publishes itself: RS256, its keys at a jwks_uri.
type pkjClient struct {
	t    *testing.T
	g    *gw
	docs *docHost
	id   string
	key  *rsa.PrivateKey
	kid  string
}

func newPKJClient(t *testing.T, g *gw, docs *docHost) *pkjClient {
	t.Helper()
	c := &pkjClient{t: t, g: g, docs: docs, key: newRSAKey(t), kid: "k1"}
	c.publishKeys(jose.JSONWebKey{Key: c.key.Public(), KeyID: c.kid, Algorithm: "RS256", Use: "sig"})
	c.id = docs.put("/oauth/client.json", map[string]any{
		"client_name": "ChatGPT", "client_uri": "https://chatgpt.example/",
		"redirect_uris": []string{redirectURI}, "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "token_endpoint_auth_method": "private_key_jwt",
		"token_endpoint_auth_signing_alg": "RS256", "jwks_uri": docs.srv.URL + "/oauth/jwks.json",
	})
	return c
}

func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (c *pkjClient) publishKeys(keys ...jose.JSONWebKey) {
	c.docs.mu.Lock()
	c.docs.docs["/oauth/jwks.json"] = jose.JSONWebKeySet{Keys: keys}
	c.docs.mu.Unlock()
}

// assertion signs claims (the defaults of a good assertion, which edit
// may change) with key under alg and kid.
func (c *pkjClient) assertionWith(key any, alg jose.SignatureAlgorithm, kid string, edit func(*jwt.Claims)) string {
	c.t.Helper()
	now := c.g.clock.Now()
	claims := jwt.Claims{
		Issuer: c.id, Subject: c.id, Audience: jwt.Audience{c.g.url},
		Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: tokens.NewID(),
	}
	if edit != nil {
		edit(&claims)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		c.t.Fatal(err)
	}
	return s
}

func (c *pkjClient) assertion() string { return c.assertionWith(c.key, jose.RS256, c.kid, nil) }

// form is a token request form authenticated by assertion, without
// client_id (RFC 7521 §4.2: the assertion names the client).
func (c *pkjClient) form(assertion string, kv ...string) url.Values {
	f := url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return f
}

// code runs /authorize, consent and login for the client, returning the
// request and its code.
func (c *pkjClient) code() (*authRequest, string) {
	c.t.Helper()
	a := c.g.newAuth(c.id)
	code, _ := c.g.login(a)
	return a, code
}

func (c *pkjClient) exchange(a *authRequest, code, assertion string) (int, tokenResponse, string) {
	c.t.Helper()
	resp, b := c.g.postForm(c.g.url+"/token", c.form(assertion, "grant_type", "authorization_code", "code", code,
		"redirect_uri", a.Redirect, "code_verifier", a.Verifier, "resource", a.Resource))
	return resp.StatusCode, decode[tokenResponse](c.t, b), string(b)
}

// SEC-128, CIMD-8: a client whose metadata document names private_key_jwt
// (ChatGPT's) gets through the whole flow with signed assertions and no
// client_id at /token: code, refresh, a call, revocation; its jwks_uri is
// fetched once. Fails before this change: the document was refused
// ("confidential CIMD clients are not supported").
func TestSEC128_PrivateKeyJWTClientFlow(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	c := newPKJClient(t, g, docs)

	a, code := c.code()
	status, tok, body := c.exchange(a, code, c.assertion())
	if status != 200 || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("code exchange with an assertion: %d %s, want 200 with access and refresh tokens", status, body)
	}
	if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
		t.Fatalf("MCP initialize with the token: %d, want 200", r.StatusCode)
	}
	resp, b := g.postForm(g.url+"/token", c.form(c.assertion(), "grant_type", "refresh_token", "refresh_token", tok.RefreshToken))
	next := decode[tokenResponse](t, b)
	if resp.StatusCode != 200 || next.AccessToken == "" {
		t.Fatalf("refresh with an assertion: %d %s, want 200", resp.StatusCode, b)
	}
	// With client_id too, as most clients send it.
	f := c.form(c.assertion(), "token", next.AccessToken)
	f.Set("client_id", c.id)
	if resp, b := g.postForm(g.url+"/introspect", f); resp.StatusCode != 200 || !strings.Contains(string(b), `"active": true`) {
		t.Fatalf("introspection of its own token with an assertion: %d %s, want 200 and active", resp.StatusCode, b)
	}
	if resp, b := g.postForm(g.url+"/revoke", c.form(c.assertion(), "token", next.RefreshToken)); resp.StatusCode != 200 {
		t.Fatalf("revocation with an assertion: %d %s, want 200", resp.StatusCode, b)
	}
	if r, _ := g.mcpInitialize(g.url, next.AccessToken); r.StatusCode != 401 {
		t.Fatalf("MCP initialize after revocation: %d, want 401", r.StatusCode)
	}
	docs.mu.Lock()
	hits := docs.hits
	docs.mu.Unlock()
	if hits != 2 {
		t.Errorf("the document host was hit %d times, want 2: the document and the key set, each cached", hits)
	}
}

// SEC-128: every way an assertion can be wrong is invalid_client with a
// reason, and the code stays unused: the right assertion then redeems it.
func TestSEC128_BadAssertionsRefused(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	c := newPKJClient(t, g, docs)
	other := newRSAKey(t)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, code := c.code()
	used := c.assertion()
	if status, _, body := c.exchange(a, "not-a-code", used); status != 400 || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("a good assertion with a junk code: %d %s, want 400 invalid_grant", status, body)
	}
	for _, tc := range []struct {
		name, assertion, want string
	}{
		{"replayed", used, "used before"},
		{"signed by another key", c.assertionWith(other, jose.RS256, c.kid, nil), "no key of the client's key set verifies"},
		{"signed by another key without kid", c.assertionWith(other, jose.RS256, "", nil), "no key of the client's key set verifies"},
		{"not the document's algorithm", c.assertionWith(ec, jose.ES256, "", nil), "signed with ES256; the client's metadata names RS256"},
		{"HMAC with the client_id as secret", c.assertionWith([]byte(strings.Repeat("s", 32)), jose.HS256, "", nil), "must be signed with one of"},
		{"audience elsewhere", c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Audience = jwt.Audience{"https://other.example"} }), "aud does not name"},
		{"expired", c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(g.clock.Now().Add(-2 * time.Minute)) }), "has expired"},
		{"lives an hour", c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Expiry = jwt.NewNumericDate(g.clock.Now().Add(time.Hour)) }), "more than 10m0s ahead"},
		{"no jti", c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.ID = "" }), "has no jti"},
		{"sub another client", c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Subject = "https://other.example/c.json" }), "sub is not the client_id"},
		{"not a JWT", "not.a.jwt", "not a signed JWT"},
		// RFC 7521 §4.2.1: without client_id the assertion must name the
		// client; one that does not is an invalid assertion.
		{"no iss and no client_id", c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Issuer = "" }), "has no iss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, tok, body := c.exchange(a, code, tc.assertion)
			if status != 401 || !strings.Contains(body, "invalid_client") || !strings.Contains(body, tc.want) || tok.AccessToken != "" {
				t.Fatalf("%d %s, want 401 invalid_client saying %q and no token", status, body, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"client_id alone", url.Values{"client_id": {c.id}}, 401, "authenticates with a client assertion (private_key_jwt)"},
		{"client_id and a secret", url.Values{"client_id": {c.id}, "client_secret": {"guess"}}, 401, "authenticates with a client assertion (private_key_jwt)"},
		{"an assertion and a secret", c.form(c.assertion(), "client_secret", "guess"), 400, "use one client authentication method"},
		{"client_id another client than iss", c.form(c.assertion(), "client_id", docs.srv.URL+"/other.json"), 401, "invalid_client"},
		{"another assertion type", c.form(c.assertion(), "client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"), 401, "client_assertion_type must be"},
		{"a type without assertion", url.Values{"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}, 400, "client_assertion is required"},
		// RFC 6749 §5.2: a required parameter missing, as above.
		{"an assertion without its type", url.Values{"client_assertion": {c.assertion()}}, 400, "client_assertion_type is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.form
			grant := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {a.Redirect},
				"code_verifier": {a.Verifier}, "resource": {a.Resource}}
			for k, v := range grant {
				f[k] = v
			}
			resp, b := g.postForm(g.url+"/token", f)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) || strings.Contains(string(b), "access_token") {
				t.Fatalf("%d %s, want %d saying %q and no token", resp.StatusCode, b, tc.status, tc.want)
			}
		})
	}
	if status, tok, body := c.exchange(a, code, c.assertion()); status != 200 || tok.AccessToken == "" {
		t.Fatalf("the right assertion after the refusals: %d %s, want 200: a refused request must not use the code", status, body)
	}
}

// SEC-128: a public client cannot pass an assertion off for itself, nor a
// private_key_jwt client its assertion for a public one's code.
func TestSEC128_AssertionOnlyForPrivateKeyJWTClients(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	c := newPKJClient(t, g, docs)
	pub := g.register(nil)
	a := g.newAuth(pub.ClientID)
	code, _ := g.login(a)
	f := c.form(c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Issuer, cl.Subject = pub.ClientID, pub.ClientID }),
		"grant_type", "authorization_code", "code", code, "redirect_uri", a.Redirect, "code_verifier", a.Verifier, "resource", a.Resource)
	resp, b := g.postForm(g.url+"/token", f)
	if resp.StatusCode != 401 || !strings.Contains(string(b), "does not authenticate with a client assertion") {
		t.Fatalf("an assertion for a public client: %d %s, want 401 invalid_client", resp.StatusCode, b)
	}
	f = c.form(c.assertion(), "grant_type", "authorization_code", "code", code, "redirect_uri", a.Redirect, "code_verifier", a.Verifier, "resource", a.Resource)
	if resp, b := g.postForm(g.url+"/token", f); resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_grant") {
		t.Fatalf("another client's code with a good assertion: %d %s, want 400 invalid_grant", resp.StatusCode, b)
	}
}

// SEC-128: a client that rotates its keys is followed: an assertion by a
// key the cached set lacks fetches the set again, at most every 30 s.
func TestSEC128_KeyRotationFetchesTheSetAgain(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	c := newPKJClient(t, g, docs)
	a, code := c.code()
	if status, _, body := c.exchange(a, code, c.assertion()); status != 200 {
		t.Fatalf("first exchange: %d %s, want 200", status, body)
	}
	rotated := newRSAKey(t)
	c.publishKeys(jose.JSONWebKey{Key: rotated.Public(), KeyID: "k2", Algorithm: "RS256", Use: "sig"})
	a, code = c.code()
	if status, _, body := c.exchange(a, code, c.assertionWith(rotated, jose.RS256, "k2", nil)); status != 401 || !strings.Contains(body, "no key") {
		t.Fatalf("the new key within 30 s of the last fetch: %d %s, want 401: the set is not fetched again so soon", status, body)
	}
	g.clock.Advance(31 * time.Second)
	if status, _, body := c.exchange(a, code, c.assertionWith(rotated, jose.RS256, "k2", nil)); status != 200 {
		t.Fatalf("the new key 31 s later: %d %s, want 200 after the set is fetched again", status, body)
	}
}

// SEC-128, SEC-113: the flow debugger says why an assertion was refused,
// under the client it names, and never records an assertion.
func TestSEC128_FlowDebuggerRecordsRefusalNotAssertion(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs), withFlows)
	c := newPKJClient(t, g, docs)
	a, code := c.code()
	replayed := c.assertion()
	if status, _, body := c.exchange(a, code, replayed); status != 200 {
		t.Fatalf("code exchange: %d %s, want 200", status, body)
	}
	if status, _, _ := c.exchange(a, code, replayed); status != 401 {
		t.Fatalf("the assertion replayed: %d, want 401", status)
	}
	e, _ := g.flowEvent("token_code", "invalid_client")
	if e.ClientID != c.id || !strings.Contains(e.Reason, "used before") {
		t.Fatalf("recorded %+v, want the client %s and a reason saying the assertion was used before", e, c.id)
	}
	for _, ev := range g.flowsWritten() {
		if b, _ := json.Marshal(ev); strings.Contains(string(b), replayed[:40]) || strings.Contains(string(b), strings.Split(replayed, ".")[2]) {
			t.Fatalf("a recorded step holds the client assertion: %s", b)
		}
	}
}

// SEC-128: once metadata documents are turned off (disable_cimd), a
// private_key_jwt client from one is an unknown client wherever it holds
// tokens: its refresh is invalid_client with an assertion or without, and
// consumes nothing (the same store, with documents on, still refreshes).
func TestSEC128_DisabledCIMDRefusesDocumentClients(t *testing.T) {
	docs := newDocHost(t)
	var shared store.Store
	g := newGateway(t, withDocHost(docs), func(c *mcpgateConfig) { shared = c.Store })
	c := newPKJClient(t, g, docs)
	a, code := c.code()
	status, tok, body := c.exchange(a, code, c.assertion())
	if status != 200 || tok.RefreshToken == "" {
		t.Fatalf("code exchange with an assertion: %d %s, want 200 with a refresh token", status, body)
	}
	off := newGateway(t, withDocHost(docs), func(cfg *mcpgateConfig) { cfg.Store, cfg.DisableCIMD = shared, true })
	toOff := c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Audience = jwt.Audience{off.url} })
	docs.mu.Lock()
	hits := docs.hits
	docs.mu.Unlock()
	for name, f := range map[string]url.Values{
		"with an assertion": c.form(toOff, "grant_type", "refresh_token", "refresh_token", tok.RefreshToken),
		"client_id alone":   {"client_id": {c.id}, "grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}},
	} {
		if resp, b := off.postForm(off.url+"/token", f); resp.StatusCode != 401 || !strings.Contains(string(b), `"invalid_client"`) || strings.Contains(string(b), "access_token") {
			t.Fatalf("refresh %s with documents off: %d %s, want 401 invalid_client", name, resp.StatusCode, b)
		}
	}
	docs.mu.Lock()
	after := docs.hits
	docs.mu.Unlock()
	if after != hits {
		t.Fatalf("the document host was hit %d times with documents off, want none", after-hits)
	}
	resp, b := g.postForm(g.url+"/token", c.form(c.assertion(), "grant_type", "refresh_token", "refresh_token", tok.RefreshToken))
	if resp.StatusCode != 200 {
		t.Fatalf("the refresh token with documents on again: %d %s, want 200: the refusals consumed nothing", resp.StatusCode, b)
	}
}

// SEC-128, RFC 6749 §5.2: a client with a secret, pre-registered or
// registered, cannot authenticate with an assertion (invalid_client, 401,
// at every endpoint), and an assertion with its secret beside it, in the
// body or by HTTP Basic, is more than one method (invalid_request, 400).
func TestSEC128_AssertionRefusedForClientsWithASecret(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs), withResourceServer)
	c := newPKJClient(t, g, docs)
	dcr := g.register(map[string]any{"token_endpoint_auth_method": "client_secret_basic"})
	for _, tc := range []struct{ name, id, secret string }{
		{"pre-registered", resourceServer, resourceServerSecret},
		{"registered", dcr.ClientID, dcr.ClientSecret},
	} {
		as := func() string {
			return c.assertionWith(c.key, jose.RS256, c.kid, func(cl *jwt.Claims) { cl.Issuer, cl.Subject = tc.id, tc.id })
		}
		for _, path := range []string{"/token", "/revoke", "/introspect"} {
			f := c.form(as(), "grant_type", "refresh_token", "refresh_token", "junk", "token", "junk")
			if resp, b := g.postForm(g.url+path, f); resp.StatusCode != 401 || !strings.Contains(string(b), `"invalid_client"`) ||
				!strings.Contains(string(b), "does not authenticate with a client assertion") {
				t.Errorf("%s client, an assertion at %s: %d %s, want 401 invalid_client", tc.name, path, resp.StatusCode, b)
			}
			f = c.form(as(), "grant_type", "refresh_token", "refresh_token", "junk", "token", "junk", "client_secret", tc.secret)
			if resp, b := g.postForm(g.url+path, f); resp.StatusCode != 400 || !strings.Contains(string(b), "use one client authentication method") {
				t.Errorf("%s client, an assertion and its secret at %s: %d %s, want 400 invalid_request", tc.name, path, resp.StatusCode, b)
			}
			f = c.form(as(), "grant_type", "refresh_token", "refresh_token", "junk", "token", "junk")
			basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(tc.id)+":"+url.QueryEscape(tc.secret)))
			if resp, b := g.postForm(g.url+path, f, "Authorization", basic); resp.StatusCode != 400 || !strings.Contains(string(b), "use one client authentication method") {
				t.Errorf("%s client, an assertion and Basic at %s: %d %s, want 400 invalid_request", tc.name, path, resp.StatusCode, b)
			}
		}
	}
}
