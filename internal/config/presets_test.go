package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Each preset fills what its provider needs and the generic defaults do
// not give; every field set explicitly wins over the preset's.
func TestOIDCPresetDefaults(t *testing.T) {
	for _, tc := range []struct {
		in   OIDCProvider
		want OIDCProvider
	}{
		{OIDCProvider{Preset: "google"},
			OIDCProvider{Preset: "google", Issuer: "https://accounts.google.com", Claims: OIDCClaims{Username: "email"}}},
		{OIDCProvider{Preset: "google", Issuer: "http://127.0.0.1:9000", Claims: OIDCClaims{Username: "name"}},
			OIDCProvider{Preset: "google", Issuer: "http://127.0.0.1:9000", Claims: OIDCClaims{Username: "name"}}},
		{OIDCProvider{Preset: "entra", Tenant: "contoso.onmicrosoft.com"},
			OIDCProvider{Preset: "entra", Tenant: "contoso.onmicrosoft.com", Issuer: "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"}},
		{OIDCProvider{Preset: "entra", Tenant: "common", Issuer: "https://login.microsoftonline.us/common/v2.0"},
			OIDCProvider{Preset: "entra", Tenant: "common", Issuer: "https://login.microsoftonline.us/common/v2.0"}},
		{OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com"},
			OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com", Scopes: []string{"openid", "profile", "email", "groups"}}},
		{OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com", Scopes: []string{"openid"}},
			OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com", Scopes: []string{"openid"}}},
		{OIDCProvider{Preset: "keycloak", Issuer: "https://kc.example/realms/corp"},
			OIDCProvider{Preset: "keycloak", Issuer: "https://kc.example/realms/corp", Claims: OIDCClaims{Groups: "realm_access.roles"}}},
		{OIDCProvider{Preset: "keycloak", Issuer: "https://kc.example/realms/corp", Claims: OIDCClaims{Groups: "groups"}},
			OIDCProvider{Preset: "keycloak", Issuer: "https://kc.example/realms/corp", Claims: OIDCClaims{Groups: "groups"}}},
		{OIDCProvider{Preset: "gitlab"},
			OIDCProvider{Preset: "gitlab", Issuer: "https://gitlab.com"}},
		{OIDCProvider{Preset: "gitlab", Issuer: "https://gitlab.corp.example"},
			OIDCProvider{Preset: "gitlab", Issuer: "https://gitlab.corp.example"}},
		{OIDCProvider{Preset: "auth0", Issuer: "https://corp.eu.auth0.com", Claims: OIDCClaims{Groups: "https://corp.example/groups"}},
			OIDCProvider{Preset: "auth0", Issuer: "https://corp.eu.auth0.com", Claims: OIDCClaims{Username: "nickname", Groups: "https://corp.example/groups"}}},
		{OIDCProvider{Issuer: "https://a.example"}, OIDCProvider{Issuer: "https://a.example"}},
	} {
		got := tc.in.WithPreset()
		if got.Issuer != tc.want.Issuer || !slices.Equal(got.Scopes, tc.want.Scopes) || got.Claims != tc.want.Claims || got.Tenant != tc.want.Tenant {
			t.Errorf("%+v with its preset: %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// A preset's own problems are named by the field, and its settings are
// refused on another preset's provider rather than silently ignored.
func TestOIDCPresetProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		p    OIDCProvider
		want string
	}{
		"google elsewhere":       {OIDCProvider{Name: "g", Preset: "google", Issuer: "https://idp.example", ClientID: "x"}, `oidc_providers[0].issuer: the google preset's issuer is https://accounts.google.com`},
		"google hd bad":          {OIDCProvider{Name: "g", Preset: "google", ClientID: "x", HostedDomain: []string{"*"}}, `oidc_providers[0].hosted_domain: "*" is not a domain`},
		"google hd empty":        {OIDCProvider{Name: "g", Preset: "google", ClientID: "x", HostedDomain: []string{""}}, `oidc_providers[0].hosted_domain: "" is not a domain`},
		"hd without google":      {OIDCProvider{Name: "c", Issuer: "https://a.example", ClientID: "x", HostedDomain: []string{"example.com"}}, `oidc_providers[0].hosted_domain: only with preset google`},
		"entra nothing":          {OIDCProvider{Name: "e", Preset: "entra", ClientID: "x"}, `oidc_providers[0].tenant: the entra preset needs the tenant`},
		"entra bad tenant":       {OIDCProvider{Name: "e", Preset: "entra", Tenant: "a/b", ClientID: "x"}, `oidc_providers[0].tenant: "a/b" is not a tenant`},
		"tenant without entra":   {OIDCProvider{Name: "c", Issuer: "https://a.example", ClientID: "x", Tenant: "common"}, `oidc_providers[0].tenant: only with preset entra`},
		"allowed without entra":  {OIDCProvider{Name: "c", Issuer: "https://a.example", ClientID: "x", AllowedTenants: []string{"t"}}, `oidc_providers[0].allowed_tenants: only with preset entra`},
		"allowed bad":            {OIDCProvider{Name: "e", Preset: "entra", Tenant: "common", ClientID: "x", AllowedTenants: []string{""}}, `oidc_providers[0].allowed_tenants: "" is not a tenant`},
		"okta no issuer":         {OIDCProvider{Name: "o", Preset: "okta", ClientID: "x"}, `oidc_providers[0].issuer: is required (the okta preset has no default`},
		"keycloak no issuer":     {OIDCProvider{Name: "k", Preset: "keycloak", ClientID: "x"}, `oidc_providers[0].issuer: is required (the keycloak preset`},
		"auth0 no issuer":        {OIDCProvider{Name: "a", Preset: "auth0", ClientID: "x"}, `oidc_providers[0].issuer: is required (the auth0 preset`},
		"preset bad issuer":      {OIDCProvider{Name: "gl", Preset: "gitlab", Issuer: "http://gitlab.example", ClientID: "x"}, `oidc_providers[0].issuer: "http://gitlab.example" must be https`},
		"google name of flags":   {OIDCProvider{Name: "google", Preset: "google", ClientID: "x"}, `oidc_providers[0].name: "google" is the provider of google_client_id`},
		"unknown preset still":   {OIDCProvider{Name: "p", Preset: "ping", Issuer: "https://a.example", ClientID: "x"}, `oidc_providers[0].preset: "ping" must be one of google, entra, okta, keycloak, gitlab, auth0`},
		"hd a URL not a domain":  {OIDCProvider{Name: "g", Preset: "google", ClientID: "x", HostedDomain: []string{"https://example.com"}}, `is not a domain`},
		"entra tenant with hd":   {OIDCProvider{Name: "e", Preset: "entra", Tenant: "common", ClientID: "x", HostedDomain: []string{"example.com"}}, `hosted_domain: only with preset google`},
		"google explicit issuer": {OIDCProvider{Name: "g", Preset: "google", Issuer: "https://accounts.google.com/", ClientID: "x"}, `the google preset's issuer is`},
	} {
		cfg := Defaults()
		cfg.OIDCProviders = []OIDCProvider{tc.p}
		if strings.Contains(name, "flags") {
			cfg.GoogleClientID, cfg.GoogleClientSecret = "g-id", "g-secret"
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	cfg := Defaults()
	cfg.OIDCProviders = []OIDCProvider{
		{Name: "g", Preset: "google", ClientID: "x", ClientSecret: "s", HostedDomain: []string{"example.com", "Example.org"}},
		{Name: "g-test", Preset: "google", Issuer: "http://127.0.0.1:9000", ClientID: "x"},
		{Name: "e", Preset: "entra", Tenant: "organizations", ClientID: "x", AllowedTenants: []string{"72f988bf-86f1-41af-91ab-2d7cd011db47"}},
		{Name: "e2", Preset: "entra", Issuer: "https://login.microsoftonline.us/contoso.onmicrosoft.us/v2.0", ClientID: "x"},
		{Name: "o", Preset: "okta", Issuer: "https://corp.okta.com/oauth2/default", ClientID: "x"},
		{Name: "k", Preset: "keycloak", Issuer: "https://kc.example/realms/corp", ClientID: "x"},
		{Name: "gl", Preset: "gitlab", ClientID: "x"},
		{Name: "a", Preset: "auth0", Issuer: "https://corp.eu.auth0.com/", ClientID: "x"},
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("every preset: %v, want accepted", err)
	}
}

// hosted_domain is one domain or a list.
func TestHostedDomainScalarOrList(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgate.yaml")
	yaml := `oidc_providers:
  - {name: a, preset: google, client_id: x, client_secret: s, hosted_domain: example.com}
  - {name: b, preset: google, client_id: y, client_secret: s, hosted_domain: [example.com, example.org]}
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
	if a, b := cfg.OIDCProviders[0].HostedDomain, cfg.OIDCProviders[1].HostedDomain; !slices.Equal(a, []string{"example.com"}) ||
		!slices.Equal(b, []string{"example.com", "example.org"}) {
		t.Fatalf("hosted_domain read as %q and %q", a, b)
	}
}

// --google-client-id and --google-client-secret are a provider named
// google with the google preset, ahead of the file's providers.
func TestGoogleFlags(t *testing.T) {
	cfg, err := Load([]string{"--google-client-id", "123.apps.googleusercontent.com", "--google-client-secret", "g-s3cret",
		"--google-hosted-domain", "example.com"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ps := cfg.ResolvedOIDCProviders()
	if len(ps) != 1 {
		t.Fatalf("providers %+v, want google alone", ps)
	}
	g := ps[0]
	if g.Name != "google" || g.DisplayName != "Google" || g.Preset != "google" || g.Issuer != "https://accounts.google.com" || g.ClientID != "123.apps.googleusercontent.com" ||
		g.ClientSecret != "g-s3cret" || !slices.Equal(g.HostedDomain, []string{"example.com"}) || g.Claims.Username != "email" {
		t.Fatalf("google from the flags: %+v", g)
	}
	for args, want := range map[string]string{
		"--google-client-id x":               "google: google_client_id needs google_client_secret",
		"--google-client-secret s":           "google: google_client_secret needs google_client_id",
		"--google-hosted-domain example.com": "google: google_hosted_domain needs google_client_id",
		"--google-client-id x --google-client-secret s --google-hosted-domain *": `google_hosted_domain: "*" is not a domain`,
	} {
		c, err := Load(strings.Fields(args), env(nil))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// SEC-67: the google preset asks Google for a refresh token, which it
// issues with access_type=offline only, so that its grants are rechecked
// at Google (RT-3); what the operator sets wins. (Entra ID's
// offline_access is the connector's: oidc.Config.OfflineAccess.)
func TestSEC67_GooglePresetAsksForARefreshToken(t *testing.T) {
	if g := (OIDCProvider{Preset: "google"}).WithPreset(); g.AuthParams["access_type"] != "offline" {
		t.Errorf("google auth params %v; want access_type=offline", g.AuthParams)
	}
	in := OIDCProvider{Preset: "google", AuthParams: map[string]string{"access_type": "online", "prompt": "consent"}}
	if g := in.WithPreset(); g.AuthParams["access_type"] != "online" || g.AuthParams["prompt"] != "consent" {
		t.Errorf("google with its own auth params: %v; want them kept", g.AuthParams)
	}
	if in.AuthParams["access_type"] != "online" || len(in.AuthParams) != 2 {
		t.Errorf("WithPreset changed the provider's own map: %v", in.AuthParams)
	}
	if g := (OIDCProvider{Preset: "google", AuthParams: map[string]string{"prompt": "consent"}}).WithPreset(); g.AuthParams["access_type"] != "offline" || g.AuthParams["prompt"] != "consent" {
		t.Errorf("google with prompt=consent: %v; want access_type=offline added", g.AuthParams)
	}
}
