package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/internal/oidctest"
)

// The binary with --oidc-issuer in front of a real OpenID provider
// (oidc-provider): an MCP client registers, authorizes at mcpgate, signs in
// at the provider's own login page, comes back through
// PUBLIC_URL/callback/oidc, and whoami shows oidc:<sub>, the groups, and the
// email only when the provider says it is verified. A public client at the
// provider (no secret) works with PKCE alone.
func TestBinaryOIDCUpstream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := freePort(t)
	callback := "http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{
			{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{callback}},
			{ID: "mcpgate-public", RedirectURIs: []string{callback}},
		},
		Users: []oidctest.User{
			{Sub: "u-248289", Email: "vera@corp.example", EmailVerified: true, Name: "Vera V", Username: "vera",
				Groups: []string{"devs", "ops"}, Password: "vera-pw"},
			{Sub: "u-555", Email: "ursula@corp.example", EmailVerified: false, Name: "Ursula", Username: "ursula"},
		},
	})
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("op-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, sub, email string
		groups           []string
		client           []string
	}{
		{"confidential, verified email", "u-248289", "vera@corp.example", []string{"devs", "ops"},
			[]string{"--oidc-client-id", "mcpgate", "--oidc-client-secret-file", secretFile}},
		{"unverified email", "u-555", "", nil,
			[]string{"--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret"}},
		{"public client", "u-248289", "vera@corp.example", []string{"devs", "ops"},
			[]string{"--oidc-client-id", "mcpgate-public"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir(), "--oidc-issuer", op.Issuer()}, tc.client...)
			p := startBinary(t, port, args...)
			defer p.stop(t)
			m := oidcWhoami(t, ctx, p, op, tc.sub)
			if strings.Contains(p.settledStderr(t), "op-s3cret") {
				t.Fatal("the client secret reached the log")
			}
			u, _ := m["user"].(map[string]any)
			var groups []string
			for _, g := range asSlice(u["groups"]) {
				groups = append(groups, g.(string))
			}
			email, _ := u["email"].(string)
			if u["sub"] != "oidc:"+tc.sub || u["upstream"] != "oidc" || email != tc.email || (email != "") != (u["email_verified"] == true) ||
				!slices.Equal(groups, tc.groups) {
				t.Fatalf("whoami user %v; want sub oidc:%s, email %q (verified), groups %v", u, tc.sub, tc.email, tc.groups)
			}
		})
	}
}

// A provider that keeps the ID token to sub (oidc-provider's default,
// conformIdTokenClaims): the profile, email and groups come from userinfo.
func TestBinaryOIDCUserinfo(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		ClaimsOnlyAtUserinfo: true,
		Clients:              []oidctest.Client{{ID: "mcpgate", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users:                []oidctest.User{{Sub: "u-7", Email: "g@corp.example", EmailVerified: true, Username: "gus", Groups: []string{"admins"}}},
	})
	p := startBinary(t, port, "--data-dir", t.TempDir(), "--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate")
	defer p.stop(t)
	u, _ := oidcWhoami(t, ctx, p, op, "u-7")["user"].(map[string]any)
	if u["sub"] != "oidc:u-7" || u["email"] != "g@corp.example" || u["preferred_username"] != "gus" || len(asSlice(u["groups"])) != 1 {
		t.Fatalf("whoami user %v; want oidc:u-7 with the email, username and groups from userinfo", u)
	}
}

// A wrong password at the provider: the provider answers access_denied at
// the callback, and mcpgate shows a page saying the provider did not sign
// the person in, whose link gives the client access_denied, no code.
func TestBinaryOIDCWrongPassword(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := freePort(t)
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users:   []oidctest.User{{Sub: "u-1", Email: "a@corp.example", EmailVerified: true, Password: "right"}},
	})
	p := startBinary(t, port, "--data-dir", t.TempDir(), "--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
	defer p.stop(t)
	redirect := "http://127.0.0.1:1/oidc-e2e/cb"
	a := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-e2e", redirect), redirect)
	b := browser.New("", "")
	toProvider, err := b.Walk(ctx, a.url(), op.Issuer()+"/")
	if err != nil {
		t.Fatal(err)
	}
	back := op.LoginWithPassword(t, b.Client, toProvider.String(), "u-1", "wrong")
	iss, _ := url.Parse(op.Issuer())
	name := iss.Hostname() // the provider's name when none is configured
	failedSignIn(t, ctx, b, back.String(), a, http.StatusForbidden, name+" did not sign you in",
		"The sign-in at "+name+" was cancelled or refused, so you are not signed in.", "access_denied")
	waitLog(t, p, "access denied by the user")
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// oidcWhoami walks one authorization through mcpgate's consent page and the
// provider's login, redeems the code and calls whoami with the token.
func oidcWhoami(t *testing.T, ctx context.Context, p *process, op *oidctest.Provider, sub string) map[string]any {
	t.Helper()
	redirect := "http://127.0.0.1:1/oidc-e2e/cb"
	a := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-e2e", redirect), redirect)
	b := browser.New("", "")
	toProvider, err := b.Walk(ctx, a.url(), op.Issuer()+"/")
	if err != nil {
		t.Fatalf("authorize at mcpgate: %v\n%s", err, p.Stderr())
	}
	back := op.Login(t, b.Client, toProvider.String(), sub)
	if back.Query().Get("error") != "" {
		t.Fatalf("the provider refused: %s", back)
	}
	done, err := b.Walk(ctx, back.String(), redirect)
	if err != nil {
		t.Fatalf("callback at mcpgate: %v\n%s", err, p.Stderr())
	}
	return whoami(t, ctx, staticTransport(p.base+"/mcp", a.exchange(t, a.check(t, done.String()))))
}
