package oidc_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
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
