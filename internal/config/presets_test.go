package config

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgate/mcpgate/upstream/oidc"
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
		{OIDCProvider{Preset: "entra", Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47"},
			OIDCProvider{Preset: "entra", Tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47", Issuer: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0"}},
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
		"entra domain tenant":    {OIDCProvider{Name: "e", Preset: "entra", Tenant: "contoso.onmicrosoft.com", ClientID: "x"}, `oidc_providers[0].tenant: "contoso.onmicrosoft.com" is not a tenant: give the Directory (tenant) ID`},
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

// RT-3, SEC-67: with upstream_recheck on, each provider asks for the refresh token
// the recheck redeems the way it needs: okta, entra and auth0 add
// offline_access to their scopes; google sends access_type=offline and
// prompt=consent (it gives a refresh token only at a consent), keeping an
// operator's other prompt; a provider without a preset adds offline_access
// when its discovery lists it; keycloak (whose offline_access makes an
// offline session) and gitlab (which issues them unasked) ask for nothing.
// Scopes the operator set are theirs, and with the recheck off nothing
// more is asked.
func TestOIDCPresetsAskForARefreshToken(t *testing.T) {
	google := map[string]string{"access_type": "offline", "prompt": "consent"}
	for _, tc := range []struct {
		name    string
		off     bool // upstream_recheck off
		in      OIDCProvider
		offline oidc.OfflineAccess
		params  map[string]string
	}{
		{"okta", false, OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com"}, oidc.OfflineAccessAlways, nil},
		{"entra", false, OIDCProvider{Preset: "entra", Tenant: "common"}, oidc.OfflineAccessAlways, nil},
		{"auth0", false, OIDCProvider{Preset: "auth0", Issuer: "https://corp.eu.auth0.com"}, oidc.OfflineAccessAlways, nil},
		{"no preset", false, OIDCProvider{Issuer: "https://idp.example"}, oidc.OfflineAccessIfListed, nil},
		{"keycloak", false, OIDCProvider{Preset: "keycloak", Issuer: "https://kc.example/realms/corp"}, oidc.OfflineAccessNever, nil},
		{"gitlab", false, OIDCProvider{Preset: "gitlab"}, oidc.OfflineAccessNever, nil},
		{"google", false, OIDCProvider{Preset: "google"}, oidc.OfflineAccessNever, google},
		{"google, hint kept", false, OIDCProvider{Preset: "google", AuthParams: map[string]string{"login_hint": "a@example.com"}},
			oidc.OfflineAccessNever, map[string]string{"access_type": "offline", "prompt": "consent", "login_hint": "a@example.com"}},
		{"google, own prompt", false, OIDCProvider{Preset: "google", AuthParams: map[string]string{"prompt": "select_account"}},
			oidc.OfflineAccessNever, map[string]string{"access_type": "offline", "prompt": "select_account consent"}},
		{"google, own consent", false, OIDCProvider{Preset: "google", AuthParams: map[string]string{"prompt": "consent select_account"}},
			oidc.OfflineAccessNever, map[string]string{"access_type": "offline", "prompt": "consent select_account"}},
		{"google, own access_type", false, OIDCProvider{Preset: "google", AuthParams: map[string]string{"access_type": "online"}},
			oidc.OfflineAccessNever, map[string]string{"access_type": "online", "prompt": "consent"}},
		{"okta, own scopes", false, OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com", Scopes: []string{"openid", "groups"}}, oidc.OfflineAccessNever, nil},
		{"entra, own scopes", false, OIDCProvider{Preset: "entra", Tenant: "common", Scopes: []string{"openid", "email"}}, oidc.OfflineAccessNever, nil},
		{"no preset, own scopes", false, OIDCProvider{Issuer: "https://idp.example", Scopes: []string{"openid"}}, oidc.OfflineAccessNever, nil},
		{"okta, recheck off", true, OIDCProvider{Preset: "okta", Issuer: "https://corp.okta.com"}, oidc.OfflineAccessNever, nil},
		{"no preset, recheck off", true, OIDCProvider{Issuer: "https://idp.example"}, oidc.OfflineAccessNever, nil},
		{"google, recheck off", true, OIDCProvider{Preset: "google"}, oidc.OfflineAccessNever, nil},
	} {
		cfg := Defaults()
		if tc.off {
			cfg.UpstreamRecheck = off
		}
		in := tc.in
		in.AuthParams = maps.Clone(tc.in.AuthParams)
		cfg.OIDCProviders = []OIDCProvider{in}
		got := cfg.ResolvedOIDCProviders()[0]
		want := tc.params
		if want == nil {
			want = tc.in.AuthParams
		}
		if got.OfflineAccess != tc.offline || !maps.Equal(got.AuthParams, want) {
			t.Errorf("%s: offline_access %v, auth params %v; want %v, %v", tc.name, got.OfflineAccess, got.AuthParams, tc.offline, want)
		}
		if !maps.Equal(in.AuthParams, tc.in.AuthParams) {
			t.Errorf("%s: the file's auth params changed to %v", tc.name, in.AuthParams)
		}
		if tc.in.Scopes != nil && !slices.Equal(got.Scopes, tc.in.Scopes) {
			t.Errorf("%s: scopes %v, want the operator's %v", tc.name, got.Scopes, tc.in.Scopes)
		}
	}
	// The oidc_* settings' provider, without a preset and with okta's.
	cfg := Defaults()
	cfg.OIDCIssuer = "https://idp.example"
	if got, _ := cfg.OIDCFlagsProvider(); got.OfflineAccess != oidc.OfflineAccessIfListed {
		t.Errorf("oidc_* provider: offline_access %v, want if listed", got.OfflineAccess)
	}
	cfg.OIDCPreset = "okta"
	if got, _ := cfg.OIDCFlagsProvider(); got.OfflineAccess != oidc.OfflineAccessAlways {
		t.Errorf("oidc_* provider, okta preset: offline_access %v, want always", got.OfflineAccess)
	}
	cfg.UpstreamRecheck = off
	if got, _ := cfg.OIDCFlagsProvider(); got.OfflineAccess != oidc.OfflineAccessNever {
		t.Errorf("oidc_* provider, recheck off: offline_access %v, want never", got.OfflineAccess)
	}
	// The google_* settings' provider is the google preset's.
	cfg = Defaults()
	cfg.GoogleClientID, cfg.GoogleClientSecret = "g", "s"
	if got := cfg.ResolvedOIDCProviders()[0]; !maps.Equal(got.AuthParams, google) {
		t.Errorf("google_* provider: auth params %v, want %v", got.AuthParams, google)
	}
}
