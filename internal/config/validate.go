package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mcpgate/mcpgate/internal/oauth"
	"github.com/mcpgate/mcpgate/internal/safetext"
	"github.com/mcpgate/mcpgate/internal/sandbox"
	"github.com/mcpgate/mcpgate/upstream"
	"github.com/mcpgate/mcpgate/upstream/local"
)

// problems collects what is wrong with a configuration, each message
// naming the setting as the file spells it.
type problems []error

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Errorf(format, args...)) }

// Validate returns every problem of c at once, or nil.
func (c *Config) Validate() error {
	var p problems
	c.validateAddresses(&p)
	c.validateStore(&p)
	c.validateConnectors(&p)
	c.validateResources(&p)
	c.validateTokens(&p)
	c.validateLimits(&p)
	c.validateAdminGroups(&p)
	c.validateLog(&p)
	c.validateCIMD(&p)
	c.validateClients(&p)
	c.validateAccess(&p)
	c.validateRateLimits(&p)
	return errors.Join(p...)
}

// validateRateLimits checks each rate limit, naming it by its index in
// the file's list (SEC-100).
func (c *Config) validateRateLimits(p *problems) {
	for i, r := range c.RateLimits {
		rule, err := r.rule()
		if err != nil {
			p.add("rate_limits[%d]: %v", i, err)
		}
		if err := rule.Validate(); err != nil {
			p.add("rate_limits[%d]: %v", i, err)
		}
	}
}

// validateAccess checks the rules of who may enter, at the top level and
// of each resource.
func (c *Config) validateAccess(p *problems) {
	check := func(prefix string, a Access) {
		// Validate joins its problems; each is listed on its own.
		if joined, ok := a.rules().Validate().(interface{ Unwrap() []error }); ok {
			for _, e := range joined.Unwrap() {
				p.add("%saccess.%v", prefix, e)
			}
		}
	}
	check("", c.Access)
	for i, r := range c.Resources {
		check(fmt.Sprintf("resources[%d].", i), r.Access)
	}
}

// validPort reports whether port is a port number (0 for any free one);
// a service name such as "http" is not taken, nor is "8080x", which the
// listener would look up as one.
func validPort(port string) bool {
	_, err := strconv.ParseUint(port, 10, 16)
	return err == nil
}

func (c *Config) validateAddresses(p *problems) {
	if host, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port) {
		p.add("listen: %q is not HOST:PORT, the port a number up to 65535 (like 127.0.0.1:8080)", c.Listen)
	} else if c.PublicURL == "" && !isLoopback(host) {
		// An empty host (":8080") listens on every interface, as 0.0.0.0 does.
		p.add("listen: %q is not a loopback address; set public_url to the https URL clients will use", c.Listen)
	}
	for _, s := range c.TrustedProxies {
		if proxy, ok := parseProxy(s); !ok {
			p.add("trusted_proxies: %q is not an address or a network like 127.0.0.1/32", s)
		} else if tooWide(proxy) {
			p.add("trusted_proxies: %q is too wide: a client whose own address is in it is taken for a proxy, and is then named by the X-Forwarded-For it writes itself, "+
				"which gets it past the per-address limits (SEC-170); name the proxies' own addresses or network (IPv4 /8 or narrower, IPv6 /32 or narrower, or wider only within private, loopback, link-local or CGNAT space)", s)
		}
	}
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil || !validPort(port) {
			p.add("metrics_listen: %q is not HOST:PORT, the port a number up to 65535 (like 127.0.0.1:9464)", c.MetricsListen)
		} else if c.MetricsListen == c.Listen {
			p.add("metrics_listen: %q is the public listener's address; metrics are never served there (SEC-89)", c.MetricsListen)
		}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "":
			p.add("public_url: is not an absolute URL like https://mcp.example.com (not echoed: it may hold a password)")
		case u.User != nil:
			// Not echoed whole: the message goes to stderr and logs (SEC-79).
			p.add("public_url: %q must not carry a user or password", safetext.URL(u))
		case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
			p.add("public_url: %q must be https (http only for a loopback host) (COMM-1)", safetext.URL(u))
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "":
			p.add("public_url: %q must be an origin only, like https://mcp.example.com (no path or query)", safetext.URL(u))
		}
	}
}

func (c *Config) validateStore(p *problems) {
	if c.DataDir == "" {
		p.add("data_dir: must not be empty")
	}
	switch dsn := c.StoreDSN(); {
	case strings.TrimSpace(dsn) != dsn:
		// Not echoed either. A secret made with echo ends so.
		p.add("store: the address begins or ends with a space or a line break (a file or secret written with echo, not printf %%s?): remove it")
	case strings.HasPrefix(dsn, "sqlite:") && len(dsn) > len("sqlite:"):
	case dsn == "memory":
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		if u, err := url.Parse(dsn); err != nil || u.Hostname() == "" || u.Fragment != "" {
			// Not echoed: the DSN may hold a password.
			p.add("store: a PostgreSQL store is postgres://USER:PASSWORD@HOST[:PORT]/DATABASE[?OPTIONS]")
		}
	default:
		// Not echoed: a DSN of another form (a libpq keyword string, a
		// scheme in capitals, a typo) may hold a password as well.
		p.add("store: must be sqlite:PATH, postgres://USER:PASSWORD@HOST/DATABASE (the scheme in lower case) or memory; the value given is not shown, as it may hold a password")
	}
}

func (c *Config) validateConnectors(p *problems) {
	for i, u := range c.LocalUsers {
		where := fmt.Sprintf("local_users[%d]", i)
		if from := c.from["local_users"]; from != "" {
			where = fmt.Sprintf("%s (the %s given)", from, ordinal(i+1))
		}
		if problem := specProblem(u); problem != "" {
			p.add("%s: %s", where, problem)
		} else if name, _, groups, _ := local.ParseUserSpecGroups(u); len(groups) > int(c.MaxGroups) && c.MaxGroups > 0 {
			p.add("%s: %d groups, more than max_groups (%d): %s could never log in (SEC-70)", where, len(groups), c.MaxGroups, name)
		}
	}
	// A secret file counts as a secret even when it could not be read:
	// Load reports that.
	if (c.GitHubClientID == "") != (c.GitHubClientSecret == "" && c.GitHubClientSecretFile == "") {
		p.add("github: set both github_client_id and github_client_secret, or neither")
	}
	c.validateOIDC(p)
	c.validateGoogle(p)
	c.validateOIDCProviders(p)
}

// oidcFlagsName is the name of the provider of the oidc_* settings
// (upstream/oidc.DefaultName).
const oidcFlagsName = "oidc"

// validateOIDC checks the one provider of the oidc_* settings. A secret is
// optional: a public client upstream relies on PKCE alone.
func (c *Config) validateOIDC(p *problems) {
	op, on := c.OIDCFlagsProvider()
	if !on {
		if c.OIDCClientID != "" || c.OIDCClientSecret != "" || c.OIDCClientSecretFile != "" || c.OIDCDisplayName != "" {
			p.add("oidc: oidc_client_id, oidc_client_secret and oidc_display_name need oidc_issuer")
		}
		return
	}
	switch {
	case c.OIDCClientID == "" && c.OIDCIssuer != "":
		p.add("oidc: oidc_issuer needs oidc_client_id")
	case c.OIDCClientID == "":
		p.add("oidc: oidc_preset needs oidc_client_id")
	}
	if c.validateOIDCPreset(p) && op.Issuer == "" {
		p.add("oidc_issuer: is required (the %s preset has no default: give the provider's own issuer URL)", c.OIDCPreset)
	}
	if op.Issuer != "" {
		checkIssuer("oidc_issuer", op.Issuer, p)
	}
}

// validateOIDCPreset checks oidc_preset, and reports whether it may be
// used. The settings have no field for what google and entra need beyond
// an issuer: google's hosted domains are google_client_id's provider's
// (google_hosted_domain), and entra's tenant can only be part of
// oidc_issuer; its allowed_tenants, for a multi-tenant app, are the file's.
func (c *Config) validateOIDCPreset(p *problems) bool {
	switch c.OIDCPreset {
	case "":
		return true
	case "google":
		p.add("oidc_preset: google has its own settings, google_client_id, google_client_secret and google_hosted_domain (provider \"google\"); use them instead")
		return false
	case "entra":
		if c.OIDCIssuer == "" {
			p.add("oidc_preset: the entra preset needs the tenant: set oidc_issuer to https://login.microsoftonline.com/TENANT/v2.0, or configure the provider in the file's oidc_providers with tenant (and allowed_tenants for a multi-tenant app)")
			return false
		}
		return true
	}
	if !slices.Contains(presets, c.OIDCPreset) {
		p.add("oidc_preset: %q must be one of entra, okta, keycloak, gitlab, auth0", c.OIDCPreset)
		return false
	}
	return true
}

// checkIssuer checks an OpenID provider's issuer URL. The messages show
// it without a user, password or query, which may hold a secret (SEC-79).
func checkIssuer(key, issuer string, p *problems) {
	u, err := url.Parse(issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		p.add("%s: %q is not an absolute URL", key, safetext.RawURL(issuer))
	case u.User != nil:
		p.add("%s: %q must not carry a user or password", key, safetext.URL(u))
	case u.Scheme != "https" && !isLoopback(u.Hostname()):
		p.add("%s: %q must be https (http only for a loopback host) (COMM-1)", key, safetext.URL(u))
	case u.RawQuery != "" || u.Fragment != "":
		p.add("%s: %q must have no query or fragment", key, safetext.URL(u))
	}
}

// presets are the provider presets oidc_providers[N].preset may name.
var presets = []string{"google", "entra", "okta", "keycloak", "gitlab", "auth0"}

// validateOIDCProviders checks the file's oidc_providers list. Names are
// unique across every connector: two providers under one name would share
// user IDs, and one person would be another.
func (c *Config) validateOIDCProviders(p *problems) {
	seen := map[string]bool{}
	_, flags := c.OIDCFlagsProvider()
	if flags {
		seen[oidcFlagsName] = true
	}
	if c.GoogleClientID != "" {
		seen[googleName] = true
	}
	for i, op := range c.OIDCProviders {
		key := fmt.Sprintf("oidc_providers[%d].", i)
		switch {
		case op.Name == "":
			p.add("%sname: is required", key)
		case !upstream.ValidID(op.Name):
			p.add("%sname: %q must be lowercase letters, digits and -, at most 63, starting with a letter or digit (it is a path segment of the callback URL)", key, op.Name)
		case op.Name == "local":
			p.add("%sname: %q is taken by local accounts", key, op.Name)
		case op.Name == "github":
			p.add("%sname: %q is taken by GitHub", key, op.Name)
		case op.Name == oidcFlagsName && flags:
			p.add("%sname: %q is the provider of oidc_issuer; give this one another name", key, op.Name)
		case op.Name == googleName && c.GoogleClientID != "":
			p.add("%sname: %q is the provider of google_client_id; give this one another name", key, op.Name)
		case seen[op.Name]:
			p.add("%sname: %q is used twice", key, op.Name)
		}
		seen[op.Name] = true
		switch issuer := op.WithPreset().Issuer; {
		case issuer != "":
			checkIssuer(key+"issuer", issuer, p)
		case op.Preset == "":
			p.add("%sissuer: is required", key)
		case op.Preset == "entra": // validatePreset asks for the tenant
		case slices.Contains(presets, op.Preset):
			p.add("%sissuer: is required (the %s preset has no default: give the provider's own issuer URL)", key, op.Preset)
		}
		validatePreset(key, op, p)
		if op.ClientID == "" {
			p.add("%sclient_id: is required", key)
		}
		for _, s := range op.Scopes {
			if s == "" || strings.ContainsAny(s, " \t\n\"\\") {
				p.add("%sscopes: %q is not a scope", key, s)
			}
		}
		for k := range op.AuthParams {
			if k == "" {
				p.add("%sauth_params: a parameter name is empty", key)
			}
		}
		switch {
		case op.Preset == "":
		case slices.Contains(presets, op.Preset):
		default:
			p.add("%spreset: %q must be one of %s", key, op.Preset, strings.Join(presets, ", "))
		}
	}
}

// validateResources checks the top level's resource settings and each of
// the resources list.
func (c *Config) validateResources(p *problems) {
	if len(c.Resources) > 0 {
		// The top level's are not used: each is named with where it goes
		// (it is checked there), not refused as, say, a stdio setting
		// without stdio; the scopes too, which were silently ignored
		// (SEC-174).
		for _, key := range append(c.backendKeys(), c.scopeKeys()...) {
			p.add("%s: with a resources list, give each resource its own: set it on the resource (resources[N].%s), not at the top level", key, key)
		}
	} else {
		c.Backend.validate("", p)
		if len(c.Scopes) == 0 {
			p.add("scopes: at least one scope is required")
		}
		validateScopes("", c.Scopes, c.OptionalScopes, c.ScopeImplies, p)
	}
	paths, stdioDirs := map[string]bool{}, map[string]string{}
	for i, r := range c.Resources {
		key := fmt.Sprintf("resources[%d].", i)
		if !strings.HasPrefix(r.Path, "/") || strings.HasPrefix(r.Path, "/.well-known") {
			p.add("%spath: %q must start with / (like /github/mcp)", key, r.Path)
		} else if paths[r.Path] {
			p.add("%spath: %q is used twice", key, r.Path)
		}
		paths[r.Path] = true
		if r.Stdio != "" {
			switch dir, other := stdioDirName(r.Path), stdioDirs[stdioDirName(r.Path)]; {
			case dir == "":
				p.add("%spath: %q names no directory for its stdio servers (data_dir/stdio/NAME, NAME the path with _ for /): give it a name", key, r.Path)
			case other != "":
				p.add("%spath: %q and %q would keep their stdio servers' homes in one directory, data_dir/stdio/%s: rename one", key, r.Path, other, dir)
			default:
				stdioDirs[dir] = r.Path
			}
		}
		r.Backend.validate(key, p)
		validateScopes(key, r.Scopes, r.OptionalScopes, r.ScopeImplies, p)
	}
}

// validateScopes checks a resource's scopes; prefix names its place in
// the file.
func validateScopes(prefix string, required, optional []string, implies map[string][]string, p *problems) {
	for _, list := range []struct {
		key    string
		scopes []string
	}{{"scopes", required}, {"optional_scopes", optional}} {
		for _, s := range list.scopes {
			if !oauth.ResourceScope(s) {
				p.add("%s%s: %q is not a valid resource scope (printable ASCII without space, \" or \\, and not offline_access)", prefix, list.key, s)
			}
		}
	}
	for broad, narrow := range implies {
		for _, s := range append([]string{broad}, narrow...) {
			if !oauth.ResourceScope(s) {
				p.add("%sscope_implies: %q is not a valid resource scope (printable ASCII without space, \" or \\, and not offline_access)", prefix, s)
			}
		}
	}
}

func (c *Config) validateTokens(p *problems) {
	if c.AccessTokenTTL.Off() || time.Duration(c.AccessTokenTTL) > 24*time.Hour {
		p.add("access_token_ttl: %v must be between 1s and 24h (TOK-5)", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL.Off() || c.RefreshTokenTTL < c.AccessTokenTTL {
		p.add("refresh_token_ttl: %v must be at least access_token_ttl", c.RefreshTokenTTL)
	}
	if time.Duration(c.RefreshGrace) > 5*time.Minute {
		p.add("refresh_grace: %v must be off or at most 5m (RT-1)", c.RefreshGrace)
	}
	if !c.KeyRotation.Off() && c.KeyRotation != 0 && time.Duration(c.KeyRotation) < time.Hour {
		p.add("key_rotation: %v must be off or at least 1h", c.KeyRotation)
	}
	if time.Duration(c.UpstreamRecheck) > 24*time.Hour {
		p.add("upstream_recheck: %v must be off or at most 24h (RT-3)", c.UpstreamRecheck)
	}
	if !c.UnusedClientExpiry.Off() && c.UnusedClientExpiry != 0 && time.Duration(c.UnusedClientExpiry) < 24*time.Hour {
		// A client's use is recorded about hourly, and a person may take
		// a while between registering and consenting.
		p.add("unused_client_expiry: %v must be off or at least 24h (SEC-14)", c.UnusedClientExpiry)
	}
}

// maxGroups bounds max_groups: the groups of a user travel in every
// access token, and a thousand of them already make one far larger than
// the 8 KiB a header may be at many proxies.
const maxGroups = 1000

// maxPerUser bounds the per-user caps: a cap is a promise that one user
// cannot take the gateway's memory, which a higher one no longer keeps.
const maxPerUser = 10000

// validateLimits checks the bounds on clients: the timeouts cannot be
// turned off, since that is the hole they close (SEC-40), and the header
// timeout is part of the whole request's.
func (c *Config) validateLimits(p *problems) {
	if c.RequestHeaderTimeout.Off() {
		p.add("request_header_timeout: cannot be off (SEC-40)")
	}
	if c.RequestReadTimeout.Off() {
		p.add("request_read_timeout: cannot be off (SEC-40)")
	}
	if !c.RequestHeaderTimeout.Off() && !c.RequestReadTimeout.Off() && c.RequestHeaderTimeout > c.RequestReadTimeout {
		p.add("request_header_timeout: %v must be at most request_read_timeout (%v), which includes the headers", c.RequestHeaderTimeout, c.RequestReadTimeout)
	}
	if c.MaxSessionsPerUser < 1 || c.MaxSessionsPerUser > maxPerUser {
		p.add("max_sessions_per_user: %d must be between 1 and %d", c.MaxSessionsPerUser, maxPerUser)
	}
	if c.MaxStreamsPerUser < 1 || c.MaxStreamsPerUser > maxPerUser {
		p.add("max_streams_per_user: %d must be between 1 and %d", c.MaxStreamsPerUser, maxPerUser)
	}
	if c.MaxGroups < 1 || c.MaxGroups > maxGroups {
		p.add("max_groups: %d must be between 1 and %d (SEC-70)", c.MaxGroups, maxGroups)
	}
}

// validateAdminGroups refuses an admin group that no user can carry: an
// empty name, or one that a login's groups never hold (SEC-71).
func (c *Config) validateAdminGroups(p *problems) {
	for i, g := range c.AdminGroups {
		if strings.TrimSpace(g) == "" || len(g) > 256 || strings.ContainsFunc(g, unicode.IsControl) {
			p.add("admin_groups[%d]: a group name is not empty, at most 256 bytes, without control characters", i)
		}
	}
}

func (c *Config) validateLog(p *problems) {
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		p.add("log_level: %q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		p.add("log_format: %q must be text or json", c.LogFormat)
	}
}

func (c *Config) validateCIMD(p *problems) {
	if c.CIMDTestCAFile != "" {
		if _, err := readCAFile(c.CIMDTestCAFile); err != nil {
			p.add("cimd_test_ca_file: %v", err)
		}
	}
	// A host written as *.evil.example, evil.example:443 or with its
	// scheme matched no document's host: the block an operator relied on
	// blocked nothing (SEC-200).
	for _, h := range c.CIMDDenyHosts {
		if !hostName.MatchString(strings.TrimPrefix(h, ".")) && net.ParseIP(h) == nil {
			p.add("cimd_deny_hosts: %q is no host name: write evil.example for that host, or .evil.example for it and every host under it "+
				"(in ASCII, a Unicode name in its xn-- form), without a scheme, port, * or final dot", h)
		}
	}
	for _, h := range c.CIMDAllowHosts {
		if !hostName.MatchString(h) && net.ParseIP(h) == nil {
			p.add("cimd_allow_hosts: %q is no host name: write it as docs.example (in ASCII), without a scheme, port, * or final dot", h)
		}
	}
}

// hostName is a DNS name as URLs carry it: labels of ASCII letters,
// digits and hyphens (a Unicode name in its xn-- form), case ignored.
var hostName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// readCAFile reads a PEM file of CA certificates into a pool.
func readCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func (c *Config) validateClients(p *problems) {
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		if cl.ID == "" {
			p.add("clients[%d]: id is required", i)
		} else if seen[cl.ID] {
			p.add("clients[%d]: id %q is used twice", i, cl.ID)
		}
		seen[cl.ID] = true
		if len(cl.RedirectURIs) == 0 {
			p.add("clients[%d]: redirect_uris is required", i)
		}
	}
	for _, id := range c.IntrospectionClients {
		i := slices.IndexFunc(c.Clients, func(cl StaticClient) bool { return cl.ID == id })
		if i < 0 || (c.Clients[i].Secret == "" && c.Clients[i].SecretFile == "") {
			p.add("introspection_clients: %q must be the id of one of clients, with a secret or secret_file", id)
		}
	}
}

// validate reports the problems of b; prefix names its place in the file.
func (b *Backend) validate(prefix string, p *problems) {
	if b.Upstream != "" {
		u, err := url.Parse(b.Upstream)
		if err == nil && u.User != nil {
			// Not echoed whole: the message goes to stderr and logs (SEC-79).
			p.add("%supstream: %q must not carry a user or password; give the upstream's credentials another way", prefix, safetext.URL(u))
		} else if err != nil {
			p.add("%supstream: is not a URL; it must be the http(s) URL of an MCP server, like http://127.0.0.1:3000/mcp", prefix)
		} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			p.add("%supstream: %q must be the http(s) URL of an MCP server, like http://127.0.0.1:3000/mcp", prefix, safetext.URL(u))
		}
		if b.Stdio != "" {
			p.add("%supstream, %sstdio: a resource has one backend; set one of them", prefix, prefix)
		}
	}
	switch b.UpstreamTransport {
	case "", "streamable-http":
	case "sse":
		if b.Upstream == "" {
			p.add("%supstream_transport: sse needs upstream (the legacy server's SSE URL)", prefix)
		}
	default:
		p.add("%supstream_transport: %q must be streamable-http or sse", prefix, b.UpstreamTransport)
	}
	b.validateStdio(prefix, p)
	b.validateIdentity(prefix, p)
	if b.ToolPolicy != nil {
		if err := b.ToolPolicy.Validate(); err != nil {
			p.add("%stool_policy: %v", prefix, err)
		}
	}
}

func (b *Backend) validateStdio(prefix string, p *problems) {
	if b.Stdio != "" {
		if _, err := SplitCommand(b.Stdio); err != nil {
			p.add("%sstdio: %v", prefix, err)
		}
	} else {
		v := reflect.ValueOf(b).Elem()
		for i := range v.NumField() {
			key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if strings.HasPrefix(key, "stdio_") && !v.Field(i).IsZero() {
				p.add("%s%s: set only with stdio, the command of a stdio server", prefix, key)
			}
		}
	}
	if b.StdioUIDRange != "" && b.StdioUIDRange != "off" {
		if _, err := sandbox.ParseRange(b.StdioUIDRange); err != nil {
			p.add("%sstdio_uid_range: %v, or off", prefix, err)
		}
	}
	if b.StdioIsolation == "none" && (len(b.StdioReadPaths) > 0 || (b.StdioUIDRange != "" && b.StdioUIDRange != "off")) {
		p.add("%sstdio_isolation: none runs servers unconfined, as mcpgate's user, so stdio_read_paths and stdio_uid_range would be ignored: remove them, or use auto", prefix)
	}
	switch b.StdioIsolation {
	case "", "auto", "none":
	default:
		p.add("%sstdio_isolation: %q must be auto or none", prefix, b.StdioIsolation)
	}
	for _, path := range b.StdioReadPaths {
		if !filepath.IsAbs(path) {
			p.add("%sstdio_read_paths: %q must be an absolute path", prefix, path)
		}
	}
	for i, kv := range b.StdioEnv {
		// Named by its place and name alone: an entry without its = may
		// be all value, a token (SEC-219).
		switch k, _, ok := strings.Cut(kv, "="); {
		case !ok || k == "":
			p.add("%sstdio_env[%d]: must be KEY=VALUE (the entry is not shown: it may hold a secret)", prefix, i)
		case strings.HasPrefix(k, "MCPGATE_"):
			p.add("%sstdio_env: %q is an MCPGATE_ variable, which carry the user", prefix, k)
		}
	}
	if b.StdioMaxProcesses < 0 || b.StdioIdleTimeout.Off() {
		p.add("%sstdio_max_processes, %sstdio_idle_timeout: must not be negative or off", prefix, prefix)
	}
}

func (b *Backend) validateIdentity(prefix string, p *problems) {
	if b.Upstream == "" && (b.IdentityToken || b.IdentityHeaders != (IdentityHeaders{})) {
		p.add("%sidentity_token, %sidentity_headers: only for an upstream (stdio servers get the user in their environment)", prefix, prefix)
	}
	h := b.IdentityHeaders
	for _, n := range []string{h.User, h.PreferredUsername, h.Email, h.Groups, h.ClientID, h.Token} {
		if n != "" && n != "-" && !validHeaderName(n) {
			p.add("%sidentity_headers: %q is not a header name", prefix, n)
		}
	}
}

// validHeaderName reports whether n is an HTTP token (RFC 9110 §5.1) that
// is not a header the proxy needs for itself.
func validHeaderName(n string) bool {
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	switch strings.ToLower(n) {
	case "", "host", "authorization", "cookie", "content-type", "content-length", "accept", "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name", "connection", "transfer-encoding":
		return false
	}
	return true
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// redactUser hides the password part of a NAME:PASSWORD spec in messages,
// and the whole of a spec without a colon, which may be a password alone.
func redactUser(spec string) string {
	if name, _, ok := strings.Cut(spec, ":"); ok {
		return name + ":***"
	}
	return "***"
}

// ordinal writes n as "1st", "2nd", "3rd", "4th"….
func ordinal(n int) string {
	suffix := "th"
	if n%100 < 11 || n%100 > 13 {
		switch n % 10 {
		case 1:
			suffix = "st"
		case 2:
			suffix = "nd"
		case 3:
			suffix = "rd"
		}
	}
	return fmt.Sprintf("%d%s", n, suffix)
}
