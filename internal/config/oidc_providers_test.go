package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The file's oidc_providers list: every field is read, the secret comes
// from its file, and the secret file is private to the gateway (SEC-20).
func TestOIDCProvidersFromFile(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "corp-b.secret")
	if err := os.WriteFile(secret, []byte("b-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := `stdio: server
oidc_providers:
  - name: corp-a
    display_name: Corp A
    issuer: https://a.example/realms/corp
    client_id: mcpgate-a
    client_secret: a-s3cret
    scopes: [openid, email]
    claims: {subject: oid, username: upn, email: mail, groups: realm_access.roles}
    auth_params: {prompt: select_account}
  - name: corp-b
    issuer: https://b.example
    client_id: mcpgate-b
    client_secret_file: ` + secret + `
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.OIDCProviders) != 2 {
		t.Fatalf("oidc_providers: %+v, want two", cfg.OIDCProviders)
	}
	a, b := cfg.OIDCProviders[0], cfg.OIDCProviders[1]
	if a.Name != "corp-a" || a.DisplayName != "Corp A" || a.Issuer != "https://a.example/realms/corp" || a.ClientID != "mcpgate-a" ||
		a.ClientSecret != "a-s3cret" || strings.Join(a.Scopes, " ") != "openid email" ||
		a.Claims != (OIDCClaims{Subject: "oid", Username: "upn", Email: "mail", Groups: "realm_access.roles"}) ||
		a.AuthParams["prompt"] != "select_account" {
		t.Errorf("corp-a read as %+v", a)
	}
	if b.Name != "corp-b" || b.ClientSecret != "b-s3cret" {
		t.Errorf("corp-b read as %+v; want its secret from %s", b, secret)
	}
	g, err := cfg.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	if private := strings.Join(g.Resources[0].Stdio.Private, ","); !strings.Contains(private, secret) {
		t.Errorf("private paths %q, want %s among them (SEC-20)", private, secret)
	}
}

// Each problem of a provider is named by its place in the list.
func TestOIDCProvidersProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		providers []OIDCProvider
		flags     bool // the flags' provider oidc is configured too
		want      string
	}{
		"no name":        {[]OIDCProvider{{Issuer: "https://a.example", ClientID: "x"}}, false, "oidc_providers[0].name: is required"},
		"bad name":       {[]OIDCProvider{{Name: "Corp A", Issuer: "https://a.example", ClientID: "x"}}, false, `oidc_providers[0].name: "Corp A" must be lowercase letters, digits and -`},
		"slash in name":  {[]OIDCProvider{{Name: "a/b", Issuer: "https://a.example", ClientID: "x"}}, false, `oidc_providers[0].name: "a/b" must be`},
		"local":          {[]OIDCProvider{{Name: "local", Issuer: "https://a.example", ClientID: "x"}}, false, `oidc_providers[0].name: "local" is taken by local accounts`},
		"github":         {[]OIDCProvider{{Name: "github", Issuer: "https://a.example", ClientID: "x"}}, false, `oidc_providers[0].name: "github" is taken by GitHub`},
		"twice":          {[]OIDCProvider{{Name: "corp", Issuer: "https://a.example", ClientID: "x"}, {Name: "corp", Issuer: "https://b.example", ClientID: "y"}}, false, `oidc_providers[1].name: "corp" is used twice`},
		"oidc and flags": {[]OIDCProvider{{Name: "oidc", Issuer: "https://a.example", ClientID: "x"}}, true, `oidc_providers[0].name: "oidc" is the provider of oidc_issuer`},
		"no issuer":      {[]OIDCProvider{{Name: "corp", ClientID: "x"}}, false, "oidc_providers[0].issuer: is required"},
		"http issuer":    {[]OIDCProvider{{Name: "corp", Issuer: "http://a.example", ClientID: "x"}}, false, `oidc_providers[0].issuer: "http://a.example" must be https`},
		"no client id":   {[]OIDCProvider{{Name: "corp", Issuer: "https://a.example"}}, false, "oidc_providers[0].client_id: is required"},
		"bad scope":      {[]OIDCProvider{{Name: "corp", Issuer: "https://a.example", ClientID: "x", Scopes: []string{"openid email"}}}, false, `oidc_providers[0].scopes: "openid email" is not a scope`},
		"unknown preset": {[]OIDCProvider{{Name: "corp", Preset: "ping", Issuer: "https://a.example", ClientID: "x"}}, false, `oidc_providers[0].preset: "ping" must be one of google, entra, okta, keycloak, gitlab, auth0`},
		"empty param":    {[]OIDCProvider{{Name: "corp", Issuer: "https://a.example", ClientID: "x", AuthParams: map[string]string{"": "x"}}}, false, "oidc_providers[0].auth_params: a parameter name is empty"},
	} {
		cfg := Defaults()
		cfg.OIDCProviders = tc.providers
		if tc.flags {
			cfg.OIDCIssuer, cfg.OIDCClientID = "https://idp.example", "mcpgate"
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// The flags' provider and the list together, with other names; a
	// public client (no secret) is fine.
	cfg := Defaults()
	cfg.OIDCIssuer, cfg.OIDCClientID = "https://idp.example", "mcpgate"
	cfg.OIDCProviders = []OIDCProvider{{Name: "corp-1", Issuer: "http://127.0.0.1:9000", ClientID: "x"}, {Name: "oidc2", Issuer: "https://b.example/t", ClientID: "y", ClientSecret: "s"}}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the flags' oidc with corp-1 and oidc2: %v, want accepted", err)
	}
}

// A provider's secret file that cannot be read is reported by its place.
func TestOIDCProviderSecretFileMissing(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mcpgate.yaml")
	if err := os.WriteFile(file, []byte("oidc_providers:\n  - {name: corp, issuer: https://a.example, client_id: x, client_secret_file: /nonexistent/secret}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantLines(t, problemsOf(t, []string{"--config", file}, nil), "oidc_providers[0].client_secret_file:")
}
