package oidctest_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

const redirect = "http://127.0.0.1:9/callback/oidc"

var alice = oidctest.User{
	Sub: "alice-1", Email: "alice@example.com", EmailVerified: true,
	Name: "Alice Liddell", Username: "alice",
	Groups: []string{"devs", "admins"}, Roles: []string{"realm-admin"},
	Password: "wonderland",
}

func start(t *testing.T, opts oidctest.Options) *oidctest.Provider {
	opts.Clients = append(opts.Clients,
		oidctest.Client{ID: "conf", Secret: "conf-secret", RedirectURIs: []string{redirect}},
		oidctest.Client{ID: "pub", RedirectURIs: []string{redirect}})
	opts.Users = append(opts.Users, alice, oidctest.User{Sub: "bob-2", Email: "bob@example.com"})
	return oidctest.Start(t, opts)
}

type claims struct {
	Sub           string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	Username      string   `json:"preferred_username"`
	Groups        []string `json:"groups"`
	RealmAccess   struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
}

// flow runs authorization code + PKCE S256 with nonce for the client and
// returns the verified ID token and the token response.
func flow(t *testing.T, ctx context.Context, p *oidctest.Provider, conf *oauth2.Config, sub string) (*oidc.IDToken, *oauth2.Token) {
	t.Helper()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	style := conf.Endpoint.AuthStyle
	conf.Endpoint = op.Endpoint()
	conf.Endpoint.AuthStyle = style
	conf.RedirectURL = redirect
	conf.Scopes = []string{oidc.ScopeOpenID, "profile", "email", "groups"}
	verifier, state, nonce := oauth2.GenerateVerifier(), "st-"+sub, "n-"+sub
	auth := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))
	cb := p.Login(t, &http.Client{}, auth, sub)
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != redirect {
		t.Fatalf("callback %s, want %s", cb, redirect)
	}
	q := cb.Query()
	if q.Get("error") != "" || q.Get("state") != state || q.Get("iss") != p.Issuer() {
		t.Fatalf("callback %s: want code, state %q and iss %q", cb, state, p.Issuer())
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := op.Verifier(&oidc.Config{ClientID: conf.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if idt.Subject != sub {
		t.Fatalf("sub %q, want %q", idt.Subject, sub)
	}
	return idt, tok
}

func checkAlice(t *testing.T, where string, c claims) {
	t.Helper()
	if c.Email != alice.Email || c.EmailVerified == nil || !*c.EmailVerified || c.Name != alice.Name || c.Username != alice.Username ||
		!slices.Equal(c.Groups, alice.Groups) || !slices.Equal(c.RealmAccess.Roles, alice.Roles) {
		t.Fatalf("%s claims %+v, want those of %+v", where, c, alice)
	}
}

func TestDiscovery(t *testing.T) {
	p := start(t, oidctest.Options{})
	if !strings.HasPrefix(p.Issuer(), "http://127.0.0.1:") {
		t.Fatalf("issuer %q is not on loopback", p.Issuer())
	}
	resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer          string   `json:"issuer"`
		Methods         []string `json:"code_challenge_methods_supported"`
		Scopes          []string `json:"scopes_supported"`
		AuthMethods     []string `json:"token_endpoint_auth_methods_supported"`
		UserinfoEndoint string   `json:"userinfo_endpoint"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Issuer != p.Issuer() || !slices.Equal(d.Methods, []string{"S256"}) || d.UserinfoEndoint == "" {
		t.Fatalf("discovery %+v", d)
	}
	for _, s := range []string{"openid", "profile", "email", "groups"} {
		if !slices.Contains(d.Scopes, s) {
			t.Fatalf("scopes_supported %v lacks %s", d.Scopes, s)
		}
	}
	for _, m := range []string{"client_secret_basic", "client_secret_post", "none"} {
		if !slices.Contains(d.AuthMethods, m) {
			t.Fatalf("token_endpoint_auth_methods_supported %v lacks %s", d.AuthMethods, m)
		}
	}
}

func TestCodeFlowConfidentialAndPublic(t *testing.T) {
	p := start(t, oidctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		name string
		conf oauth2.Config
		auth oauth2.AuthStyle
	}{
		{"basic", oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret"}, oauth2.AuthStyleInHeader},
		{"post", oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret"}, oauth2.AuthStyleInParams},
		{"public", oauth2.Config{ClientID: "pub"}, oauth2.AuthStyleInParams},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.conf
			conf.Endpoint.AuthStyle = tc.auth
			idt, tok := flow(t, ctx, p, &conf, alice.Sub)
			var c claims
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			checkAlice(t, "ID token", c)
			if tok.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
		})
	}
}

func TestWrongPasswordAndUnknownUserAreDenied(t *testing.T) {
	p := start(t, oidctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "pub", Endpoint: op.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	auth := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))
	for _, tc := range []struct{ sub, password string }{{alice.Sub, "not-her-password"}, {"nobody", ""}} {
		cb := p.LoginWithPassword(t, nil, auth, tc.sub, tc.password)
		if q := cb.Query(); q.Get("error") != "access_denied" || q.Get("code") != "" || q.Get("state") != "st" {
			t.Fatalf("login as %q with %q: callback %s, want error=access_denied", tc.sub, tc.password, cb)
		}
	}
}

func TestPKCERequired(t *testing.T) {
	p := start(t, oidctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret", Endpoint: op.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	cb := p.Login(t, nil, conf.AuthCodeURL("st"), alice.Sub)
	if q := cb.Query(); q.Get("error") != "invalid_request" || q.Get("code") != "" {
		t.Fatalf("authorization without code_challenge: callback %s, want error=invalid_request", cb)
	}
}

func TestWrongSecretRefused(t *testing.T) {
	p := start(t, oidctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "conf", ClientSecret: "wrong", Endpoint: op.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	v := oauth2.GenerateVerifier()
	cb := p.Login(t, nil, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), alice.Sub)
	_, err = conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(v))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("exchange with a wrong secret: %v, want invalid_client", err)
	}
}

func TestClaimsOnlyAtUserinfo(t *testing.T) {
	p := start(t, oidctest.Options{ClaimsOnlyAtUserinfo: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conf := oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret"}
	idt, tok := flow(t, ctx, p, &conf, alice.Sub)
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "" || c.Groups != nil || c.RealmAccess.Roles != nil {
		t.Fatalf("ID token claims %+v, want sub alone", c)
	}
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	c = claims{}
	if err := ui.Claims(&c); err != nil {
		t.Fatal(err)
	}
	checkAlice(t, "userinfo", c)
}

func TestSetUserAndRevokeGrants(t *testing.T) {
	p := start(t, oidctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conf := oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret"}
	_, tok := flow(t, ctx, p, &conf, alice.Sub)
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}

	moved := alice
	moved.Groups = []string{"devs"}
	p.SetUser(t, moved)
	expired := &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
	fresh, err := conf.TokenSource(ctx, expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw, _ := fresh.Extra("id_token").(string)
	idt, err := op.Verifier(&oidc.Config{ClientID: "conf"}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify refreshed ID token: %v", err)
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Groups, moved.Groups) {
		t.Fatalf("groups after SetUser and refresh %v, want %v", c.Groups, moved.Groups)
	}

	p.RevokeGrants(t, alice.Sub)
	expired = &oauth2.Token{RefreshToken: fresh.RefreshToken, Expiry: time.Now().Add(-time.Hour)}
	_, err = conf.TokenSource(ctx, expired).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh after RevokeGrants: %v, want invalid_grant", err)
	}
}

// The login form is plain HTML that the e2e tests' form follower (and so a
// person, or Chromium) can fill: username and password inputs.
func TestLoginFormWalkedByBrowser(t *testing.T) {
	p := start(t, oidctest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "pub", Endpoint: op.Endpoint(), RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID}}
	v := oauth2.GenerateVerifier()
	code, state, iss, err := browser.FollowAuthorization(ctx, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), redirect, alice.Sub, alice.Password)
	if err != nil || code == "" || state != "st" || iss != p.Issuer() {
		t.Fatalf("walk: code %q state %q iss %q: %v", code, state, iss, err)
	}
	if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	_, _, _, err = browser.FollowAuthorization(ctx, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), redirect, alice.Sub, "wrong")
	var ae *browser.AuthorizationError
	if !errors.As(err, &ae) || ae.Code != "access_denied" {
		t.Fatalf("walk with a wrong password: %v, want an access_denied authorization error", err)
	}
}

// Extra claims ride in the ID token: a Google-like hd, an Entra-like tid.
func TestExtraClaims(t *testing.T) {
	carol := oidctest.User{Sub: "carol-3", Email: "carol@corp.example", EmailVerified: true,
		Extra: map[string]any{"hd": "corp.example", "tid": "9188040d-6c67-4c5b-b112-36a304b66dad"}}
	p := start(t, oidctest.Options{Users: []oidctest.User{carol}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conf := oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret"}
	idt, _ := flow(t, ctx, p, &conf, carol.Sub)
	var c struct {
		HD  string `json:"hd"`
		TID string `json:"tid"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.HD != "corp.example" || c.TID != carol.Extra["tid"] {
		t.Fatalf("ID token hd %q tid %q, want %v", c.HD, c.TID, carol.Extra)
	}
}

// UnadvertisedScopes hides a scope from discovery, still honoured;
// IDTokenOmits keeps a claim out of ID tokens, still at userinfo.
func TestUnadvertisedScopesAndIDTokenOmits(t *testing.T) {
	p := start(t, oidctest.Options{UnadvertisedScopes: []string{"groups"}, IDTokenOmits: []string{"groups"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	op, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Scopes []string `json:"scopes_supported"`
	}
	if err := op.Claims(&d); err != nil || slices.Contains(d.Scopes, "groups") || !slices.Contains(d.Scopes, "email") {
		t.Fatalf("scopes_supported %v (%v); want email listed, groups not", d.Scopes, err)
	}
	conf := oauth2.Config{ClientID: "conf", ClientSecret: "conf-secret"}
	idt, tok := flow(t, ctx, p, &conf, alice.Sub)
	var c claims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Groups != nil || c.Email != alice.Email || !slices.Equal(c.RealmAccess.Roles, alice.Roles) {
		t.Fatalf("ID token claims %+v; want the email and roles, no groups", c)
	}
	ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	c = claims{}
	if err := ui.Claims(&c); err != nil {
		t.Fatal(err)
	}
	checkAlice(t, "userinfo", c)
}
