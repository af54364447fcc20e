package oidc_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// fakeIdP forges what a real provider will not produce: ID tokens with a
// wrong nonce, audience or signature, and claim shapes of particular
// providers. The happy path against a real provider is in the root tests.
type fakeIdP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *ecdsa.PrivateKey
	issuer string // what discovery says; the server's URL unless set
	scopes []string

	mu        sync.Mutex
	challenge string         // from the last authorization URL
	nonce     string         // from the last authorization URL
	idClaims  map[string]any // merged over the standard ones
	userinfo  map[string]any // nil: no userinfo call expected
	signWith  *ecdsa.PrivateKey
	tokenReq  *http.Request
	tokenForm url.Values
	uiCalls   int
	// raw answers replace userinfo's and the key set's when set
	uiRaw, jwksRaw       []byte
	uiStatus, jwksStatus int
	// moved replaces endpoints of the discovery document
	moved map[string]string
}

func newFakeIdP(t *testing.T) *fakeIdP {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := &fakeIdP{t: t, key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss := f.issuer
		if iss == "" {
			iss = f.srv.URL
		}
		doc := map[string]any{
			"issuer": iss, "authorization_endpoint": f.srv.URL + "/auth", "token_endpoint": f.srv.URL + "/token",
			"jwks_uri": f.srv.URL + "/jwks", "userinfo_endpoint": f.srv.URL + "/userinfo",
			"id_token_signing_alg_values_supported": []string{"ES256"}, "scopes_supported": f.scopes,
		}
		for k, v := range f.moved {
			doc[k] = v
		}
		json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		if f.jwksRaw != nil {
			w.WriteHeader(f.jwksStatus)
			w.Write(f.jwksRaw)
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.uiCalls++
		if f.uiRaw != nil {
			w.WriteHeader(f.uiStatus)
			w.Write(f.uiRaw)
			return
		}
		if r.Header.Get("Authorization") != "Bearer at-1" || f.userinfo == nil {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(f.userinfo)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) token(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.ParseForm()
	f.tokenReq, f.tokenForm = r, r.PostForm
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if r.PostForm.Get("code") != "code-1" || base64.RawURLEncoding.EncodeToString(sum[:]) != f.challenge {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_grant"}`))
		return
	}
	now := time.Now()
	claims := map[string]any{"iss": f.srv.URL, "aud": "client-1", "sub": "248289761001", "nonce": f.nonce,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range f.idClaims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	signKey := f.key
	if f.signWith != nil {
		signKey = f.signWith
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signKey}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		f.t.Error(err)
		return
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		f.t.Error(err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "Bearer", "expires_in": 300, "id_token": raw})
}

const callback = "http://127.0.0.1:9/callback/oidc"

func (f *fakeIdP) connector(t *testing.T, mod func(*oidc.Config)) *oidc.Connector {
	cfg := oidc.Config{Issuer: f.srv.URL, ClientID: "client-1", ClientSecret: "secret-1", HTTPClient: f.srv.Client()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := oidc.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// login runs LoginURL and HandleCallback as the authorization server does.
func (f *fakeIdP) login(t *testing.T, c *oidc.Connector) (string, error) {
	t.Helper()
	state := "state-" + t.Name()
	u, err := url.Parse(c.LoginURL(state, callback))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/auth" || q.Get("state") != state || q.Get("code_challenge_method") != "S256" || q.Get("nonce") == "" ||
		q.Get("redirect_uri") != callback || !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		t.Fatalf("login URL %s lacks state, S256 challenge, nonce, redirect_uri or openid", u)
	}
	f.mu.Lock()
	f.challenge, f.nonce = q.Get("code_challenge"), q.Get("nonce")
	f.mu.Unlock()
	r := httptest.NewRequest("GET", callback+"?code=code-1&state="+url.QueryEscape(state), nil)
	user, err := c.HandleCallback(context.Background(), callback, r)
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(user)
	return string(b), nil
}

func TestClaimMapping(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims oidc.Claims
		id     map[string]any
		want   string
	}{
		{"defaults, aud array", oidc.Claims{},
			map[string]any{"aud": []string{"other", "client-1"}, "preferred_username": "jane", "name": "Jane Doe",
				"email": "jane@example.com", "email_verified": true, "groups": []string{"admins", "devs"}},
			`{"sub":"oidc:248289761001","upstream":"oidc","preferred_username":"jane","name":"Jane Doe","email":"jane@example.com","email_verified":true,"groups":["admins","devs"]}`},
		{"email not verified", oidc.Claims{},
			map[string]any{"preferred_username": "jane", "name": "J", "email": "jane@example.com", "email_verified": false, "groups": []string{}},
			`{"sub":"oidc:248289761001","upstream":"oidc","preferred_username":"jane","name":"J"}`},
		{"email_verified missing", oidc.Claims{},
			map[string]any{"preferred_username": "jane", "name": "J", "email": "jane@example.com", "groups": []string{}},
			`{"sub":"oidc:248289761001","upstream":"oidc","preferred_username":"jane","name":"J"}`},
		{"email_verified as a string", oidc.Claims{},
			map[string]any{"preferred_username": "jane", "name": "J", "email": "j@x.example", "email_verified": "true", "groups": []string{}},
			`{"sub":"oidc:248289761001","upstream":"oidc","preferred_username":"jane","name":"J","email":"j@x.example","email_verified":true}`},
		{"nested groups, other claims", oidc.Claims{Subject: "oid", Username: "upn", Email: "mail", Groups: "realm_access.roles"},
			map[string]any{"oid": "0f1e", "upn": "jane@corp", "name": "Jane", "mail": "jane@corp.example", "email_verified": true,
				"realm_access": map[string]any{"roles": []any{"admin", 7, "dev"}}},
			`{"sub":"oidc:0f1e","upstream":"oidc","preferred_username":"jane@corp","name":"Jane","email":"jane@corp.example","email_verified":true,"groups":["admin","7","dev"]}`},
		{"namespaced claim with dots", oidc.Claims{Groups: "https://example.com/groups"},
			map[string]any{"preferred_username": "jane", "name": "Jane", "email": "x@y.example", "email_verified": true,
				"https://example.com/groups": []string{"ops"}},
			`{"sub":"oidc:248289761001","upstream":"oidc","preferred_username":"jane","name":"Jane","email":"x@y.example","email_verified":true,"groups":["ops"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.idClaims = tc.id
			got, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.Claims = tc.claims }))
			if err != nil || got != tc.want {
				t.Fatalf("got %s, %v\nwant %s", got, err, tc.want)
			}
			if f.uiCalls != 0 {
				t.Fatalf("userinfo asked %d times although the ID token has every claim", f.uiCalls)
			}
		})
	}
}

// Claims the ID token lacks come from userinfo; the signed ones win.
func TestUserinfoMerge(t *testing.T) {
	f := newFakeIdP(t)
	f.idClaims = map[string]any{"name": "Signed Name"}
	f.userinfo = map[string]any{"sub": "248289761001", "name": "Other", "preferred_username": "jane",
		"email": "jane@example.com", "email_verified": true, "groups": []string{"g"}}
	got, err := f.login(t, f.connector(t, nil))
	want := `{"sub":"oidc:248289761001","upstream":"oidc","preferred_username":"jane","name":"Signed Name","email":"jane@example.com","email_verified":true,"groups":["g"]}`
	if err != nil || got != want || f.uiCalls != 1 {
		t.Fatalf("got %s, %v, %d userinfo calls\nwant %s", got, err, f.uiCalls, want)
	}

	f.userinfo["sub"] = "someone-else"
	if got, err := f.login(t, f.connector(t, nil)); err == nil || !strings.Contains(err.Error(), "userinfo: sub") {
		t.Fatalf("userinfo for another subject: got %s, %v; want refused", got, err)
	}
}

// The checks of the ID token (OpenID Connect Core §3.1.3.7).
func TestForgedIDTokenRefused(t *testing.T) {
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name string
		mod  func(f *fakeIdP)
		want string
	}{
		{"wrong nonce", func(f *fakeIdP) { f.idClaims = map[string]any{"nonce": "n-of-another-login"} }, "nonce"},
		{"no nonce", func(f *fakeIdP) { f.idClaims = map[string]any{"nonce": nil} }, "nonce"},
		{"wrong aud", func(f *fakeIdP) { f.idClaims = map[string]any{"aud": []string{"other"}} }, "audience"},
		{"wrong iss", func(f *fakeIdP) { f.idClaims = map[string]any{"iss": "https://evil.example"} }, "different provider"},
		{"expired", func(f *fakeIdP) { f.idClaims = map[string]any{"exp": time.Now().Add(-time.Hour).Unix()} }, "expired"},
		{"bad signature", func(f *fakeIdP) { f.signWith = other }, "signature"},
		{"no sub", func(f *fakeIdP) { f.idClaims = map[string]any{"sub": nil} }, "without sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			tc.mod(f)
			got, err := f.login(t, f.connector(t, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %s, %v; want an error about %s", got, err, tc.want)
			}
		})
	}
}

// A public client sends client_id in the body and no secret: PKCE alone
// binds the code; a confidential one authenticates with HTTP Basic.
func TestClientAuthentication(t *testing.T) {
	f := newFakeIdP(t)
	f.idClaims = map[string]any{"preferred_username": "j", "name": "J", "email": "e@x.example", "groups": []string{}}
	if _, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.ClientSecret = "" })); err != nil {
		t.Fatal(err)
	}
	if f.tokenReq.Header.Get("Authorization") != "" || f.tokenForm.Get("client_id") != "client-1" || f.tokenForm.Has("client_secret") {
		t.Fatalf("public client: Authorization %q, form %v", f.tokenReq.Header.Get("Authorization"), f.tokenForm)
	}
	if _, err := f.login(t, f.connector(t, nil)); err != nil {
		t.Fatal(err)
	}
	if id, secret, ok := f.tokenReq.BasicAuth(); !ok || id != "client-1" || secret != "secret-1" {
		t.Fatalf("confidential client: basic auth %q %q %v", id, secret, ok)
	}
}

// PKCE: the verifier belongs to the login's state, so a code redeemed
// under another state fails at the provider.
func TestVerifierBoundToState(t *testing.T) {
	f := newFakeIdP(t)
	c := f.connector(t, nil)
	u, _ := url.Parse(c.LoginURL("state-a", callback))
	f.challenge, f.nonce = u.Query().Get("code_challenge"), u.Query().Get("nonce")
	r := httptest.NewRequest("GET", callback+"?code=code-1&state=state-b", nil)
	if _, err := c.HandleCallback(context.Background(), callback, r); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("code under another state: %v; want invalid_grant", err)
	}
	u2, _ := url.Parse(c.LoginURL("state-b", callback))
	if u2.Query().Get("code_challenge") == f.challenge || u2.Query().Get("nonce") == f.nonce {
		t.Fatal("two states share a challenge or nonce")
	}
}

func TestProviderError(t *testing.T) {
	f := newFakeIdP(t)
	c := f.connector(t, nil)
	r := httptest.NewRequest("GET", callback+"?error=access_denied&error_description=no&state=s", nil)
	if _, err := c.HandleCallback(context.Background(), callback, r); !errors.Is(err, oidc.ErrAccessDenied) {
		t.Fatalf("got %v, want ErrAccessDenied", err)
	}
	r = httptest.NewRequest("GET", callback+"?error=server_error&state=s", nil)
	if _, err := c.HandleCallback(context.Background(), callback, r); err == nil || !strings.Contains(err.Error(), "server_error") {
		t.Fatalf("got %v, want server_error", err)
	}
}

// ASM-3 (OpenID Connect Discovery §4.3): the document must name the issuer asked.
func TestDiscovery(t *testing.T) {
	f := newFakeIdP(t)
	f.issuer = f.srv.URL + "/"
	_, err := oidc.New(context.Background(), oidc.Config{Issuer: f.srv.URL, ClientID: "c", HTTPClient: f.srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("issuer mismatch: %v", err)
	}
	_, err = oidc.New(context.Background(), oidc.Config{Issuer: f.srv.URL + "/nowhere", ClientID: "c", HTTPClient: f.srv.Client()})
	if err == nil || !strings.Contains(err.Error(), "404") || strings.Contains(err.Error(), "page not found") {
		t.Fatalf("no discovery document: %v", err)
	}
	f.srv.Close()
	if _, err := oidc.New(context.Background(), oidc.Config{Issuer: f.srv.URL, ClientID: "c"}); err == nil || !strings.Contains(err.Error(), "discovery") {
		t.Fatalf("unreachable issuer: %v", err)
	}
	if _, err := oidc.New(context.Background(), oidc.Config{Issuer: "idp.example"}); err == nil ||
		!strings.Contains(err.Error(), "client id") || !strings.Contains(err.Error(), "absolute") {
		t.Fatalf("bad config: %v", err)
	}
	c := newFakeIdP(t).connector(t, nil)
	if c.ID() != "oidc" || c.DisplayName() != "127.0.0.1" {
		t.Fatalf("ID %q, display name %q", c.ID(), c.DisplayName())
	}
}

// The groups scope is asked for only when the provider advertises it.
func TestDefaultScopes(t *testing.T) {
	for _, advertised := range [][]string{nil, {"openid", "email", "groups"}} {
		f := newFakeIdP(t)
		f.scopes = advertised
		u, _ := url.Parse(f.connector(t, nil).LoginURL("s", callback))
		want := "openid profile email"
		if advertised != nil {
			want += " groups"
		}
		if got := u.Query().Get("scope"); got != want {
			t.Errorf("advertised %v: scope %q, want %q", advertised, got, want)
		}
	}
	f := newFakeIdP(t)
	u, _ := url.Parse(f.connector(t, func(c *oidc.Config) { c.Scopes = []string{"email"} }).LoginURL("s", callback))
	if got := u.Query().Get("scope"); got != "openid email" {
		t.Errorf("configured scopes: %q, want openid added", got)
	}
}

// RT-3: the recheck redeems a refresh token, which many providers (Okta,
// Entra ID, Auth0) issue only for the offline_access scope. IfListed asks
// for it with the default scopes when discovery lists it, never with
// scopes the operator chose; Always adds it to any scopes (a preset's);
// the zero value never asks.
func TestOfflineAccess(t *testing.T) {
	listed := []string{"openid", "profile", "email", "offline_access"}
	for _, tc := range []struct {
		mode       oidc.OfflineAccess
		advertised []string
		scopes     []string
		want       string
	}{
		{oidc.OfflineAccessIfListed, listed, nil, "openid profile email offline_access"},
		{oidc.OfflineAccessIfListed, append(slices.Clone(listed), "groups"), nil, "openid profile email groups offline_access"},
		{oidc.OfflineAccessIfListed, []string{"openid", "profile", "email"}, nil, "openid profile email"},
		{oidc.OfflineAccessIfListed, nil, nil, "openid profile email"},
		{oidc.OfflineAccessIfListed, listed, []string{"openid", "email"}, "openid email"},
		{oidc.OfflineAccessAlways, nil, nil, "openid profile email offline_access"},
		{oidc.OfflineAccessAlways, nil, []string{"openid", "groups"}, "openid groups offline_access"},
		{oidc.OfflineAccessAlways, nil, []string{"offline_access", "openid"}, "offline_access openid"},
		{oidc.OfflineAccessNever, listed, nil, "openid profile email"},
	} {
		f := newFakeIdP(t)
		f.scopes = tc.advertised
		u, _ := url.Parse(f.connector(t, func(c *oidc.Config) { c.OfflineAccess, c.Scopes = tc.mode, tc.scopes }).LoginURL("s", callback))
		if got := u.Query().Get("scope"); got != tc.want {
			t.Errorf("mode %v, advertised %v, scopes %v: scope %q, want %q", tc.mode, tc.advertised, tc.scopes, got, tc.want)
		}
	}
}

// Extra authorization parameters go upstream; the flow's own cannot be
// replaced by them.
func TestAuthParams(t *testing.T) {
	f := newFakeIdP(t)
	u, _ := url.Parse(f.connector(t, func(c *oidc.Config) {
		c.AuthParams = map[string]string{"prompt": "select_account", "login_hint": "jane@corp.example"}
	}).LoginURL("s", callback))
	if q := u.Query(); q.Get("prompt") != "select_account" || q.Get("login_hint") != "jane@corp.example" || q.Get("state") != "s" {
		t.Fatalf("login URL %s lacks the extra parameters", u)
	}
	for _, k := range []string{"state", "nonce", "redirect_uri", "resource", "code_challenge"} {
		_, err := oidc.New(context.Background(), oidc.Config{Issuer: f.srv.URL, ClientID: "c", HTTPClient: f.srv.Client(),
			AuthParams: map[string]string{k: "x"}})
		if err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("extra parameter %s: %v, want refused", k, err)
		}
	}
}

// profile is an ID token's claims with every claim the connector maps, so
// that no userinfo call is made, and extra's.
func profile(extra map[string]any) map[string]any {
	c := map[string]any{"preferred_username": "jane", "name": "J", "email": "j@x.example", "email_verified": true, "groups": []string{}}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// Google's hosted domain goes upstream as hd and is checked in the ID
// token: hd at the authorization request is only a hint the person can
// edit, so a token without hd or with another domain is refused.
func TestHostedDomain(t *testing.T) {
	f := newFakeIdP(t)
	one := f.connector(t, func(c *oidc.Config) { c.HostedDomains = []string{"example.com"} })
	if u, _ := url.Parse(one.LoginURL("s", callback)); u.Query().Get("hd") != "example.com" {
		t.Errorf("login URL %s: want hd=example.com", u)
	}
	two := f.connector(t, func(c *oidc.Config) { c.HostedDomains = []string{"example.com", "example.org"} })
	ik := f.connector(t, func(c *oidc.Config) { c.HostedDomains = []string{"ik.example"} })
	if u, _ := url.Parse(two.LoginURL("s", callback)); u.Query().Get("hd") != "*" {
		t.Errorf("login URL %s: want hd=* for several domains", u)
	}
	for _, tc := range []struct {
		hd   any
		c    *oidc.Connector
		want string // "" for refused
	}{
		{"example.com", one, "example.com"},
		{"example.org", two, "example.org"},
		{"example.org", one, ""},
		{"EXAMPLE.COM", one, "example.com"},
		{nil, one, ""},
		{[]string{"example.com"}, one, ""},
		// SEC-189: a Unicode case fold is no match (U+0130 and the
		// Kelvin sign lower to "i" and "k").
		{"\u0130K.example", ik, ""},
		{"I\u212a.example", ik, ""},
		{"IK.Example", ik, "ik.example"},
	} {
		f.idClaims = profile(map[string]any{"hd": tc.hd})
		got, err := f.login(t, tc.c)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "hosted domain") {
				t.Errorf("hd %v: %s, %v; want refused for its hosted domain", tc.hd, got, err)
			}
		} else if err != nil {
			t.Errorf("hd %v: %v", tc.hd, err)
		}
	}
	f.idClaims = profile(nil)
	if _, err := f.login(t, f.connector(t, nil)); err != nil {
		t.Errorf("without hosted domains a token without hd: %v", err)
	}
}

// Entra's multi-tenant endpoints publish an issuer with a {tenantid}
// placeholder: each ID token's iss must be that issuer with the token's
// own tid, and tid among the allowed tenants when there is a list.
func TestTenantIssuer(t *testing.T) {
	f := newFakeIdP(t)
	f.issuer = f.srv.URL + "/{tenantid}/v2.0"
	if _, err := oidc.New(context.Background(), oidc.Config{Issuer: f.srv.URL, ClientID: "client-1", HTTPClient: f.srv.Client()}); err == nil {
		t.Fatal("a placeholder issuer accepted without TenantIssuer")
	}
	c := f.connector(t, func(c *oidc.Config) { c.TenantIssuer = true })
	tenant := func(tid any, iss string) { f.idClaims = profile(map[string]any{"tid": tid, "iss": iss}) }
	tenant("t1", f.srv.URL+"/t1/v2.0")
	if got, err := f.login(t, c); err != nil || !strings.Contains(got, `"sub":"oidc:248289761001"`) {
		t.Fatalf("token of tenant t1: %s, %v", got, err)
	}
	for name, set := range map[string]func(){
		"another tenant's iss": func() { tenant("t1", f.srv.URL+"/t2/v2.0") },
		"no tid":               func() { tenant(nil, f.srv.URL+"/t1/v2.0") },
		"empty tid":            func() { tenant("", f.srv.URL+"//v2.0") },
		"tid not a string":     func() { tenant(7, f.srv.URL+"/7/v2.0") },
		"placeholder as iss":   func() { tenant("{tenantid}", f.srv.URL+"/{tenantid}/v2.0") },
		"tid with a slash":     func() { tenant("a/b", f.srv.URL+"/a/b/v2.0") },
	} {
		set()
		if got, err := f.login(t, c); err == nil || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("%s: %s, %v; want refused", name, got, err)
		}
	}
	only := f.connector(t, func(c *oidc.Config) { c.TenantIssuer, c.AllowedTenants = true, []string{"t2"} })
	tenant("t1", f.srv.URL+"/t1/v2.0")
	if _, err := f.login(t, only); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("tenant t1 outside the allowed t2: %v, want refused", err)
	}
	tenant("t2", f.srv.URL+"/t2/v2.0")
	if _, err := f.login(t, only); err != nil {
		t.Errorf("allowed tenant t2: %v", err)
	}
	// A single-tenant issuer is checked exactly as ever with TenantIssuer.
	f.issuer, f.idClaims = "", profile(map[string]any{"tid": "t1"})
	if _, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.TenantIssuer = true })); err != nil {
		t.Errorf("single-tenant issuer: %v", err)
	}
	f.idClaims = profile(map[string]any{"tid": "t1", "iss": f.srv.URL + "/x"})
	if _, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.TenantIssuer = true })); err == nil {
		t.Error("single-tenant issuer: another iss accepted")
	}
}

// SEC-70: a groups claim the provider moved elsewhere (OpenID Connect Core
// §5.6.2 distributed claims: Entra ID's groups overage names it in
// _claim_names) is not read, so the login fails rather than let the user
// in without groups, past a rule that denies one; at a refresh the session
// ends. Another claim's source, with groups present, changes nothing.
func TestGroupsOverageRefused(t *testing.T) {
	overage := map[string]any{"preferred_username": "jane", "name": "Jane",
		"_claim_names":   map[string]any{"groups": "src1"},
		"_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}}
	f := newFakeIdP(t)
	f.idClaims = overage
	f.userinfo = map[string]any{"sub": "248289761001", "name": "Jane"} // Entra's userinfo has no groups either
	got, err := f.login(t, f.connector(t, nil))
	if err == nil || !strings.Contains(err.Error(), "_claim_names") || !errors.Is(err, upstream.ErrSessionEnded) {
		t.Fatalf("a groups overage: got %s, %v; want refused, naming _claim_names, as an ended session", got, err)
	}

	f = newFakeIdP(t)
	f.idClaims = map[string]any{"preferred_username": "jane", "name": "Jane", "email": "j@x.example", "groups": []string{"devs"},
		"_claim_names": map[string]any{"roles": "src1"}, "_claim_sources": map[string]any{"src1": map[string]any{"endpoint": "https://x.example"}}}
	if got, err := f.login(t, f.connector(t, nil)); err != nil || !strings.Contains(got, `"groups":["devs"]`) {
		t.Fatalf("another claim elsewhere, groups present: got %s, %v; want the user with groups devs", got, err)
	}
}

// Why a login failed, for the page the person sees: the provider's own
// refusals are upstream.ErrRefused, its server errors and a token endpoint
// out of reach upstream.ErrUnavailable, and an answer the connector will
// not accept is neither.
func TestFailureKinds(t *testing.T) {
	f := newFakeIdP(t)
	c := f.connector(t, nil)
	for _, tc := range []struct {
		query      string
		kind, not  error
		accessDeny bool
	}{
		{"error=access_denied", upstream.ErrRefused, upstream.ErrUnavailable, true},
		{"error=login_required", upstream.ErrRefused, upstream.ErrUnavailable, false},
		{"error=interaction_required", upstream.ErrRefused, upstream.ErrUnavailable, false},
		{"error=server_error", upstream.ErrUnavailable, upstream.ErrRefused, false},
		{"error=temporarily_unavailable", upstream.ErrUnavailable, upstream.ErrRefused, false},
	} {
		r := httptest.NewRequest("GET", callback+"?"+tc.query+"&error_description=why&state=s", nil)
		_, err := c.HandleCallback(context.Background(), callback, r)
		if !errors.Is(err, tc.kind) || errors.Is(err, tc.not) || errors.Is(err, oidc.ErrAccessDenied) != tc.accessDeny {
			t.Errorf("%s: %v; want %v, not %v, ErrAccessDenied %v", tc.query, err, tc.kind, tc.not, tc.accessDeny)
		}
	}
	// A code the provider refuses (invalid_grant) is an answer, not an outage.
	r := httptest.NewRequest("GET", callback+"?code=not-a-code&state=s", nil)
	if _, err := c.HandleCallback(context.Background(), callback, r); err == nil || errors.Is(err, upstream.ErrRefused) || errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("a refused code: %v; want an error of neither kind", err)
	}
	f.srv.Close()
	r = httptest.NewRequest("GET", callback+"?code=code-1&state=s", nil)
	if _, err := c.HandleCallback(context.Background(), callback, r); !errors.Is(err, upstream.ErrUnavailable) {
		t.Errorf("token endpoint down: %v; want ErrUnavailable", err)
	}
}
