package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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

// tenantFront stands in front of op's discovery document as Entra ID's
// multi-tenant endpoints do: at any path, the document names the issuer
// "http://127.0.0.1:{tenantid}". oidc-provider's tokens carry its real
// issuer, http://127.0.0.1:PORT, so that issuer is the placeholder filled
// with a tid of PORT: a user whose tid claim is the port is of the issuer
// that signed the token, and any other tid names another tenant's issuer.
func tenantFront(t *testing.T, op *oidctest.Provider) *httptest.Server {
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration") {
			http.NotFound(w, r)
			return
		}
		resp, err := http.Get(op.Issuer() + "/.well-known/openid-configuration")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var doc map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		doc["issuer"] = "http://127.0.0.1:{tenantid}"
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(front.Close)
	return front
}

// The presets against a real OpenID provider (oidc-provider) that behaves
// as each one's provider does, each login through mcpgate's consent page
// and the provider's own form, and each preset's difference seen by
// whoami or by a refusal:
//   - google: hd=example.com is sent, and a token without hd is refused
//     although the provider signed it;
//   - entra at the common endpoint: the discovery issuer has {tenantid};
//     a user whose tid fills it to the token's iss gets in, one of another
//     tenant does not; no resource parameter goes upstream;
//   - keycloak: groups are realm_access.roles;
//   - auth0: groups from a namespaced claim, the username from nickname;
//   - and the refresh token of the recheck (RT-3) asked for as each
//     provider needs: Google's access_type=offline and prompt=consent,
//     Entra's and Auth0's offline_access, nothing at Keycloak.
func TestBinaryOIDCPresets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	names := []string{"gw", "ms", "kc", "a0"}
	var callbacks []string
	for _, n := range names {
		callbacks = append(callbacks, base+"/callback/"+n)
	}
	ns := "https://corp.example/groups"
	ws := oidctest.User{Sub: "u-ws", Email: "wes@example.com", EmailVerified: true, Username: "wes", Groups: []string{"devs"},
		Roles: []string{"kc-admins"}, Extra: map[string]any{"hd": "example.com", "tid": "0", ns: []string{"a0-admins"}, "nickname": "wesnick"}}
	other := oidctest.User{Sub: "u-other", Email: "olga@gmail.example", EmailVerified: true, Username: "olga",
		Extra: map[string]any{"tid": "72f988bf"}}
	op := oidctest.Start(t, oidctest.Options{
		Clients: []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: callbacks}},
		Users:   []oidctest.User{ws, other},
	})
	iss, err := url.Parse(op.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	ws.Extra["tid"] = iss.Port()
	op.SetUser(t, ws)
	front := tenantFront(t, op)

	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := fmt.Sprintf(`oidc_providers:
  - {name: gw, preset: google, issuer: %[1]s, client_id: mcpgate, client_secret: op-s3cret, hosted_domain: example.com}
  - {name: ms, preset: entra, tenant: common, issuer: %[2]s/common/v2.0, client_id: mcpgate, client_secret: op-s3cret}
  - {name: kc, preset: keycloak, issuer: %[1]s, client_id: mcpgate, client_secret: op-s3cret}
  - {name: a0, preset: auth0, issuer: %[1]s, client_id: mcpgate, client_secret: op-s3cret, claims: {groups: "%[3]s"}}
`, op.Issuer(), front.URL, ns)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, port, "--config", file, "--data-dir", filepath.Join(dir, "data"))
	defer p.stop(t)

	for _, tc := range []struct {
		connector, sub string
		username       string
		groups         []string
		refused        string // in the log when the login is refused
	}{
		{"gw", "u-ws", "wes@example.com", []string{"devs"}, ""},
		{"gw", "u-other", "", nil, "no hosted domain"},
		{"ms", "u-ws", "wes", []string{"devs"}, ""},
		{"ms", "u-other", "", nil, "is not the issuer of its tenant"},
		{"kc", "u-ws", "wes", []string{"kc-admins"}, ""},
		{"a0", "u-ws", "wesnick", []string{"a0-admins"}, ""},
	} {
		name := tc.connector + " " + tc.sub
		redirect := "http://127.0.0.1:1/oidc-presets/cb"
		authz := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-presets", redirect), redirect)
		br := browser.New("", "")
		br.Fields = map[string]string{"connector": tc.connector}
		toProvider, err := br.Walk(ctx, authz.url(), op.Issuer()+"/")
		if err != nil {
			t.Fatalf("%s: authorize at mcpgate: %v\n%s", name, err, p.Stderr())
		}
		q := toProvider.Query()
		if q.Has("resource") || (tc.connector == "gw") != (q.Get("hd") == "example.com") {
			t.Fatalf("%s: sent to the provider with %s; want hd=example.com for google alone, never resource", name, toProvider)
		}
		// RT-3, SEC-67: each asks for a refresh token as its provider needs:
		// Google with access_type=offline and prompt=consent, Entra ID and
		// Auth0 with offline_access; Keycloak never (an offline session).
		google := q.Get("access_type") == "offline" && q.Get("prompt") == "consent"
		offline := slices.Contains(strings.Fields(q.Get("scope")), "offline_access")
		if google != (tc.connector == "gw") || offline != (tc.connector == "ms" || tc.connector == "a0") {
			t.Fatalf("%s: sent to the provider with %s; want access_type=offline and prompt=consent for google alone, offline_access for entra and auth0 alone", name, toProvider)
		}
		back := op.Login(t, br.Client, toProvider.String(), tc.sub)
		if tc.refused != "" {
			// The ID token came from the provider and fails a check of
			// the preset: a page that the sign-in could not be verified.
			failedSignIn(t, ctx, br, back.String(), authz, http.StatusForbidden, "The sign-in could not be verified",
				"could not be verified, so you are not signed in. Trying again will likely fail the same way: tell your administrator, who will find the reason in mcpgate's log.",
				"access_denied")
			waitLog(t, p, tc.refused)
			continue
		}
		done, err := br.Walk(ctx, back.String(), redirect)
		if err != nil {
			t.Fatalf("%s: callback at mcpgate: %v\n%s", name, err, p.Stderr())
		}
		u, _ := whoami(t, ctx, staticTransport(p.base+"/mcp", authz.exchange(t, authz.check(t, done.String()))))["user"].(map[string]any)
		var groups []string
		for _, g := range asSlice(u["groups"]) {
			groups = append(groups, g.(string))
		}
		if u["sub"] != tc.connector+":"+tc.sub || u["preferred_username"] != tc.username || !slices.Equal(groups, tc.groups) {
			t.Fatalf("%s: whoami user %v; want %s:%s, username %s, groups %v", name, u, tc.connector, tc.sub, tc.username, tc.groups)
		}
	}
}

// waitLog waits for text in the binary's log, which it writes as it goes.
func waitLog(t *testing.T, p *process, text string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(p.Stderr(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q:\n%s", text, p.Stderr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The okta and gitlab presets against providers that behave as theirs do,
// each difference against the generic connector seen by whoami:
//   - okta: an authorization server that answers a groups scope it does
//     not list in discovery; the okta preset asks for groups anyway and
//     gets them, the generic connector at the same provider does not ask
//     and gets none;
//   - gitlab: groups only at userinfo (every group, inherited ones too),
//     the ID token carrying groups_direct alone; the gitlab preset's
//     groups are userinfo's groups, not groups_direct.
func TestBinaryOIDCPresetsOktaGitLab(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	port := freePort(t)
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	okta := oidctest.Start(t, oidctest.Options{
		UnadvertisedScopes: []string{"groups"},
		Clients:            []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{base + "/callback/ok", base + "/callback/plain"}}},
		Users:              []oidctest.User{{Sub: "00u1", Email: "kim@corp.example", EmailVerified: true, Username: "kim@corp.example", Groups: []string{"Everyone", "okta-admins"}}},
	})
	gitlab := oidctest.Start(t, oidctest.Options{
		IDTokenOmits: []string{"groups"},
		Clients:      []oidctest.Client{{ID: "mcpgate", Secret: "op-s3cret", RedirectURIs: []string{base + "/callback/gl"}}},
		Users: []oidctest.User{{Sub: "4242", Email: "gil@corp.example", EmailVerified: true, Username: "gil", Groups: []string{"corp", "corp/devs"},
			Extra: map[string]any{"groups_direct": []string{"corp/devs"}}}},
	})
	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := fmt.Sprintf(`oidc_providers:
  - {name: ok, preset: okta, issuer: %[1]s, client_id: mcpgate, client_secret: op-s3cret}
  - {name: plain, issuer: %[1]s, client_id: mcpgate, client_secret: op-s3cret}
  - {name: gl, preset: gitlab, issuer: %[2]s, client_id: mcpgate, client_secret: op-s3cret}
`, okta.Issuer(), gitlab.Issuer())
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, port, "--config", file, "--data-dir", filepath.Join(dir, "data"))
	defer p.stop(t)

	for _, tc := range []struct {
		connector string
		op        *oidctest.Provider
		sub       string
		scope     string // sent to the provider
		groups    []string
	}{
		// offline_access, for the refresh token of the recheck (RT-3): the
		// preset always asks, the generic connector as discovery lists it.
		{"ok", okta, "00u1", "openid profile email groups offline_access", []string{"Everyone", "okta-admins"}},
		{"plain", okta, "00u1", "openid profile email offline_access", nil},
		{"gl", gitlab, "4242", "openid profile email groups", []string{"corp", "corp/devs"}},
	} {
		redirect := "http://127.0.0.1:1/oidc-presets/cb"
		authz := newChromiumAuthz(p.base, chromiumRegister(t, p.base, "oidc-presets", redirect), redirect)
		br := browser.New("", "")
		br.Fields = map[string]string{"connector": tc.connector}
		toProvider, err := br.Walk(ctx, authz.url(), tc.op.Issuer()+"/")
		if err != nil {
			t.Fatalf("%s: authorize at mcpgate: %v\n%s", tc.connector, err, p.Stderr())
		}
		if got := toProvider.Query().Get("scope"); got != tc.scope {
			t.Fatalf("%s: scope %q sent to the provider, want %q", tc.connector, got, tc.scope)
		}
		done, err := br.Walk(ctx, tc.op.Login(t, br.Client, toProvider.String(), tc.sub).String(), redirect)
		if err != nil {
			t.Fatalf("%s: callback at mcpgate: %v\n%s", tc.connector, err, p.Stderr())
		}
		u, _ := whoami(t, ctx, staticTransport(p.base+"/mcp", authz.exchange(t, authz.check(t, done.String()))))["user"].(map[string]any)
		var groups []string
		for _, g := range asSlice(u["groups"]) {
			groups = append(groups, g.(string))
		}
		if u["sub"] != tc.connector+":"+tc.sub || !slices.Equal(groups, tc.groups) {
			t.Fatalf("%s: whoami user %v; want %s:%s with groups %v", tc.connector, u, tc.connector, tc.sub, tc.groups)
		}
	}
}
