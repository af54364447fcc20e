package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// A session against a real provider (RT-3): the login hands back the
// provider's refresh token; a refresh re-reads the claims, so a group
// removed at the provider is gone from the refreshed user; a grant revoked
// at the provider makes the refresh fail with upstream.ErrSessionEnded.
func TestRefreshRereadsGroupsAndEndsWithTheProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := oidctest.User{Sub: "alice", Email: "alice@corp.example", EmailVerified: true, Groups: []string{"admins", "devs"}, Password: "pw"}
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{callback}}},
		Users:   []oidctest.User{alice},
	})
	c, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	var rc upstream.RefreshingConnector = c
	state := "state-refresh"
	back := op.Login(t, nil, c.LoginURL(state, callback), "alice")
	user, rt, err := rc.HandleCallbackSession(ctx, callback, httptest.NewRequest("GET", back.String(), nil))
	if err != nil {
		t.Fatal(err)
	}
	if user.ID != "oidc:alice" || !slices.Contains(user.Groups, "admins") || rt == "" {
		t.Fatalf("login: user %+v, refresh token given %v; want oidc:alice in admins with a refresh token", user, rt != "")
	}

	alice.Groups = []string{"devs"}
	op.SetUser(t, alice)
	user, rt2, err := rc.Refresh(ctx, rt)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if user.ID != "oidc:alice" || slices.Contains(user.Groups, "admins") || !slices.Contains(user.Groups, "devs") || rt2 == "" {
		t.Fatalf("refresh: user %+v, refresh token given %v; want oidc:alice in devs only", user, rt2 != "")
	}

	op.RevokeGrants(t, "alice")
	if _, _, err := rc.Refresh(ctx, rt2); !errors.Is(err, upstream.ErrSessionEnded) {
		t.Fatalf("refresh after the provider revoked the grant: %v, want ErrSessionEnded", err)
	}
}

// RT-3 at a provider that issues refresh tokens only for offline_access
// and lists the scope (Okta, Entra ID, Auth0): asking for it brings the
// refresh token the recheck redeems; without it the login brings none.
func TestOfflineAccessBringsARefreshToken(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op := oidctest.Start(t, oidctest.Options{
		RefreshTokens: oidctest.RefreshWithOfflineAccess,
		Clients:       []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{callback}}},
		Users:         []oidctest.User{{Sub: "alice", Email: "alice@corp.example", EmailVerified: true, Groups: []string{"admins"}}},
	})
	for _, mode := range []oidc.OfflineAccess{oidc.OfflineAccessIfListed, oidc.OfflineAccessNever} {
		c, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret", OfflineAccess: mode})
		if err != nil {
			t.Fatal(err)
		}
		state := "state-offline-" + mode.String()
		back := op.Login(t, nil, c.LoginURL(state, callback), "alice")
		user, rt, err := c.HandleCallbackSession(ctx, callback, httptest.NewRequest("GET", back.String(), nil))
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		if want := mode == oidc.OfflineAccessIfListed; user.ID != "oidc:alice" || (rt != "") != want {
			t.Fatalf("offline_access %v: user %q, refresh token given %v; want oidc:alice, a refresh token %v", mode, user.ID, rt != "", want)
		}
		if mode == oidc.OfflineAccessIfListed {
			if _, _, err := c.Refresh(ctx, rt); err != nil {
				t.Fatalf("refresh with the token offline_access brought: %v", err)
			}
		}
	}
}

// SEC-60: the hosted domain and tenant rules hold at a refresh as at the
// login: a refreshed ID token whose hd or tid the connector would refuse
// at login ends the session, rather than keep a person the restriction
// now excludes.
func TestSEC60_RefreshChecksHostedDomainAndTenant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := oidctest.User{Sub: "alice", Email: "alice@example.com", EmailVerified: true, Username: "alice", Name: "Alice",
		Groups: []string{"devs"}, Extra: map[string]any{"hd": "example.com", "tid": "t1"}}
	bob := oidctest.User{Sub: "bob", Email: "bob@example.com", EmailVerified: true, Username: "bob", Name: "Bob",
		Groups: []string{"devs"}, Extra: map[string]any{"hd": "example.com", "tid": "t1"}}
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{callback}}},
		Users:   []oidctest.User{alice, bob},
	})
	c, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret",
		HostedDomains: []string{"example.com"}, AllowedTenants: []string{"t1"}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(sub string) string {
		t.Helper()
		state := "state-" + sub
		back := op.Login(t, nil, c.LoginURL(state, callback), sub)
		_, rt, err := c.HandleCallbackSession(ctx, callback, httptest.NewRequest("GET", back.String(), nil))
		if err != nil || rt == "" {
			t.Fatalf("login of %s: refresh token given %v, %v", sub, rt != "", err)
		}
		return rt
	}
	rtAlice, rtBob := login("alice"), login("bob")
	if _, _, err := c.Refresh(ctx, rtAlice); err != nil {
		t.Fatalf("refresh with hd and tid unchanged: %v", err)
	}

	alice.Extra = map[string]any{"hd": "other.example", "tid": "t1"}
	op.SetUser(t, alice)
	if u, _, err := c.Refresh(ctx, rtAlice); !errors.Is(err, upstream.ErrSessionEnded) {
		t.Errorf("refresh whose ID token has hd other.example: user %+v, %v; want ErrSessionEnded", u, err)
	}
	bob.Extra = map[string]any{"hd": "example.com", "tid": "t2"}
	op.SetUser(t, bob)
	if u, _, err := c.Refresh(ctx, rtBob); !errors.Is(err, upstream.ErrSessionEnded) {
		t.Errorf("refresh whose ID token has tid t2: user %+v, %v; want ErrSessionEnded", u, err)
	}
}

// SEC-65: the issuer in the authorization response (RFC 9207 §2.4) is
// compared with the provider's: a response whose iss names another
// issuer is refused before its code is redeemed, and so is one without
// iss from a provider that says it sends one.
func TestSEC65_AuthorizationResponseIssuerChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{callback}}},
		Users:   []oidctest.User{{Sub: "alice", Email: "alice@corp.example", EmailVerified: true}},
	})
	c, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret"})
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(q url.Values){
		"another issuer": func(q url.Values) { q.Set("iss", "https://other.example") },
		"no issuer":      func(q url.Values) { q.Del("iss") },
	} {
		state := "state-" + strings.ReplaceAll(name, " ", "-")
		back := op.Login(t, nil, c.LoginURL(state, callback), "alice")
		q := back.Query()
		if q.Get("iss") != op.Issuer() || q.Get("code") == "" {
			t.Fatalf("the provider's callback %s lacks its iss or code", back)
		}
		edit(q)
		back.RawQuery = q.Encode()
		if u, err := c.HandleCallback(ctx, callback, httptest.NewRequest("GET", back.String(), nil)); err == nil || !strings.Contains(err.Error(), "iss") {
			t.Errorf("%s: user %+v, %v; want refused for its iss", name, u, err)
		}
	}
	state := "state-genuine"
	back := op.Login(t, nil, c.LoginURL(state, callback), "alice")
	if _, err := c.HandleCallback(ctx, callback, httptest.NewRequest("GET", back.String(), nil)); err != nil {
		t.Fatalf("the provider's own callback: %v", err)
	}
}

// narrowing answers as a provider that granted fewer scopes than the
// login did: with scope, it drops groups from the token response's scope;
// with claim, the groups claim from userinfo's answer (/me, where
// oidc-provider puts it).
func narrowing(scope, claim *bool) *oidctest.EditAnswers {
	return &oidctest.EditAnswers{
		Match: func(r *http.Request) bool {
			return *scope && strings.HasSuffix(r.URL.Path, "/token") || *claim && strings.HasSuffix(r.URL.Path, "/me")
		},
		Edit: func(r *http.Request, answer map[string]any) {
			if granted, ok := answer["scope"].(string); ok {
				answer["scope"] = strings.Join(slices.DeleteFunc(strings.Fields(granted), func(s string) bool { return s == "groups" }), " ")
			}
			if strings.HasSuffix(r.URL.Path, "/me") {
				delete(answer, "groups")
			}
		},
	}
}

// SEC-168: a refresh whose answer names the scopes granted without
// groups, which the login asked for, and brings no groups claim, ends the
// session, as a login with such an answer is refused (the root test
// TestOIDCRefusalsStoreNothing leaves groups out of the sign-in URL): the
// groups it would bring are not the person's. With the claim, the
// provider sends groups another way, and the refresh goes on.
func TestSEC168_RefreshWithoutGroupsScopeEndsTheSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	alice := oidctest.User{Sub: "alice", Email: "alice@corp.example", EmailVerified: true, Groups: []string{"contractors"}, Password: "pw"}
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{callback}}},
		Users:   []oidctest.User{alice},
		// Groups at userinfo only, where the narrower can take them out.
		IDTokenOmits: []string{"groups"},
	})
	var scope, claim bool
	c, err := oidc.New(ctx, oidc.Config{Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret",
		OfflineAccess: oidc.OfflineAccessAlways, HTTPClient: &http.Client{Transport: narrowing(&scope, &claim), Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	back := op.Login(t, nil, c.LoginURL("state-narrow", callback), "alice")
	user, rt, err := c.HandleCallbackSession(ctx, callback, httptest.NewRequest("GET", back.String(), nil))
	if err != nil || !slices.Contains(user.Groups, "contractors") || rt == "" {
		t.Fatalf("login: %+v, refresh token given %v, %v; want alice in contractors with a refresh token", user, rt != "", err)
	}
	// A provider that sends the groups claim whatever the scope
	// (Keycloak's mappers) and leaves groups out of the answer's scope.
	scope = true
	user, rt, err = c.Refresh(ctx, rt)
	if err != nil || !slices.Contains(user.Groups, "contractors") {
		t.Fatalf("refresh granted without groups, with the groups claim: %+v, %v; want alice in contractors", user, err)
	}
	claim = true
	if user, _, err := c.Refresh(ctx, rt); !errors.Is(err, upstream.ErrSessionEnded) || !strings.Contains(err.Error(), "without groups") {
		t.Fatalf("refresh granted without groups, and no groups claim: %+v, %v; want ErrSessionEnded saying groups were not granted", user, err)
	}
}
