package config

import (
	"slices"
	"strings"
	"testing"
)

// --oidc-preset gives the flags' provider oidc its preset's claims and
// scopes, from the flag, the variable or the file, as oidc_providers'
// preset does; explicit settings keep winning.
func TestOIDCFlagsPreset(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		vars   map[string]string
		issuer string
		groups string
		scopes []string
	}{
		{[]string{"--oidc-preset", "keycloak", "--oidc-issuer", "https://kc.example/realms/corp", "--oidc-client-id", "mcpgate"}, nil,
			"https://kc.example/realms/corp", "realm_access.roles", nil},
		{nil, map[string]string{"MCPGATE_OIDC_PRESET": "okta", "MCPGATE_OIDC_ISSUER": "https://corp.okta.com", "MCPGATE_OIDC_CLIENT_ID": "x"},
			"https://corp.okta.com", "", []string{"openid", "profile", "email", "groups"}},
		// gitlab.com needs no issuer.
		{[]string{"--oidc-preset", "gitlab", "--oidc-client-id", "x"}, nil, "https://gitlab.com", "", nil},
		// The display name is the flags' own, over the preset's.
		{[]string{"--oidc-preset", "gitlab", "--oidc-client-id", "x", "--oidc-display-name", "Corp GitLab"}, nil, "https://gitlab.com", "", nil},
		// A single-tenant Entra ID app: the tenant is in the issuer.
		{[]string{"--oidc-preset", "entra", "--oidc-issuer", "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0", "--oidc-client-id", "x"}, nil,
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0", "", nil},
	} {
		cfg, err := Load(tc.args, env(tc.vars))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Errorf("%q %v: %v", tc.args, tc.vars, err)
			continue
		}
		op, on := cfg.OIDCFlagsProvider()
		wantName := "GitLab"
		if i := slices.Index(tc.args, "--oidc-display-name"); i >= 0 {
			wantName = tc.args[i+1]
		}
		if tc.args != nil && tc.args[1] == "gitlab" && op.DisplayName != wantName {
			t.Errorf("%q: display name %q, want %q", tc.args, op.DisplayName, wantName)
		}
		if !on || op.Name != "oidc" || op.Issuer != tc.issuer || op.Claims.Groups != tc.groups || !slices.Equal(op.Scopes, tc.scopes) {
			t.Errorf("%q %v: provider %+v (on %v); want oidc at %s, groups claim %q, scopes %q", tc.args, tc.vars, op, on, tc.issuer, tc.groups, tc.scopes)
		}
	}
	// Without a preset, the provider is the settings as they are.
	cfg := Defaults()
	cfg.OIDCIssuer, cfg.OIDCClientID = "https://idp.example", "x"
	if op, on := cfg.OIDCFlagsProvider(); !on || op.Name != "oidc" || op.Issuer != "https://idp.example" || op.ClientID != "x" || op.DisplayName != "" || op.Claims != (OIDCClaims{}) || op.Scopes != nil {
		t.Errorf("without a preset: %+v, want the settings alone", op)
	}
}

// A preset the flags cannot complete is refused with what to use instead;
// an unknown one lists the choices.
func TestOIDCFlagsPresetProblems(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"google":          {[]string{"--oidc-preset", "google", "--oidc-client-id", "x"}, "oidc_preset: google has its own settings, google_client_id"},
		"entra no tenant": {[]string{"--oidc-preset", "entra", "--oidc-client-id", "x"}, "oidc_preset: the entra preset needs the tenant: set oidc_issuer to https://login.microsoftonline.com/TENANT/v2.0, or configure the provider in the file's oidc_providers"},
		"unknown":         {[]string{"--oidc-preset", "ping", "--oidc-issuer", "https://idp.example", "--oidc-client-id", "x"}, `oidc_preset: "ping" must be one of entra, okta, keycloak, gitlab, auth0`},
		"no issuer":       {[]string{"--oidc-preset", "keycloak", "--oidc-client-id", "x"}, "oidc_issuer: is required (the keycloak preset has no default"},
		"no client id":    {[]string{"--oidc-preset", "gitlab"}, "oidc: oidc_preset needs oidc_client_id"},
		"http issuer":     {[]string{"--oidc-preset", "okta", "--oidc-issuer", "http://corp.okta.example", "--oidc-client-id", "x"}, "oidc_issuer: \"http://corp.okta.example\" must be https"},
	} {
		msg := problemsOf(t, tc.args, nil)
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %s\nwant %q", name, msg, tc.want)
		}
	}
	// The name oidc is the preset's provider's, as the issuer's.
	cfg := Defaults()
	cfg.OIDCPreset, cfg.OIDCClientID = "gitlab", "x"
	cfg.OIDCProviders = []OIDCProvider{{Name: "oidc", Issuer: "https://a.example", ClientID: "y"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `oidc_providers[0].name: "oidc" is the provider of oidc_issuer`) {
		t.Errorf("oidc_providers' oidc beside --oidc-preset gitlab: %v", err)
	}
}
