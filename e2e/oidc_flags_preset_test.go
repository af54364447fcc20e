package e2e

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// --oidc-preset keycloak on the provider of the --oidc-* flags, against a
// real OpenID provider: whoami shows the realm roles (realm_access.roles)
// as the groups, where the same flags without the preset show the groups
// claim.
func TestBinaryOIDCFlagsPreset(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users: []oidctest.User{{Sub: "u-kc", Email: "kim@corp.example", EmailVerified: true, Username: "kim",
			Groups: []string{"devs"}, Roles: []string{"kc-admins", "kc-ops"}}},
	})
	for _, tc := range []struct {
		preset []string
		groups []string
	}{
		{nil, []string{"devs"}},
		{[]string{"--oidc-preset", "keycloak"}, []string{"kc-admins", "kc-ops"}},
	} {
		args := append([]string{"--data-dir", t.TempDir(), "--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret"}, tc.preset...)
		p := startBinary(t, port, args...)
		u, _ := oidcWhoami(t, ctx, p, op, "u-kc")["user"].(map[string]any)
		p.stop(t)
		var groups []string
		for _, g := range asSlice(u["groups"]) {
			groups = append(groups, g.(string))
		}
		if u["sub"] != "oidc:u-kc" || !slices.Equal(groups, tc.groups) {
			t.Fatalf("%q: whoami user %v; want oidc:u-kc in %v", tc.preset, u, tc.groups)
		}
	}
}
