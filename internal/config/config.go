package config

import (
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/upstream/oidc"
)

// Config is everything `mcpgate serve` can be told, and its fields are the
// table of its settings: each is declared once, here, and settings.go
// derives the rest from the tags (see the package documentation).
type Config struct {
	file string // the --config file, if any: private to the gateway (stdio servers never read it)
	// cmdlineSecrets are the flags given that hold a secret (SEC-141).
	cmdlineSecrets []string
	// fileSecrets are the keys of the file that hold a secret as written,
	// not through a $VARIABLE (SEC-198).
	fileSecrets []string
	// given holds the file key of each setting the file, a variable or a
	// flag set, for those whose default cannot tell (scopes, SEC-174).
	given map[string]bool
	// from names, by file key, the variable or flag a setting came from
	// when not from the file: a problem with one of its values says so.
	from map[string]string

	Listen    string `yaml:"listen" arg:"ADDR" default:"127.0.0.1:8080" help:"address to listen on"`
	PublicURL string `yaml:"public_url" arg:"URL" help:"the issuer and public origin, https unless loopback; an origin only, no path (default: follow the loopback Host)"`
	DataDir   string `yaml:"data_dir" arg:"DIR" default:"mcpgate-data" help:"directory of the database and the secret key file secret.key"`
	// SecretKeyFile is the secret key of several replicas on one store.
	SecretKeyFile string `yaml:"secret_key_file" arg:"FILE" help:"read the secret key, which seals the signing keys and which every replica on one store must share, from this file: 32 bytes in standard base64 (what mcpgate keys new-secret prints, and DATA-DIR/secret.key holds); never created (default: DATA-DIR/secret.key, created at first start)"`
	Store         string `yaml:"store" arg:"DSN" help:"sqlite:PATH, postgres://USER:PASSWORD@HOST[:PORT]/DATABASE (several replicas on one database), or memory (nothing survives a restart) (default sqlite:DATA-DIR/mcpgate.db)"`

	// MetricsListen is a listener of its own: the series describe every
	// user's traffic, for the operator's Prometheus only (SEC-89).
	MetricsListen string `yaml:"metrics_listen" arg:"ADDR" help:"serve Prometheus metrics at /metrics on this address, a listener of its own and never the public one (SEC-89) (default: off)"`

	LocalUsers LocalUsers `yaml:"local_users" flag:"local-user" arg:"NAME[GROUPS]:PASSWORD" help:"a local account (repeatable), with optional groups separated by , or + (alice[admins+devs]:PW); a bcrypt hash ($2b$…) may replace the password; MCPGATE_LOCAL_USERS, split at commas, takes several accounts only as bcrypt hashes (SEC-173); the file also takes {name, password or password_hash, groups}"`

	GitHubClientID         string `yaml:"github_client_id" env:"GITHUB_CLIENT" arg:"ID" help:"GitHub OAuth app client ID"`
	GitHubClientSecret     string `yaml:"github_client_secret" env:"GITHUB_SECRET" arg:"SECRET" help:"GitHub OAuth app client secret"`
	GitHubClientSecretFile string `yaml:"github_client_secret_file" arg:"FILE" help:"read the GitHub client secret from this file"`
	GitHubGroups           bool   `yaml:"github_groups" help:"make the user's GitHub organizations and teams their groups (org, org/team); asks GitHub for the read:org scope"`

	OIDCIssuer           string `yaml:"oidc_issuer" arg:"URL" help:"the issuer URL of an OpenID Connect provider to log in with (provider \"oidc\"); https, http only for loopback"`
	OIDCClientID         string `yaml:"oidc_client_id" arg:"ID" help:"the client ID registered at the OIDC provider, with the callback PUBLIC_URL/callback/oidc"`
	OIDCClientSecret     string `yaml:"oidc_client_secret" arg:"SECRET" help:"the OIDC client secret; none for a public client (PKCE alone)"`
	OIDCClientSecretFile string `yaml:"oidc_client_secret_file" arg:"FILE" help:"read the OIDC client secret from this file"`
	OIDCPreset           string `yaml:"oidc_preset" arg:"NAME" help:"a preset for the provider \"oidc\", as oidc_providers' preset: entra (give its tenant in oidc_issuer), okta, keycloak, gitlab (issuer https://gitlab.com unless oidc_issuer) or auth0; google has its own settings (google_client_id)"`
	OIDCDisplayName      string `yaml:"oidc_display_name" arg:"NAME" help:"the name the consent and error pages give the provider \"oidc\" (default: its preset's, or the issuer's host)"`

	// A provider named google with the google preset, a shortcut for
	// its entry in oidc_providers.
	GoogleClientID         string   `yaml:"google_client_id" arg:"ID" help:"the OAuth client ID of a Google Cloud web application: log in with Google (provider \"google\", callback PUBLIC_URL/callback/google)"`
	GoogleClientSecret     string   `yaml:"google_client_secret" arg:"SECRET" help:"its client secret"`
	GoogleClientSecretFile string   `yaml:"google_client_secret_file" arg:"FILE" help:"read the Google client secret from this file"`
	GoogleHostedDomain     []string `yaml:"google_hosted_domain" arg:"DOMAIN" help:"a Google Workspace domain whose accounts alone may log in with Google, checked in the ID token's hd claim (repeatable)"`

	OIDCProviders []OIDCProvider `yaml:"oidc_providers" help:"OpenID Connect providers to log in with, each with name, display_name, issuer, client_id, client_secret or client_secret_file, scopes, claims, preset and auth_params (and the presets' hosted_domain, tenant, allowed_tenants)"`

	// The backend of /mcp when there is no resources list: the demo
	// server, an upstream URL or a stdio command, with its policy.
	Backend `yaml:",inline"`

	AuditLog string `yaml:"audit_log" arg:"FILE" help:"append one JSON line per tools/call to this file (default: the log)"`

	Scopes         []string            `yaml:"scopes" flag:"scope" arg:"SCOPE" default:"mcp" help:"a scope every token for /mcp must carry (repeatable); the minimal set its metadata advertises"`
	OptionalScopes []string            `yaml:"optional_scopes" flag:"optional-scope" arg:"SCOPE" help:"a further scope a client may ask for (step-up; repeatable); never advertised in the resource metadata"`
	ScopeImplies   map[string][]string `yaml:"scope_implies" help:"a scope hierarchy, like {mcp:admin: [mcp:read, mcp:write]}: a broader scope satisfies the narrower ones"`
	AllowedOrigins []string            `yaml:"allowed_origins" flag:"allowed-origin" arg:"ORIGIN" help:"a browser origin allowed at /mcp besides loopback ones and mcpgate's own (repeatable)"`

	MaxSessionsPerUser Count       `yaml:"max_sessions_per_user" arg:"N" default:"32" help:"the most sessions one user holds at each MCP endpoint; one more ends that user's least recently used session; 1 to 10000"`
	MaxStreamsPerUser  Count       `yaml:"max_streams_per_user" arg:"N" default:"16" help:"the most event streams (GET) one user has open at each MCP endpoint; one more is refused with 429; 1 to 10000"`
	RateLimits         []RateLimit `yaml:"rate_limits" help:"token buckets, each with tools (name patterns, * for any run of characters) or endpoints (token, authorize, revoke, introspect), per (user or client; endpoints: client), rate (N/s, N/m or N/h) and burst (default: the rate's N); a tools/call over one gets a JSON-RPC error, an endpoint 429 (SEC-100)"`
	MaxGroups          Count       `yaml:"max_groups" arg:"N" default:"100" help:"the most groups one user may carry (they travel in access tokens, the identity token, X-Forwarded-Groups and MCPGATE_USER_GROUPS); a login with more is refused with a page that says so, and a refresh that finds more ends the grant, since dropping one would get past a rule that denies it; 1 to 1000 (SEC-70)"`

	AccessTokenTTL  Duration `yaml:"access_token_ttl" arg:"DURATION" default:"1h" help:"access token lifetime, at most 24h"`
	RefreshTokenTTL Duration `yaml:"refresh_token_ttl" arg:"DURATION" default:"720h" help:"refresh token lifetime"`
	RefreshGrace    Duration `yaml:"refresh_grace" arg:"DURATION" default:"30s" help:"a rotated refresh token presented again this soon (a retry, or two copies at once) gets the same new tokens instead of revoking its family; off turns this off; at most 5m (RT-1)"`
	KeyRotation     Duration `yaml:"key_rotation" arg:"DURATION" default:"720h" help:"make a new signing key when the current one is this old; the old one stays in the JWKS until the tokens it signed have expired (access_token_ttl + about 7m); off leaves it to mcpgate keys rotate; at least 1h"`
	UpstreamRecheck Duration `yaml:"upstream_recheck" arg:"DURATION" default:"1h" help:"a refresh renews the user's session at their OpenID provider, and re-reads their groups, once it is this old: a user removed from a group or ended at the provider loses it at their next refresh after this; off keeps the login's groups for the grant's life; at most 24h (RT-3)"`

	// What a client may hold of the server (SEC-40, SEC-41).
	RequestHeaderTimeout     Duration `yaml:"request_header_timeout" arg:"DURATION" default:"10s" help:"the time a client has to send a request's headers"`
	RequestReadTimeout       Duration `yaml:"request_read_timeout" arg:"DURATION" default:"30s" help:"the time a client has to send a whole request, headers and body; the answer, an event stream say, may last longer (SEC-40)"`
	MaxConnections           Limit    `yaml:"max_connections" arg:"N" help:"the most client connections open at once; at the cap the oldest one not being served is closed for the new one; off for no cap (default: three quarters of the open-file limit) (SEC-41)"`
	MaxConnectionsPerAddress Limit    `yaml:"max_connections_per_address" arg:"N" default:"256" help:"the most connections open at once from one client address (an IPv6 one by its /64); the TCP peer's address, so behind a reverse proxy raise it or set it off (SEC-41)"`
	TrustedProxies           []string `yaml:"trusted_proxies" flag:"trusted-proxy" arg:"CIDR" help:"the address or network (like 127.0.0.1/32) of a reverse proxy in front of mcpgate (repeatable): a request from one names its client by the last X-Forwarded-For entry that is no trusted proxy, for the registration limit and the flow debugger (SEC-138); the connection caps count the TCP peer; at most /8 (IPv4) or /32 (IPv6) wide outside private, loopback, link-local and CGNAT space (SEC-170)"`

	UnusedClientExpiry Duration `yaml:"unused_client_expiry" arg:"DURATION" default:"2160h" help:"a dynamically registered client that has not come to /authorize or /token for this long, and holds no live refresh token or code, is deleted; off keeps them all; at least 24h (SEC-14)"`

	LogLevel  string `yaml:"log_level" arg:"LEVEL" default:"info" help:"debug, info, warn or error"`
	LogFormat string `yaml:"log_format" arg:"FORMAT" default:"text" help:"text or json (one line per request, on stderr)"`

	Clients []StaticClient `yaml:"clients" help:"pre-registered OAuth clients, each with id, name, redirect_uris and an optional secret or secret_file"`
	// IntrospectionClients name resource servers among Clients (SEC-10).
	IntrospectionClients []string `yaml:"introspection_clients" flag:"introspection-client" arg:"ID" help:"a pre-registered client with a secret (a resource server) that may introspect every access token (repeatable); any other client only its own tokens"`

	// AdminGroups may use the admin console (SEC-111).
	AdminGroups []string `yaml:"admin_groups" flag:"admin-group" arg:"GROUP" help:"a group whose members may use the admin console at /admin (repeatable); the local account named admin may too (SEC-111)"`

	// Resources lists several protected MCP endpoints; when set, the
	// backend settings, scopes, optional_scopes and scope_implies of the
	// top level are not used, and refused.
	Resources []Resource `yaml:"resources" help:"several protected MCP endpoints, each with path, name, scopes, optional_scopes, scope_implies and a backend"`

	// Access says who may log in at all; a resource's access narrows it.
	Access Access `yaml:"access" help:"who may log in: users (IDs like local:alice or github:583231), email_domains (verified emails only) and groups; one match lets a person in (default: everyone who can log in)"`

	DisableCIMD bool `yaml:"disable_cimd" help:"refuse client_ids that are Client ID Metadata Document URLs"`
	// DisableFlowDebugger stops recording authorization attempts for the
	// flow debugger (mcpgate flows, the admin console); what is stored
	// stays readable until housekeeping removes it.
	DisableFlowDebugger bool     `yaml:"disable_flow_debugger" help:"record no authorization attempts for the flow debugger (mcpgate flows, /admin/flows)"`
	CIMDDenyHosts       []string `yaml:"cimd_deny_hosts" flag:"cimd-deny-host" arg:"HOST" help:"refuse client metadata documents and key sets from this host, or from every host under it when it begins with a dot (repeatable)"`
	CIMDAllowHosts      []string `yaml:"cimd_allow_hosts" flag:"cimd-allow-host" arg:"HOST" help:"TESTING ONLY: a host whose client metadata documents may be on a loopback or private address (repeatable)"`
	CIMDTestCAFile      string   `yaml:"cimd_test_ca_file" arg:"FILE" help:"TESTING ONLY: trust this PEM CA when fetching client metadata documents"`
}

// Resource is one protected MCP endpoint of the file's resources list.
type Resource struct {
	Path           string `yaml:"path"`
	Name           string `yaml:"name"`
	Backend        `yaml:",inline"`
	Scopes         []string            `yaml:"scopes"`
	OptionalScopes []string            `yaml:"optional_scopes"`
	ScopeImplies   map[string][]string `yaml:"scope_implies"`
	// Access says who may get a token for this resource, besides the top
	// level's access.
	Access Access `yaml:"access"`
}

// Access lists who may enter (see mcpgate.Access).
type Access struct {
	Users        []string `yaml:"users"`
	EmailDomains []string `yaml:"email_domains"`
	Groups       []string `yaml:"groups"`
}

// Backend is what serves a resource: the embedded demo server when both
// Upstream and Stdio are empty. Its defaults are the library's, applied to
// each resource, so none is set here.
type Backend struct {
	Upstream          string `yaml:"upstream" arg:"URL" help:"proxy /mcp to this streamable-HTTP MCP server (default: the demo server)"`
	UpstreamTransport string `yaml:"upstream_transport" arg:"T" help:"how the upstream speaks: streamable-http (default), or sse for a legacy HTTP+SSE (2024-11-05) server whose SSE URL --upstream is"`
	Stdio             string `yaml:"stdio" arg:"CMD" help:"run this stdio MCP server command behind /mcp, one process per user and application (like \"npx -y @modelcontextprotocol/server-everything stdio\")"`

	StdioEnv          []string `yaml:"stdio_env" arg:"KEY=VALUE" help:"an environment variable for every stdio server process (repeatable)"`
	StdioMaxProcesses Count    `yaml:"stdio_max_processes" arg:"N" help:"the most stdio server processes at once (default 16)"`
	StdioIdleTimeout  Duration `yaml:"stdio_idle_timeout" arg:"DURATION" help:"when an idle stdio server process is stopped (default 10m)"`
	StdioIsolation    string   `yaml:"stdio_isolation" arg:"MODE" help:"how stdio server processes are confined: auto (default: Landlock, and a uid per user when root; refuse to start when neither is available) or none (unconfined, logged as a warning)"`
	StdioUIDRange     string   `yaml:"stdio_uid_range" arg:"FIRST-LAST" help:"when mcpgate runs as root, each user's stdio server runs as a uid (and gid) of its own from this range (default 2000000-2065535); off runs them as mcpgate's user"`
	StdioReadPaths    []string `yaml:"stdio_read_paths" flag:"stdio-read-path" arg:"PATH" help:"an absolute file or directory stdio servers may read and execute from besides /usr, /bin, /sbin, /lib* and the command's own directory, like the directory of a script or its packages (repeatable)"`

	IdentityToken   bool            `yaml:"identity_token" help:"also send the upstream a signed identity token (header X-Mcpgate-Identity, verifiable with /jwks.json)"`
	IdentityHeaders IdentityHeaders `yaml:"identity_headers" help:"rename the identity headers sent to an upstream, or turn one off with \"-\""`

	// ToolPolicy allows and denies tools per user, group and scope.
	ToolPolicy *policy.Policy `yaml:"tool_policy" help:"allow and deny rules on tool names (default: every tool)"`
}

// RateLimit is one entry of the file's rate_limits (see mcpgate.RateLimit).
type RateLimit struct {
	Tools     []string `yaml:"tools"`
	Endpoints []string `yaml:"endpoints"`
	Per       string   `yaml:"per"`
	Rate      string   `yaml:"rate"`
	Burst     Count    `yaml:"burst"`
}

// rule is r as the gateway takes it; a rate that does not parse is an
// error, and the rule then has a placeholder rate, so that its other
// fields can still be checked.
func (r RateLimit) rule() (mcpgate.RateLimit, error) {
	rate, err := mcpgate.ParseRate(r.Rate)
	if err != nil {
		rate = mcpgate.Rate{N: 1, Per: time.Second}
	}
	return mcpgate.RateLimit{Tools: r.Tools, Endpoints: r.Endpoints, Per: r.Per, Rate: rate, Burst: int(r.Burst)}, err
}

// IdentityHeaders name the headers that carry the caller to an upstream.
type IdentityHeaders struct {
	User              string `yaml:"user"`               // default X-Forwarded-User
	PreferredUsername string `yaml:"preferred_username"` // default X-Forwarded-Preferred-Username
	Email             string `yaml:"email"`              // default X-Forwarded-Email
	Groups            string `yaml:"groups"`             // default X-Forwarded-Groups
	ClientID          string `yaml:"client_id"`          // default X-Forwarded-Client-Id
	Token             string `yaml:"token"`              // default X-Mcpgate-Identity
}

// OIDCProvider is one OpenID Connect provider of the file's oidc_providers
// list. Its users are NAME:<sub>, its callback PUBLIC_URL/callback/NAME.
type OIDCProvider struct {
	Name             string            `yaml:"name"`
	DisplayName      string            `yaml:"display_name"`
	Preset           string            `yaml:"preset"`
	Issuer           string            `yaml:"issuer"`
	ClientID         string            `yaml:"client_id"`
	ClientSecret     string            `yaml:"client_secret"`
	ClientSecretFile string            `yaml:"client_secret_file"`
	Scopes           []string          `yaml:"scopes"`
	Claims           OIDCClaims        `yaml:"claims"`
	AuthParams       map[string]string `yaml:"auth_params"`

	// Preset settings: Google's Workspace domains (preset google), and
	// Entra ID's tenant and the tenants a multi-tenant app lets in
	// (preset entra).
	HostedDomain   StringList `yaml:"hosted_domain"`
	Tenant         string     `yaml:"tenant"`
	AllowedTenants []string   `yaml:"allowed_tenants"`

	// OfflineAccess is not read from the file: ResolvedOIDCProviders sets
	// when the provider is asked for offline_access (RT-3).
	OfflineAccess oidc.OfflineAccess `yaml:"-"`
}

// StringList is a list that the file may also give as one string
// (hosted_domain: example.com).
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*l = StringList{s}
		return nil
	}
	var ss []string
	if err := n.Decode(&ss); err != nil {
		return err
	}
	*l = ss
	return nil
}

// OIDCClaims name the claims a provider's users are read from; empty for
// the standard claim, a dotted path for a nested one (realm_access.roles).
type OIDCClaims struct {
	Subject  string `yaml:"subject"`
	Username string `yaml:"username"`
	Email    string `yaml:"email"`
	Groups   string `yaml:"groups"`
}

// StaticClient is a pre-registered OAuth client (REG-1).
type StaticClient struct {
	ID           string   `yaml:"id"`
	Secret       string   `yaml:"secret"`
	SecretFile   string   `yaml:"secret_file"`
	Name         string   `yaml:"name"`
	RedirectURIs []string `yaml:"redirect_uris"`
}

// StoreDSN is the store to open: the configured one, or the SQLite file in
// the data directory.
func (c *Config) StoreDSN() string {
	if c.Store != "" {
		return c.Store
	}
	return "sqlite:" + filepath.Join(c.DataDir, "mcpgate.db")
}
