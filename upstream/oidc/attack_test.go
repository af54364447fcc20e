package oidc_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// SEC-61: email_verified speaks of the email claim it came with (OpenID
// Connect Core §5.1). An address from another claim, or from the ID token
// when the verdict came from userinfo about another address, is not
// verified by it: access rules' email_domains would trust it.
func TestSEC61_EmailVerifiedVouchesForItsOwnAddressOnly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		claims oidc.Claims
		id, ui map[string]any
	}{
		{"configured claim holds another address", oidc.Claims{Email: "mail"},
			map[string]any{"preferred_username": "mallory", "name": "M", "groups": []string{},
				"mail": "boss@corp.example", "email": "mallory@else.example", "email_verified": true}, nil},
		{"verdict from userinfo about another address", oidc.Claims{},
			map[string]any{"preferred_username": "mallory", "name": "M", "email": "boss@corp.example"},
			map[string]any{"sub": "248289761001", "email": "mallory@else.example", "email_verified": true, "groups": []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.idClaims, f.userinfo = tc.id, tc.ui
			got, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.Claims = tc.claims }))
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(got, "boss@corp.example") || strings.Contains(got, "email_verified") {
				t.Fatalf("got %s; want no verified email", got)
			}
		})
	}
}

// SEC-188: an address the provider did not verify is no username either:
// with the google preset's mapping (the username is the email claim), or
// from a provider that sends the address as preferred_username, it would
// reach backends as X-Forwarded-Preferred-Username and on the pages as
// whom the person signed in as. A verified address stays the username.
// Fails before: "ceo@corp.example", unverified, was the username (and,
// with the address mapped to another claim than email, was still).
func TestSEC188_UnverifiedAddressIsNoUsername(t *testing.T) {
	for _, tc := range []struct {
		name         string
		claims       oidc.Claims
		id           map[string]any
		wantUsername string
	}{
		{"username is the email claim, unverified", oidc.Claims{Username: "email"},
			map[string]any{"name": "Mallory", "email": "ceo@corp.example", "email_verified": false, "groups": []string{}}, ""},
		{"preferred_username holds the address said unverified", oidc.Claims{},
			map[string]any{"preferred_username": "CEO@corp.example", "name": "Mallory", "email": "ceo@corp.example", "email_verified": "false", "groups": []string{}}, ""},
		// Entra: the UPN, a name in a domain the tenant verified, often
		// the same as email, and no email_verified at all.
		{"preferred_username and email with no verdict (Entra)", oidc.Claims{},
			map[string]any{"preferred_username": "jane@corp.example", "name": "Jane", "email": "jane@corp.example", "groups": []string{}}, "jane@corp.example"},
		{"username is the email claim, verified", oidc.Claims{Username: "email"},
			map[string]any{"name": "Jane", "email": "jane@corp.example", "email_verified": true, "groups": []string{}}, "jane@corp.example"},
		{"another username beside an unverified address", oidc.Claims{},
			map[string]any{"preferred_username": "mallory", "name": "M", "email": "ceo@corp.example", "groups": []string{}}, "mallory"},
		// With the address mapped to another claim, email_verified still
		// speaks of the standard email claim (OpenID Connect Core §5.1).
		{"preferred_username holds the standard address said unverified, email mapped elsewhere", oidc.Claims{Email: "mail"},
			map[string]any{"preferred_username": "ceo@corp.example", "name": "Mallory", "email": "ceo@corp.example", "email_verified": false,
				"mail": "mallory@else.example", "groups": []string{}}, ""},
		{"username is the standard email claim, unverified, email mapped elsewhere", oidc.Claims{Username: "email", Email: "mail"},
			map[string]any{"name": "Mallory", "email": "ceo@corp.example", "email_verified": false, "mail": "mallory@else.example", "groups": []string{}}, ""},
		{"username is the standard email claim, verified, email mapped elsewhere", oidc.Claims{Username: "email", Email: "mail"},
			map[string]any{"name": "Jane", "email": "jane@corp.example", "email_verified": true, "mail": "jane@else.example", "groups": []string{}}, "jane@corp.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.idClaims = tc.id
			got, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.Claims = tc.claims }))
			if err != nil {
				t.Fatal(err)
			}
			var u struct {
				Username string `json:"preferred_username"`
			}
			if err := json.Unmarshal([]byte(got), &u); err != nil {
				t.Fatal(err)
			}
			if u.Username != tc.wantUsername {
				t.Errorf("user %s: username %q, want %q", got, u.Username, tc.wantUsername)
			}
		})
	}
}

// SEC-62: an ID token with an authorized party (azp) other than this
// client was issued to that other client, even when this client is among
// its audiences (OpenID Connect Core §3.1.3.7 (5)): it is refused.
func TestSEC62_IDTokenForAnotherAuthorizedPartyRefused(t *testing.T) {
	f := newFakeIdP(t)
	c := f.connector(t, nil)
	f.idClaims = profile(map[string]any{"aud": []string{"other", "client-1"}, "azp": "other"})
	if got, err := f.login(t, c); err == nil || !strings.Contains(err.Error(), "azp") {
		t.Fatalf("azp of another client: %s, %v; want refused", got, err)
	}
	f.idClaims = profile(map[string]any{"aud": []string{"other", "client-1"}, "azp": "client-1"})
	if _, err := f.login(t, c); err != nil {
		t.Fatalf("azp of this client: %v", err)
	}
}

// SEC-63: what a provider answers is read up to a bound, and its text
// reaches the log clipped: a provider (or whatever answers at its URLs)
// cannot exhaust the gateway's memory or fill its log with one answer.
func TestSEC63_ProviderAnswersBounded(t *testing.T) {
	huge, long := strings.Repeat("x", 2<<20), strings.Repeat("x", 100<<10) // past the bound; within it
	for _, tc := range []struct {
		name string
		set  func(f *fakeIdP)
	}{
		{"userinfo of 2 MiB", func(f *fakeIdP) {
			f.uiStatus, f.uiRaw = http.StatusOK, []byte(`{"sub":"248289761001","groups":["g"],"pad":"`+huge+`"}`)
		}},
		{"userinfo error of 100 KiB", func(f *fakeIdP) { f.uiStatus, f.uiRaw = http.StatusInternalServerError, []byte(long) }},
		{"key set error of 100 KiB", func(f *fakeIdP) {
			f.jwksStatus, f.jwksRaw = http.StatusInternalServerError, []byte(long)
			f.idClaims = profile(nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.idClaims = map[string]any{"name": "N"} // userinfo is asked for the rest
			tc.set(f)
			got, err := f.login(t, f.connector(t, nil))
			if err == nil {
				t.Fatalf("got %s; want the login refused", got)
			}
			if n := len(err.Error()); n > 1000 {
				t.Fatalf("error of %d bytes: %.300s…", n, err)
			}
		})
	}
}

// SEC-65 with Entra's {tenantid} issuer: an authorization response's iss
// may name any tenant (the ID token's check decides which), but nothing
// else.
func TestSEC65_TenantIssuerInAuthorizationResponse(t *testing.T) {
	f := newFakeIdP(t)
	f.issuer = f.srv.URL + "/{tenantid}/v2.0"
	c := f.connector(t, func(c *oidc.Config) { c.TenantIssuer = true })
	f.idClaims = profile(map[string]any{"tid": "t1", "iss": f.srv.URL + "/t1/v2.0"})
	for iss, ok := range map[string]bool{
		f.srv.URL + "/t1/v2.0":   true,
		f.srv.URL + "/a/b/v2.0":  false,
		f.srv.URL + "//v2.0":     false,
		"https://other.example":  false,
		f.srv.URL + "/t1/v2.0/x": false,
	} {
		state := "state-" + iss
		u, _ := url.Parse(c.LoginURL(state, callback))
		f.mu.Lock()
		f.challenge, f.nonce = u.Query().Get("code_challenge"), u.Query().Get("nonce")
		f.mu.Unlock()
		q := url.Values{"code": {"code-1"}, "state": {state}, "iss": {iss}}
		_, err := c.HandleCallback(context.Background(), callback, httptest.NewRequest("GET", callback+"?"+q.Encode(), nil))
		if ok && err != nil {
			t.Errorf("iss %s: %v", iss, err)
		} else if !ok && (err == nil || !strings.Contains(err.Error(), "iss")) {
			t.Errorf("iss %s: %v; want refused", iss, err)
		}
	}
}

// SEC-66: an https provider whose discovery document sends the client to
// an http endpoint would have the client secret, codes and tokens travel
// in clear: the connector refuses it at start.
func TestSEC66_PlainHTTPEndpointOfHTTPSIssuerRefused(t *testing.T) {
	for _, field := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} {
		var srv *httptest.Server
		srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			doc := map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
				"jwks_uri": srv.URL + "/jwks", "userinfo_endpoint": srv.URL + "/userinfo", "id_token_signing_alg_values_supported": []string{"ES256"}}
			doc[field] = "http://idp.example/" + field
			json.NewEncoder(w).Encode(doc)
		}))
		_, err := oidc.New(context.Background(), oidc.Config{Issuer: srv.URL, ClientID: "c", ClientSecret: "s", HTTPClient: srv.Client()})
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s over http at an https issuer: %v; want refused, naming it", field, err)
		}
	}
}

// SEC-74: no entry of a groups claim is dropped: a number (a provider's
// numeric group ID) is its decimal text, as a numeric subject is, and any
// other entry that is not a string refuses the login (an ended session at
// a refresh), as a group with a control character does (SEC-71): let in
// without it, the user would get past a rule that denies it.
func TestSEC74_GroupsClaimEntriesNeverDropped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		groups any
		want   string // the user's groups; "" for refused
	}{
		{"numbers", []any{"devs", 42, 7.0, -3}, `"groups":["devs","42","7","-3"]`},
		{"one number", 1234567890123, `"groups":["1234567890123"]`},
		{"a fraction", []any{"devs", 1.5}, ""},
		{"a number past 2^53", []any{"devs", 1e300}, ""},
		{"a boolean", []any{"devs", true}, ""},
		{"an object", []any{"devs", map[string]any{"id": "admins"}}, ""},
		{"a list", []any{"devs", []any{"admins"}}, ""},
		{"a null entry", []any{"devs", nil}, ""},
		{"an object as the claim", map[string]any{"admins": true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.idClaims = profile(map[string]any{"groups": tc.groups})
			got, err := f.login(t, f.connector(t, nil))
			switch {
			case tc.want != "" && (err != nil || !strings.Contains(got, tc.want)):
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			case tc.want == "" && (err == nil || !errors.Is(err, upstream.ErrSessionEnded) || !strings.Contains(err.Error(), "groups")):
				t.Fatalf("got %s, %v; want the login refused, naming the groups claim, as an ended session", got, err)
			}
		})
	}
}

// SEC-132: the signed ID token's claims win over userinfo's, nested
// ones too: userinfo's key spelled "realm_access.roles" does not replace
// the ID token's realm_access.roles, the groups of the keycloak preset.
// Fails before this change: the user had userinfo's groups ["admins"].
func TestSEC132_SignedNestedClaimWinsOverUserinfo(t *testing.T) {
	f := newFakeIdP(t)
	f.idClaims = map[string]any{"preferred_username": "jane", "email": "jane@corp.example", "email_verified": true,
		"realm_access": map[string]any{"roles": []string{"contractors"}}} // no name: userinfo is asked
	f.userinfo = map[string]any{"sub": "248289761001", "name": "J", "realm_access.roles": []string{"admins"}}
	got, err := f.login(t, f.connector(t, func(c *oidc.Config) { c.Claims = oidc.Claims{Groups: "realm_access.roles"} }))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, `"contractors"`) || strings.Contains(got, "admins") {
		t.Fatalf("got %s; want the ID token's groups [contractors], not userinfo's", got)
	}
}

// SEC-203: a provider's key set or token endpoint that redirects to
// another origin is not followed there: the key set is not fetched from
// it (whoever answers there could sign ID tokens for anyone), nor are the
// code, its verifier and the client secret posted to it.
func TestSEC203_RedirectToAnotherOriginNotFollowed(t *testing.T) {
	f := newFakeIdP(t)
	var mu sync.Mutex
	var asked []string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.Method+" "+r.URL.Path)
		mu.Unlock()
		// As the provider itself would answer: were it followed, the login would succeed.
		if r.URL.Path == "/token" {
			f.token(w, r)
			return
		}
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	}))
	defer elsewhere.Close()
	moving := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer moving.Close()
	for _, endpoint := range []string{"jwks_uri", "token_endpoint"} {
		t.Run(endpoint, func(t *testing.T) {
			mu.Lock()
			asked = nil
			mu.Unlock()
			f.moved = map[string]string{endpoint: moving.URL + "/" + map[string]string{"jwks_uri": "jwks", "token_endpoint": "token"}[endpoint]}
			f.idClaims = profile(nil)
			if got, err := f.login(t, f.connector(t, nil)); err == nil {
				t.Errorf("logged in as %s through a redirect to another origin; want the login refused", got)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(asked) > 0 {
				t.Errorf("the other origin was asked %v; want nothing", asked)
			}
		})
	}
}
