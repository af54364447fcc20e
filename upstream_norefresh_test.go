package mcpgate_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/internal/oidctest"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// noRefreshToken drops refresh_token from the provider's token answers,
// as Entra ID, Okta and Auth0 do without offline_access, and Google
// without access_type=offline.
var noRefreshToken = &oidctest.EditAnswers{
	Match: func(r *http.Request) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/token")
	},
	Edit: func(_ *http.Request, answer map[string]any) { delete(answer, "refresh_token") },
}

// SEC-67: a login at a provider that issued no refresh token makes a
// grant that can never be rechecked there (RT-3): the log says so, naming
// the provider and what to ask it for, since otherwise a person removed
// from a group or disabled at the provider keeps their access for as long
// as the grant's refresh tokens live.
func TestSEC67_LoginWithoutUpstreamRefreshTokenWarns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, base := loopback(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-secret", RedirectURIs: []string{base + "/callback/corp"}}},
		Users:   []oidctest.User{{Sub: "alice", Email: "alice@corp.example", EmailVerified: true, Password: "pw"}},
	})
	con, err := oidc.New(ctx, oidc.Config{Name: "corp", Issuer: op.Issuer(), ClientID: "mcpgate", ClientSecret: "op-secret",
		HTTPClient: &http.Client{Transport: noRefreshToken, Timeout: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	g := newGatewayOn(t, ln, func(c *mcpgateConfig) {
		c.Connectors = []upstream.Connector{con}
		c.UpstreamRecheck = time.Hour
	})
	a := g.newAuth(g.register(nil).ClientID)
	codeAtProvider(t, ctx, op, a, "alice")
	logs := g.logs.String()
	if !strings.Contains(logs, "gave no refresh token at login") || !strings.Contains(logs, "connector=corp") || !strings.Contains(logs, "offline_access") {
		t.Fatalf("the log does not warn that corp issued no refresh token:\n%s", logs)
	}
}
