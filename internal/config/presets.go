package config

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// googleIssuer is the only issuer of Google accounts.
const googleIssuer = "https://accounts.google.com"

// googleName is the name of the provider of the google_* settings.
const googleName = "google"

// presetDefaults are what each preset fills in when the provider's own
// field is empty. Only what differs from the generic defaults (scopes
// openid profile email, claims sub, preferred_username, email, groups) is
// here; the entra and auth0 issuers are made from the provider's fields.
var presetDefaults = map[string]OIDCProvider{
	// Google's ID tokens have no preferred_username and no groups; how it
	// is asked for a refresh token: askRefreshToken.
	"google": {DisplayName: "Google", Issuer: googleIssuer, Claims: OIDCClaims{Username: "email"}},
	// Entra ID issues a refresh token with offline_access only
	// (askRefreshToken).
	"entra": {DisplayName: "Microsoft"},
	// Okta's org authorization server answers the groups scope with a
	// groups claim; a custom one needs a groups claim of that name.
	"okta": {Scopes: []string{"openid", "profile", "email", "groups"}},
	// Realm roles are Keycloak's built-in memberships; a Group
	// Membership mapper's claim is chosen with claims.groups.
	"keycloak": {Claims: OIDCClaims{Groups: "realm_access.roles"}},
	// groups comes from userinfo (the ID token has groups_direct only).
	"gitlab": {DisplayName: "GitLab", Issuer: "https://gitlab.com"},
	// Auth0's ID tokens carry nickname, not preferred_username; groups
	// or roles are a namespaced custom claim the operator names.
	"auth0": {Claims: OIDCClaims{Username: "nickname"}},
}

// WithPreset returns the provider with its preset's defaults filled in
// where its own fields are empty.
func (op OIDCProvider) WithPreset() OIDCProvider {
	d, ok := presetDefaults[op.Preset]
	if !ok {
		return op
	}
	switch {
	case op.Issuer != "":
	case op.Preset == "entra" && op.Tenant != "":
		op.Issuer = "https://login.microsoftonline.com/" + op.Tenant + "/v2.0"
	default:
		op.Issuer = d.Issuer
	}
	// The issuer's host (the connector's default) is a poor name for
	// accounts.google.com; a self-hosted GitLab keeps its own.
	if op.DisplayName == "" && op.Issuer == d.Issuer || op.DisplayName == "" && op.Preset == "entra" {
		op.DisplayName = d.DisplayName
	}
	if len(op.Scopes) == 0 {
		op.Scopes = slices.Clone(d.Scopes)
	}
	for k, v := range d.AuthParams {
		if _, set := op.AuthParams[k]; !set {
			op.AuthParams = maps.Clone(op.AuthParams)
			if op.AuthParams == nil {
				op.AuthParams = map[string]string{}
			}
			op.AuthParams[k] = v
		}
	}
	op.Claims.Subject = withDefault(op.Claims.Subject, d.Claims.Subject)
	op.Claims.Username = withDefault(op.Claims.Username, d.Claims.Username)
	op.Claims.Email = withDefault(op.Claims.Email, d.Claims.Email)
	op.Claims.Groups = withDefault(op.Claims.Groups, d.Claims.Groups)
	return op
}

func withDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// OIDCFlagsProvider is the provider of the oidc_* settings, named oidc,
// resolved as the file's providers are (preset, refresh token), and whether they configure one: an issuer, or a
// preset, which may give the issuer (gitlab) or is told that it cannot.
func (c *Config) OIDCFlagsProvider() (OIDCProvider, bool) {
	if c.OIDCIssuer == "" && c.OIDCPreset == "" {
		return OIDCProvider{}, false
	}
	return c.resolve(OIDCProvider{Name: oidcFlagsName, DisplayName: c.OIDCDisplayName, Preset: c.OIDCPreset, Issuer: c.OIDCIssuer,
		ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret}), true
}

// ResolvedOIDCProviders is every provider but the oidc_* settings' one,
// presets applied, each asking its provider for a refresh token as
// askRefreshToken says: the google_* settings' google, then
// oidc_providers.
func (c *Config) ResolvedOIDCProviders() []OIDCProvider {
	var out []OIDCProvider
	if c.GoogleClientID != "" {
		out = append(out, c.resolve(OIDCProvider{Name: googleName, Preset: "google", ClientID: c.GoogleClientID,
			ClientSecret: c.GoogleClientSecret, HostedDomain: slices.Clone(c.GoogleHostedDomain)}))
	}
	for _, op := range c.OIDCProviders {
		out = append(out, c.resolve(op))
	}
	return out
}

func (c *Config) resolve(op OIDCProvider) OIDCProvider {
	own := len(op.Scopes) > 0
	op = op.WithPreset()
	if !c.UpstreamRecheck.Off() {
		op = op.askRefreshToken(own)
	}
	return op
}

// askRefreshToken makes a login at op's provider ask for the refresh
// token that the recheck redeems (RT-3), the way its provider needs;
// own says the operator set the scopes, which are then theirs to
// complete. Many providers issue one only when asked:
//   - okta, entra, auth0: with the offline_access scope (and, for Auth0
//     with an audience, that API's Allow Offline Access);
//   - google: with access_type=offline, and at a consent only, so with
//     prompt=consent at every login, added to the operator's prompt;
//   - a provider without a preset: with offline_access when its discovery
//     lists it (a provider that does not know the scope may refuse it).
//
// Keycloak and GitLab issue one unasked, and Keycloak's offline_access
// makes an offline session, which outlives the user's session there:
// never asked for. A provider that still gives none makes grants that end
// when their recheck is due (the gateway logs why).
func (op OIDCProvider) askRefreshToken(own bool) OIDCProvider {
	switch op.Preset {
	case "okta", "entra", "auth0":
		if !own {
			op.OfflineAccess = oidc.OfflineAccessAlways
		}
	case "":
		if !own {
			op.OfflineAccess = oidc.OfflineAccessIfListed
		}
	case "google":
		params := maps.Clone(op.AuthParams)
		if params == nil {
			params = map[string]string{}
		}
		if _, set := params["access_type"]; !set {
			params["access_type"] = "offline"
		}
		params["prompt"] = withConsent(params["prompt"])
		op.AuthParams = params
	}
	return op
}

// withConsent adds consent to a prompt parameter (a space-separated
// list), unless it is there or the prompt is none, which admits no other.
func withConsent(prompt string) string {
	values := strings.Fields(prompt)
	switch {
	case len(values) == 0:
		return "consent"
	case slices.Contains(values, "consent"), slices.Contains(values, "none"):
		return prompt
	}
	return prompt + " consent"
}

// domainName is a DNS name as Google's hd claim carries it.
var domainName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}$`)

// tenantID is a tid an Entra ID token may carry (allowed_tenants). It
// fills the {tenantid} placeholder of the issuer, so nothing else.
var tenantID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$`)

// entraTenant is the tenant of the entra preset's issuer: the directory's
// ID (a GUID), or common or organizations for a multi-tenant app. Not a
// domain: the discovery document at a domain's issuer names the GUID's
// issuer, which the connector then refuses as another issuer.
var entraTenant = regexp.MustCompile(`^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|common|organizations)$`)

// validateGoogle checks the google_* settings.
func (c *Config) validateGoogle(p *problems) {
	secret := c.GoogleClientSecret != "" || c.GoogleClientSecretFile != ""
	switch {
	case c.GoogleClientID == "" && secret:
		p.add("google: google_client_secret needs google_client_id")
	case c.GoogleClientID == "" && len(c.GoogleHostedDomain) > 0:
		p.add("google: google_hosted_domain needs google_client_id")
	case c.GoogleClientID != "" && !secret:
		// Google's web applications always authenticate at its token
		// endpoint.
		p.add("google: google_client_id needs google_client_secret (or google_client_secret_file)")
	}
	checkDomains("google_hosted_domain", c.GoogleHostedDomain, p)
}

func checkDomains(key string, domains []string, p *problems) {
	for _, d := range domains {
		if !domainName.MatchString(d) {
			p.add("%s: %q is not a domain (a Google Workspace domain such as example.com)", key, d)
		}
	}
}

// validatePreset checks a provider's preset settings; key is its
// "oidc_providers[N]." prefix. Its issuer is checked by the caller, with
// the preset's default.
func validatePreset(key string, op OIDCProvider, p *problems) {
	if op.Preset != "google" && len(op.HostedDomain) > 0 {
		p.add("%shosted_domain: only with preset google", key)
	}
	if op.Preset != "entra" {
		if op.Tenant != "" {
			p.add("%stenant: only with preset entra", key)
		}
		if len(op.AllowedTenants) > 0 {
			p.add("%sallowed_tenants: only with preset entra", key)
		}
	}
	switch op.Preset {
	case "google":
		checkDomains(key+"hosted_domain", op.HostedDomain, p)
		// The preset's checks are Google's; another issuer is a mistake,
		// but a loopback one is a test provider that behaves as Google.
		if u, err := url.Parse(op.Issuer); op.Issuer != "" && op.Issuer != googleIssuer && (err != nil || !isLoopback(u.Hostname())) {
			p.add("%sissuer: the google preset's issuer is %s; leave issuer out (only a loopback test provider may replace it)", key, googleIssuer)
		}
	case "entra":
		if op.Tenant == "" && op.Issuer == "" {
			p.add("%stenant: the entra preset needs the tenant (the Directory (tenant) ID, or common or organizations for a multi-tenant app), or the issuer", key)
		}
		if op.Tenant != "" && !entraTenant.MatchString(op.Tenant) {
			p.add("%stenant: %q is not a tenant: give the Directory (tenant) ID, a GUID (a domain's discovery names the ID's issuer, which mcpgate would refuse), or common or organizations", key, op.Tenant)
		}
		for _, t := range op.AllowedTenants {
			if !tenantID.MatchString(t) {
				p.add("%sallowed_tenants: %q is not a tenant ID", key, t)
			}
		}
	}
}
