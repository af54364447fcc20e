package config

import (
	"flag"
	"strings"
	"time"
)

// flagValues holds the flags; apply copies the ones that were set.
type flagValues struct {
	config                                         string
	listen, publicURL, dataDir, store              string
	localUsers                                     listFlag
	githubID, githubSecret, githubSecretFile       string
	oidcIssuer, oidcID, oidcSecret, oidcSecretFile string
	upstream, stdio, logLevel, logFormat           string
	upstreamTransport                              string
	scopes, origins                                listFlag
	accessTTL, refreshTTL, refreshGrace            time.Duration
	cimdAllow                                      listFlag
	cimdCA                                         string
	disableCIMD, identityToken                     bool
	auditLog                                       string
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func newFlagSet() (*flag.FlagSet, *flagValues) {
	v := &flagValues{}
	fs := flag.NewFlagSet("mcpgate serve", flag.ContinueOnError)
	fs.StringVar(&v.config, "config", "", "YAML configuration `file` (env MCPGATE_CONFIG)")
	fs.StringVar(&v.listen, "listen", "", "`address` to listen on (default 127.0.0.1:8080)")
	fs.StringVar(&v.publicURL, "public-url", "", "the public origin and issuer, https unless loopback (default: follow the loopback Host)")
	fs.StringVar(&v.dataDir, "data-dir", "", "`directory` for the database and keys (default ./mcpgate-data)")
	fs.StringVar(&v.store, "store", "", "store `DSN`: sqlite:PATH or memory (default sqlite:DATA-DIR/mcpgate.db)")
	fs.Var(&v.localUsers, "local-user", "local user `NAME:PASSWORD` (repeatable; env MCPGATE_LOCAL_USERS=a:pw,b:pw)")
	fs.StringVar(&v.githubID, "github-client-id", "", "GitHub OAuth app client ID (env GITHUB_CLIENT)")
	fs.StringVar(&v.githubSecret, "github-client-secret", "", "GitHub OAuth app client secret (env GITHUB_SECRET)")
	fs.StringVar(&v.githubSecretFile, "github-client-secret-file", "", "read the GitHub client secret from `file`")
	fs.StringVar(&v.oidcIssuer, "oidc-issuer", "", "OIDC provider issuer URL")
	fs.StringVar(&v.oidcID, "oidc-client-id", "", "OIDC client ID")
	fs.StringVar(&v.oidcSecret, "oidc-client-secret", "", "OIDC client secret")
	fs.StringVar(&v.oidcSecretFile, "oidc-client-secret-file", "", "read the OIDC client secret from `file`")
	fs.StringVar(&v.upstream, "upstream", "", "proxy /mcp to this MCP server `URL`")
	fs.StringVar(&v.upstreamTransport, "upstream-transport", "", "how the upstream speaks: streamable-http (default) or sse, a legacy HTTP+SSE server whose SSE URL --upstream is")
	fs.StringVar(&v.stdio, "stdio", "", "run this stdio MCP server `command` behind /mcp, one process per user (like \"npx -y @modelcontextprotocol/server-everything stdio\")")
	fs.BoolVar(&v.identityToken, "identity-token", false, "send the upstream a signed identity token (header X-Mcpgate-Identity, verifiable with /jwks.json)")
	fs.StringVar(&v.auditLog, "audit-log", "", "append one JSON line per tools/call to this `file` (default: the log)")
	fs.Var(&v.scopes, "scope", "a scope of the resource (repeatable; default mcp)")
	fs.Var(&v.origins, "allowed-origin", "a browser `origin` allowed to call /mcp besides loopback ones (repeatable)")
	fs.DurationVar(&v.accessTTL, "access-token-ttl", 0, "access token lifetime (default 1h)")
	fs.DurationVar(&v.refreshTTL, "refresh-token-ttl", 0, "refresh token lifetime (default 720h)")
	fs.DurationVar(&v.refreshGrace, "refresh-grace", 0, "a rotated refresh token presented again within this `duration` gets the same new tokens instead of revoking its family; 0 disables (default 30s)")
	fs.StringVar(&v.logLevel, "log-level", "", "debug, info, warn or error (default info)")
	fs.StringVar(&v.logFormat, "log-format", "", "text or json (default text)")
	fs.BoolVar(&v.disableCIMD, "disable-cimd", false, "refuse client_ids that are metadata document URLs")
	fs.Var(&v.cimdAllow, "cimd-allow-host", "TESTING ONLY: a `host` whose client metadata documents may be on a loopback or private address (repeatable)")
	fs.StringVar(&v.cimdCA, "cimd-test-ca-file", "", "TESTING ONLY: trust this PEM CA `file` when fetching client metadata documents")
	return fs, v
}

func (v *flagValues) apply(fs *flag.FlagSet, c *Config) {
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			c.Listen = v.listen
		case "public-url":
			c.PublicURL = v.publicURL
		case "data-dir":
			c.DataDir = v.dataDir
		case "store":
			c.Store = v.store
		case "local-user":
			c.LocalUsers = v.localUsers
		case "github-client-id":
			c.GitHubClientID = v.githubID
		case "github-client-secret":
			c.GitHubClientSecret = v.githubSecret
		case "github-client-secret-file":
			c.GitHubClientSecretFile = v.githubSecretFile
		case "oidc-issuer":
			c.OIDCIssuer = v.oidcIssuer
		case "oidc-client-id":
			c.OIDCClientID = v.oidcID
		case "oidc-client-secret":
			c.OIDCClientSecret = v.oidcSecret
		case "oidc-client-secret-file":
			c.OIDCClientSecretFile = v.oidcSecretFile
		case "upstream":
			c.Upstream = v.upstream
		case "upstream-transport":
			c.UpstreamTransport = v.upstreamTransport
		case "stdio":
			c.Stdio = v.stdio
		case "identity-token":
			c.IdentityToken = v.identityToken
		case "audit-log":
			c.AuditLog = v.auditLog
		case "scope":
			c.Scopes = v.scopes
		case "allowed-origin":
			c.AllowedOrigins = v.origins
		case "access-token-ttl":
			c.AccessTokenTTL = v.accessTTL
		case "refresh-token-ttl":
			c.RefreshTokenTTL = v.refreshTTL
		case "refresh-grace":
			c.RefreshGrace = v.refreshGrace
		case "log-level":
			c.LogLevel = v.logLevel
		case "log-format":
			c.LogFormat = v.logFormat
		case "disable-cimd":
			c.DisableCIMD = v.disableCIMD
		case "cimd-allow-host":
			c.CIMDAllowHosts = v.cimdAllow
		case "cimd-test-ca-file":
			c.CIMDTestCAFile = v.cimdCA
		}
	})
}

// Usage is the help text of `mcpgate serve`.
func Usage() string {
	fs, _ := newFlagSet()
	var b strings.Builder
	b.WriteString("Usage: mcpgate serve [flags]\n\nFlags (each also MCPGATE_<NAME> in the environment and <name> in the config file):\n")
	fs.SetOutput(&b)
	fs.PrintDefaults()
	return b.String()
}
