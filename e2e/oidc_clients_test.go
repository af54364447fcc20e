package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/identity"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// The real MCP clients (the go-sdk's, the TypeScript SDK's, MCP Inspector's
// CLI) through the binary configured with the three OIDC flags in front of
// a real OpenID provider: each registers, authorizes at mcpgate, and its
// "browser" (the headless form follower) allows on mcpgate's consent page,
// then signs in on the provider's own login form, whose password the
// provider checks; whoami must then show exactly the provider's user as
// mcpgate maps it.

// oidcClientUser signs in at the provider; oidcOtherUser is there so that
// the identity whoami shows is the one that typed the password, not merely
// some user of the provider.
var (
	oidcClientUser = oidctest.User{Sub: "u-31337", Email: "mira@corp.example", EmailVerified: true, Name: "Mira Mendes",
		Username: "mira", Groups: []string{"devs", "sre"}, Password: "mira-pw"}
	oidcOtherUser = oidctest.User{Sub: "u-2", Email: "olaf@corp.example", EmailVerified: true, Username: "olaf",
		Groups: []string{"admins"}, Password: "olaf-pw"}
)

// wantOIDCUser is oidcClientUser as whoami must show it: oidc:<sub>, the
// verified email, the groups in the provider's order, the profile.
var wantOIDCUser = identity.User{ID: "oidc:u-31337", Upstream: "oidc", Username: "mira", Name: "Mira Mendes",
	Email: "mira@corp.example", EmailVerified: true, Groups: []string{"devs", "sre"}}

// oidcClientGateway starts the provider, with mcpgate as a confidential
// client, and the binary with --oidc-issuer, --oidc-client-id and
// --oidc-client-secret.
func oidcClientGateway(t *testing.T) *process {
	t.Helper()
	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users:   []oidctest.User{oidcOtherUser, oidcClientUser},
	})
	return startBinary(t, port, "--data-dir", t.TempDir(),
		"--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
}

// oidcBrowser signs in at the provider as oidcClientUser.
func oidcBrowser() *browser.Browser {
	return browser.New(oidcClientUser.Sub, oidcClientUser.Password)
}

// checkOIDCUser fails unless u is exactly wantOIDCUser.
func checkOIDCUser(t *testing.T, what string, u identity.User) {
	t.Helper()
	if !reflect.DeepEqual(u, wantOIDCUser) {
		t.Errorf("%s: whoami user %+v; want exactly %+v", what, u, wantOIDCUser)
	}
}

// checkNoSecretLogged fails when the provider's client secret reached the
// binary's log.
func checkNoSecretLogged(t *testing.T, p *process) {
	t.Helper()
	if strings.Contains(p.settledStderr(t), "op-s3cret") {
		t.Error("the provider's client secret reached the log")
	}
}

// The go-sdk client's own OAuth handler (DCR, PKCE S256, resource) through
// an OIDC login: whoami shows oidc:<sub>, the email and the groups.
func TestGoSDKClientOIDC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := oidcClientGateway(t)
	defer p.stop(t)

	h, _ := oauthClientAs(t, oidcClientUser.Sub, oidcClientUser.Password)
	m := whoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: p.base + "/mcp", OAuthHandler: h})
	var w whoamiOutput
	raw, _ := json.Marshal(m)
	if err := json.Unmarshal(raw, &w); err != nil {
		t.Fatalf("whoami %s: %v", raw, err)
	}
	checkOIDCUser(t, "go-sdk", w.User)
	if w.Resource != p.base+"/mcp" {
		t.Errorf("whoami resource %q, want %s/mcp", w.Resource, p.base)
	}
	ts, err := h.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := ts.Token(); err != nil || tok.RefreshToken == "" {
		t.Errorf("tokens: %v, want an access token with a refresh token", err)
	}
	checkNoSecretLogged(t, p)
}

// The TypeScript SDK's client (tsclient.mjs: DCR, PKCE S256, resource,
// then a refresh) through an OIDC login: whoami shows oidc:<sub>, the email
// and the groups, before and after mcpgate's refresh.
func TestTypeScriptSDK_OIDC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := oidcClientGateway(t)
	defer p.stop(t)
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))

	r := runTSClientWith(t, ctx, oidcBrowser(), cb, "dcr", p.base+"/mcp", cb)
	if r.ClientID == "" || strings.HasPrefix(r.ClientID, "https://") {
		t.Fatalf("DCR client_id %q, want a registered (non-URL) client_id", r.ClientID)
	}
	checkOIDCUser(t, "TypeScript SDK", r.Whoami.User)
	checkOIDCUser(t, "TypeScript SDK after the refresh", r.Refresh.Whoami.User)
	checkTSFlow(t, r, p.base, r.ClientID)
	checkNoSecretLogged(t, p)
}

// MCP Inspector's CLI (DCR, PKCE S256, resource; no TTY, its printed URL
// walked by the form follower and the redirect delivered to its loopback
// listener) through an OIDC login: whoami, called by the CLI, shows
// oidc:<sub>, the email and the groups.
func TestMCPInspectorCLI_OIDC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := oidcClientGateway(t)
	defer p.stop(t)

	run := runInspectorCLI(t, ctx, oidcBrowser(), p.base, "--tool-name", "whoami")
	var result struct {
		StructuredContent *whoamiOutput `json:"structuredContent"`
		IsError           bool          `json:"isError"`
	}
	if err := json.Unmarshal([]byte(run.stdout), &result); err != nil || result.IsError || result.StructuredContent == nil {
		t.Fatalf("stdout is not whoami's result (%v):\n%s", err, run.stdout)
	}
	checkOIDCUser(t, "MCP Inspector CLI", result.StructuredContent.User)
	if result.StructuredContent.Resource != p.base+"/mcp" {
		t.Errorf("whoami resource %q, want %s/mcp", result.StructuredContent.Resource, p.base)
	}
	checkNoSecretLogged(t, p)
}
