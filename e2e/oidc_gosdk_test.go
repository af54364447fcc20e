package e2e

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// The go-sdk client's own OAuth handler through the binary in front of a
// real OpenID provider: it discovers mcpgate's metadata, registers,
// authorizes with PKCE; its "browser" consents at mcpgate, signs in at
// the provider's own login page with the user's password and comes back
// through /callback/oidc; whoami shows oidc:<sub> with the email and the
// groups, and the handler holds a refresh token.
func TestBinaryGoSDKOAuthThroughOIDC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users: []oidctest.User{{Sub: "u-248289", Email: "vera@corp.example", EmailVerified: true, Username: "vera",
			Groups: []string{"devs", "ops"}, Password: "vera-pw"}},
	})
	p := startBinary(t, port, "--data-dir", t.TempDir(), "--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
	defer p.stop(t)

	logins := 0
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		RedirectURL: callback,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			logins++
			b := browser.New("", "")
			toProvider, err := b.Walk(ctx, args.URL, op.Issuer()+"/")
			if err != nil {
				return nil, err
			}
			done, err := b.Walk(ctx, op.Login(t, b.Client, toProvider.String(), "u-248289").String(), callback)
			if err != nil {
				return nil, err
			}
			q := done.Query()
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state"), Iss: q.Get("iss")}, nil
		},
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			ClientName:              "go-sdk e2e",
			RedirectURIs:            []string{callback},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
		}},
		RequestRefreshToken: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := whoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h})
	u, _ := m["user"].(map[string]any)
	var groups []string
	for _, g := range asSlice(u["groups"]) {
		groups = append(groups, g.(string))
	}
	if u["sub"] != "oidc:u-248289" || u["email"] != "vera@corp.example" || u["email_verified"] != true ||
		!slices.Equal(groups, []string{"devs", "ops"}) || m["resource"] != p.base+"/mcp" || logins != 1 {
		t.Fatalf("whoami %v after %d logins; want oidc:u-248289 with vera@corp.example (verified) and groups [devs ops] at %s/mcp, after one login", m, logins, p.base)
	}
	ts, err := h.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(); err != nil || tok.RefreshToken == "" {
		t.Fatalf("the handler's token: %v; want one with a refresh token", err)
	}
}
