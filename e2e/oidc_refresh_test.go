package e2e

import (
	"context"
	"encoding/json"
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

// oidcLogin walks one authorization through mcpgate and the provider as
// sub, in a fresh browser, and returns the client and its refresh token.
func oidcLogin(t *testing.T, ctx context.Context, p *process, op *oidctest.Provider, sub string) (clientID, refreshToken string) {
	t.Helper()
	clientID, refreshToken, _ = oidcLoginWith(t, ctx, p, op, "", sub)
	return clientID, refreshToken
}

// oidcLoginWith is oidcLogin through the provider named connector on the
// chooser ("" when there is one provider); it also returns the
// authorization request that mcpgate sent to the provider.
func oidcLoginWith(t *testing.T, ctx context.Context, p *process, op *oidctest.Provider, connector, sub string) (clientID, refreshToken string, toProvider *url.URL) {
	t.Helper()
	redirect := "http://127.0.0.1:1/oidc-refresh/cb"
	a := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-refresh", redirect), redirect)
	b := browser.New("", "")
	if connector != "" {
		b.Fields = map[string]string{"connector": connector}
	}
	toProvider, err := b.Walk(ctx, a.url(), op.Issuer()+"/")
	if err != nil {
		t.Fatalf("%s: authorize at mcpgate: %v\n%s", sub, err, p.Stderr())
	}
	done, err := b.Walk(ctx, op.Login(t, b.Client, toProvider.String(), sub).String(), redirect)
	if err != nil {
		t.Fatalf("%s: callback at mcpgate: %v\n%s", sub, err, p.Stderr())
	}
	resp, err := http.PostForm(p.base+"/token", url.Values{
		"grant_type": {"authorization_code"}, "code": {a.check(t, done.String())}, "client_id": {a.clientID},
		"redirect_uri": {a.redirect}, "code_verifier": {a.verifier}, "resource": {a.resource()},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != 200 || tok.RefreshToken == "" {
		t.Fatalf("%s: token: %d (%v), want 200 with a refresh token", sub, resp.StatusCode, err)
	}
	return a.clientID, tok.RefreshToken, toProvider
}

// refreshUntilRefused refreshes, keeping each new refresh token, until
// mcpgate refuses; it fails the test unless the refusal is invalid_grant
// within the deadline. Refreshes before upstream_recheck has passed are
// answered without asking the provider, so they succeed.
func refreshUntilRefused(t *testing.T, p *process, clientID, rt string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := refresh(t, p.base, clientID, rt)
		if status != 200 {
			if status != 400 || body["error"] != "invalid_grant" {
				t.Fatalf("refresh: %d %v, want 400 invalid_grant", status, body)
			}
			return
		}
		rt, _ = body["refresh_token"].(string)
		if time.Now().After(deadline) {
			t.Fatalf("mcpgate still refreshes 30 s after the provider's change, with upstream_recheck 1s\n%s", p.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// hasLogRecord reports whether the binary logged msg with the given
// attribute values (key, value, key, value...), waiting up to 10 s: the
// line may still be in the pipe from the binary when the answer that
// followed it has arrived.
func hasLogRecord(t *testing.T, p *process, msg string, kv ...string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !loggedNow(t, p, msg, kv...) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// loggedNow is hasLogRecord on what the binary has logged so far.
func loggedNow(t *testing.T, p *process, msg string, kv ...string) bool {
	for _, r := range logRecords(t, p.Stderr(), msg) {
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			match = match && r[kv[i]] == kv[i+1]
		}
		if match {
			return true
		}
	}
	return false
}

// RT-3 through the binary, with upstream_recheck 1s and access.groups
// [admins]: a user the provider takes out of admins, and a user whose
// grant the provider revokes, are each refused at a refresh once the
// recheck is due (invalid_grant), and the log says why; a user the
// provider keeps in admins still refreshes after the recheck.
func TestBinaryOIDCUpstreamRecheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := freePort(t)
	vera := oidctest.User{Sub: "u-vera", Email: "vera@corp.example", EmailVerified: true, Username: "vera", Groups: []string{"admins", "devs"}}
	ursula := oidctest.User{Sub: "u-ursula", Email: "ursula@corp.example", EmailVerified: true, Username: "ursula", Groups: []string{"admins"}}
	kept := oidctest.User{Sub: "u-kept", Email: "kept@corp.example", EmailVerified: true, Username: "kept", Groups: []string{"admins"}}
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{"http://127.0.0.1:" + strconv.Itoa(port) + "/callback/oidc"}}},
		Users:   []oidctest.User{vera, ursula, kept},
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgate.yaml")
	if err := os.WriteFile(file, []byte("upstream_recheck: 1s\naccess:\n  groups: [admins]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, port, "--config", file, "--data-dir", filepath.Join(dir, "data"),
		"--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
	defer p.stop(t)

	veraClient, veraRT := oidcLogin(t, ctx, p, op, vera.Sub)
	ursulaClient, ursulaRT := oidcLogin(t, ctx, p, op, ursula.Sub)
	keptClient, keptRT := oidcLogin(t, ctx, p, op, kept.Sub)

	vera.Groups = []string{"devs"}
	op.SetUser(t, vera)
	refreshUntilRefused(t, p, veraClient, veraRT)
	if !hasLogRecord(t, p, "refresh refused: the user is no longer allowed: grant ended", "user", "oidc:u-vera", "rule", "access") {
		t.Fatalf("the log does not say rule access refused oidc:u-vera at a refresh:\n%s", p.Stderr())
	}

	op.RevokeGrants(t, ursula.Sub)
	refreshUntilRefused(t, p, ursulaClient, ursulaRT)
	if !hasLogRecord(t, p, "upstream session ended: grant revoked", "user", "oidc:u-ursula") {
		t.Fatalf("the log does not say the provider ended oidc:u-ursula's session:\n%s", p.Stderr())
	}

	// One still in admins at the provider refreshes, through a recheck.
	deadline := time.Now().Add(30 * time.Second)
	for !loggedNow(t, p, "upstream session renewed", "user", "oidc:u-kept") {
		status, body := refresh(t, p.base, keptClient, keptRT)
		if status != 200 {
			t.Fatalf("refresh of a user still let in: %d %v, want 200\n%s", status, body, p.Stderr())
		}
		keptRT, _ = body["refresh_token"].(string)
		if time.Now().After(deadline) {
			t.Fatalf("no upstream recheck of oidc:u-kept within 30 s, with upstream_recheck 1s\n%s", p.Stderr())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if strings.Contains(p.settledStderr(t), "op-s3cret") {
		t.Fatal("the client secret reached the log")
	}
}

// RT-3 at a provider that issues refresh tokens only to logins that asked
// for offline_access and lists the scope (Okta, Entra ID, Auth0), through
// the binary with upstream_recheck 1s and access.groups [admins]: the
// oidc_* provider (no preset) and an okta preset provider each ask for
// offline_access, get the refresh token the recheck redeems, and a user
// the provider takes out of admins is refused at a refresh once the
// recheck is due, the log saying the access rule refused them.
func TestBinaryOIDCOfflineAccessRecheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	vera := oidctest.User{Sub: "u-vera", Email: "vera@corp.example", EmailVerified: true, Username: "vera", Groups: []string{"admins"}}
	kim := oidctest.User{Sub: "u-kim", Email: "kim@corp.example", EmailVerified: true, Username: "kim", Groups: []string{"admins"}}
	op := oidctest.Start(t, oidctest.Options{
		RefreshTokens: oidctest.RefreshWithOfflineAccess,
		Clients:       []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{base + "/callback/oidc", base + "/callback/ok"}}},
		Users:         []oidctest.User{vera, kim},
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := "upstream_recheck: 1s\naccess:\n  groups: [admins]\noidc_providers:\n" +
		"  - {name: ok, preset: okta, issuer: " + op.Issuer() + ", client_id: mcpgate, client_secret: op-s3cret}\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, port, "--config", file, "--data-dir", filepath.Join(dir, "data"),
		"--oidc-issuer", op.Issuer(), "--oidc-client-id", "mcpgate", "--oidc-client-secret", "op-s3cret")
	defer p.stop(t)

	for _, tc := range []struct {
		connector string
		user      *oidctest.User
	}{{"oidc", &vera}, {"ok", &kim}} {
		clientID, rt, toProvider := oidcLoginWith(t, ctx, p, op, tc.connector, tc.user.Sub)
		if scope := strings.Fields(toProvider.Query().Get("scope")); !slices.Contains(scope, "offline_access") {
			t.Fatalf("%s: scope %v sent to the provider, want offline_access among them", tc.connector, scope)
		}
		if strings.Contains(p.settledStderr(t), "no refresh token") {
			t.Fatalf("%s: a login logged as one without the provider's refresh token:\n%s", tc.connector, p.Stderr())
		}
		tc.user.Groups = []string{"devs"}
		op.SetUser(t, *tc.user)
		refreshUntilRefused(t, p, clientID, rt)
		if !hasLogRecord(t, p, "refresh refused: the user is no longer allowed: grant ended", "user", tc.connector+":"+tc.user.Sub, "rule", "access") {
			t.Fatalf("%s: the log does not say rule access refused %s at a refresh:\n%s", tc.connector, tc.user.Sub, p.Stderr())
		}
	}
}
