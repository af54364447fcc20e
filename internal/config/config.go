package config

import (
	"bytes"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcpgate/mcpgate/internal/backend/bridge"
	"github.com/mcpgate/mcpgate/internal/policy"
)

// Config is everything `mcpgate serve` can be told. Each field is a file
// key, an MCPGATE_<KEY> environment variable and a --flag (underscores
// become dashes).
type Config struct {
	Listen    string `yaml:"listen"`
	PublicURL string `yaml:"public_url"`
	DataDir   string `yaml:"data_dir"`
	Store     string `yaml:"store"` // sqlite:PATH, memory, postgres://…

	LocalUsers []string `yaml:"local_users"` // NAME:PASSWORD or NAME:$2b$… (bcrypt)

	GitHubClientID         string `yaml:"github_client_id"`
	GitHubClientSecret     string `yaml:"github_client_secret"`
	GitHubClientSecretFile string `yaml:"github_client_secret_file"`

	OIDCIssuer           string `yaml:"oidc_issuer"`
	OIDCClientID         string `yaml:"oidc_client_id"`
	OIDCClientSecret     string `yaml:"oidc_client_secret"`
	OIDCClientSecretFile string `yaml:"oidc_client_secret_file"`

	// Backend of /mcp when there is no resources list: the demo server,
	// an upstream URL or a stdio command, with its policy.
	Backend `yaml:",inline"`

	// AuditLog is a file that gets one JSON line per tools/call; empty
	// writes the events to the log.
	AuditLog string `yaml:"audit_log"`

	Scopes          []string            `yaml:"scopes"`
	OptionalScopes  []string            `yaml:"optional_scopes"`
	ScopeImplies    map[string][]string `yaml:"scope_implies"`
	AllowedOrigins  []string            `yaml:"allowed_origins"`
	AccessTokenTTL  time.Duration       `yaml:"access_token_ttl"`
	RefreshTokenTTL time.Duration       `yaml:"refresh_token_ttl"`
	RefreshGrace    time.Duration       `yaml:"refresh_grace"` // RT-1: a retry this soon gets the same pair; 0 disables
	LogLevel        string              `yaml:"log_level"`     // debug, info, warn, error
	LogFormat       string              `yaml:"log_format"`    // text, json

	Clients []StaticClient `yaml:"clients"`

	// Resources lists several protected MCP endpoints; when set, upstream,
	// scopes, optional_scopes and scope_implies at the top level are not
	// used.
	Resources []Resource `yaml:"resources"`

	DisableCIMD bool `yaml:"disable_cimd"`
	// For local testing only: hosts whose metadata documents may live on
	// loopback or private addresses, and a CA to trust for them.
	CIMDAllowHosts []string `yaml:"cimd_allow_hosts"`
	CIMDTestCAFile string   `yaml:"cimd_test_ca_file"`
}

// Resource is one protected MCP endpoint of the file's resources list.
type Resource struct {
	Path           string `yaml:"path"`
	Name           string `yaml:"name"`
	Backend        `yaml:",inline"`
	Scopes         []string            `yaml:"scopes"`
	OptionalScopes []string            `yaml:"optional_scopes"`
	ScopeImplies   map[string][]string `yaml:"scope_implies"`
}

// Backend is what serves a resource: the embedded demo server when both
// Upstream and Stdio are empty.
type Backend struct {
	Upstream string `yaml:"upstream"` // proxy to this streamable-HTTP MCP server URL
	Stdio    string `yaml:"stdio"`    // run this stdio MCP server command, one process per user

	// UpstreamTransport is how upstream speaks: "" or "streamable-http"
	// (proxied), or "sse": a legacy HTTP+SSE server (protocol 2024-11-05)
	// whose SSE URL upstream is, bridged to streamable HTTP.
	UpstreamTransport string `yaml:"upstream_transport"`

	StdioEnv          []string      `yaml:"stdio_env"`           // KEY=VALUE given to every process
	StdioMaxProcesses int           `yaml:"stdio_max_processes"` // default 16
	StdioIdleTimeout  time.Duration `yaml:"stdio_idle_timeout"`  // default 10m

	// IdentityHeaders renames the identity headers sent to an upstream
	// ("-" turns one off); IdentityToken adds a signed identity token.
	IdentityHeaders IdentityHeaders `yaml:"identity_headers"`
	IdentityToken   bool            `yaml:"identity_token"`

	// ToolPolicy allows and denies tools per user, group and scope.
	ToolPolicy *policy.Policy `yaml:"tool_policy"`
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

// StaticClient is a pre-registered OAuth client (REG-1).
type StaticClient struct {
	ID           string   `yaml:"id"`
	Secret       string   `yaml:"secret"`
	SecretFile   string   `yaml:"secret_file"`
	Name         string   `yaml:"name"`
	RedirectURIs []string `yaml:"redirect_uris"`
}

// Defaults returns the configuration of `mcpgate serve` with no arguments.
func Defaults() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		DataDir:         "mcpgate-data",
		Scopes:          []string{"mcp"},
		AccessTokenTTL:  time.Hour,
		RefreshTokenTTL: 30 * 24 * time.Hour,
		RefreshGrace:    30 * time.Second,
		LogLevel:        "info",
		LogFormat:       "text",
	}
}

// StoreDSN is the store to open: the configured one, or the SQLite file in
// the data directory.
func (c *Config) StoreDSN() string {
	if c.Store != "" {
		return c.Store
	}
	return "sqlite:" + filepath.Join(c.DataDir, "mcpgate.db")
}

// Load builds the configuration from args (after "serve") and the
// environment lookup function: defaults, then the file named by --config
// or MCPGATE_CONFIG, then MCPGATE_* variables, then flags.
func Load(args []string, getenv func(string) string) (*Config, error) {
	cfg := Defaults()
	fs, flags := newFlagSet()
	fs.SetOutput(new(bytes.Buffer))
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, fmt.Errorf("%w\nrun 'mcpgate serve -h' for the list of flags", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	path := flags.config
	if path == "" {
		path = getenv("MCPGATE_CONFIG")
	}
	if path != "" {
		if err := loadFile(&cfg, path, getenv); err != nil {
			return nil, err
		}
	}
	if err := applyEnv(&cfg, getenv); err != nil {
		return nil, err
	}
	flags.apply(fs, &cfg)
	if err := cfg.readSecretFiles(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

func loadFile(cfg *Config, path string, getenv func(string) string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	// $VAR and ${VAR} are expanded from the environment; $$ is a literal $
	// (bcrypt hashes in local_users need it).
	expanded := os.Expand(string(raw), func(name string) string {
		if name == "$" {
			return "$"
		}
		return getenv(name)
	})
	dec := yaml.NewDecoder(strings.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// envNames maps MCPGATE_ variables to setters.
func applyEnv(cfg *Config, getenv func(string) string) error {
	str := map[string]*string{
		"MCPGATE_LISTEN":                    &cfg.Listen,
		"MCPGATE_PUBLIC_URL":                &cfg.PublicURL,
		"MCPGATE_DATA_DIR":                  &cfg.DataDir,
		"MCPGATE_STORE":                     &cfg.Store,
		"MCPGATE_GITHUB_CLIENT_ID":          &cfg.GitHubClientID,
		"MCPGATE_GITHUB_CLIENT_SECRET":      &cfg.GitHubClientSecret,
		"MCPGATE_GITHUB_CLIENT_SECRET_FILE": &cfg.GitHubClientSecretFile,
		"MCPGATE_OIDC_ISSUER":               &cfg.OIDCIssuer,
		"MCPGATE_OIDC_CLIENT_ID":            &cfg.OIDCClientID,
		"MCPGATE_OIDC_CLIENT_SECRET":        &cfg.OIDCClientSecret,
		"MCPGATE_OIDC_CLIENT_SECRET_FILE":   &cfg.OIDCClientSecretFile,
		"MCPGATE_UPSTREAM":                  &cfg.Upstream,
		"MCPGATE_UPSTREAM_TRANSPORT":        &cfg.UpstreamTransport,
		"MCPGATE_STDIO":                     &cfg.Stdio,
		"MCPGATE_AUDIT_LOG":                 &cfg.AuditLog,
		"MCPGATE_LOG_LEVEL":                 &cfg.LogLevel,
		"MCPGATE_LOG_FORMAT":                &cfg.LogFormat,
		"MCPGATE_CIMD_TEST_CA_FILE":         &cfg.CIMDTestCAFile,
	}
	// The seed's names for the GitHub app, below the MCPGATE_ ones.
	if v := getenv("GITHUB_CLIENT"); v != "" {
		cfg.GitHubClientID = v
	}
	if v := getenv("GITHUB_SECRET"); v != "" {
		cfg.GitHubClientSecret = v
	}
	for name, p := range str {
		if v := getenv(name); v != "" {
			*p = v
		}
	}
	list := map[string]*[]string{
		"MCPGATE_LOCAL_USERS":      &cfg.LocalUsers,
		"MCPGATE_SCOPES":           &cfg.Scopes,
		"MCPGATE_ALLOWED_ORIGINS":  &cfg.AllowedOrigins,
		"MCPGATE_CIMD_ALLOW_HOSTS": &cfg.CIMDAllowHosts,
	}
	for name, p := range list {
		if v := getenv(name); v != "" {
			*p = splitList(v)
		}
	}
	dur := map[string]*time.Duration{
		"MCPGATE_ACCESS_TOKEN_TTL":  &cfg.AccessTokenTTL,
		"MCPGATE_REFRESH_TOKEN_TTL": &cfg.RefreshTokenTTL,
		"MCPGATE_REFRESH_GRACE":     &cfg.RefreshGrace,
	}
	var errs []error
	for name, p := range dur {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a duration (like 1h or 30m)", name, v))
				continue
			}
			*p = d
		}
	}
	if v := getenv("MCPGATE_DISABLE_CIMD"); v != "" {
		cfg.DisableCIMD = v == "1" || strings.EqualFold(v, "true")
	}
	if v := getenv("MCPGATE_IDENTITY_TOKEN"); v != "" {
		cfg.IdentityToken = v == "1" || strings.EqualFold(v, "true")
	}
	return errors.Join(errs...)
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (c *Config) readSecretFiles() error {
	read := func(path string, dst *string, what string) error {
		if path == "" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		*dst = strings.TrimSpace(string(b))
		return nil
	}
	errs := []error{
		read(c.GitHubClientSecretFile, &c.GitHubClientSecret, "github_client_secret_file"),
		read(c.OIDCClientSecretFile, &c.OIDCClientSecret, "oidc_client_secret_file"),
	}
	for i := range c.Clients {
		errs = append(errs, read(c.Clients[i].SecretFile, &c.Clients[i].Secret, "clients["+c.Clients[i].ID+"].secret_file"))
	}
	return errors.Join(errs...)
}

// Validate returns every problem of c at once, or nil.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if host, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("listen: %q is not HOST:PORT (like 127.0.0.1:8080)", c.Listen)
	} else if c.PublicURL == "" && host != "" && !isLoopback(host) {
		bad("listen: %q is not a loopback address; set public_url to the https URL clients will use", c.Listen)
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		switch {
		case err != nil || !u.IsAbs() || u.Host == "":
			bad("public_url: %q is not an absolute URL", c.PublicURL)
		case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
			bad("public_url: %q must be https (http only for a loopback host) (COMM-1)", c.PublicURL)
		case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
			bad("public_url: %q must be an origin only, like https://mcp.example.com (no path, query or user)", c.PublicURL)
		}
	}
	if c.DataDir == "" {
		bad("data_dir: must not be empty")
	}
	switch dsn := c.StoreDSN(); {
	case strings.HasPrefix(dsn, "sqlite:") && len(dsn) > len("sqlite:"):
	case dsn == "memory":
	case strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://"):
		bad("store: PostgreSQL is not available in this version; use sqlite:PATH")
	default:
		bad("store: %q must be sqlite:PATH or memory", dsn)
	}
	for _, u := range c.LocalUsers {
		name, pw, ok := strings.Cut(u, ":")
		if !ok || name == "" || pw == "" {
			bad("local_users: %q must be NAME:PASSWORD", redactUser(u))
		}
	}
	if (c.GitHubClientID == "") != (c.GitHubClientSecret == "") {
		bad("github: set both github_client_id and github_client_secret, or neither")
	}
	if c.OIDCIssuer != "" || c.OIDCClientID != "" || c.OIDCClientSecret != "" {
		bad("oidc: the OIDC connector is not available in this version; use local users or GitHub")
	}
	if len(c.Resources) > 0 && c.Backend.configured() {
		bad("upstream, stdio, identity_*, tool_policy: with a resources list, give each resource its own")
	}
	c.Backend.validate("", bad)
	paths := map[string]bool{}
	for i, r := range c.Resources {
		key := fmt.Sprintf("resources[%d]", i)
		if !strings.HasPrefix(r.Path, "/") || strings.HasPrefix(r.Path, "/.well-known") {
			bad("%s.path: %q must start with / (like /github/mcp)", key, r.Path)
		} else if paths[r.Path] {
			bad("%s.path: %q is used twice", key, r.Path)
		}
		paths[r.Path] = true
		r.Backend.validate(key+".", bad)
		for _, s := range append(append([]string(nil), r.Scopes...), r.OptionalScopes...) {
			if !validScope(s) {
				bad("%s: %q is not a valid resource scope", key, s)
			}
		}
		for broad, narrow := range r.ScopeImplies {
			for _, s := range append([]string{broad}, narrow...) {
				if !validScope(s) {
					bad("%s.scope_implies: %q is not a valid resource scope", key, s)
				}
			}
		}
	}
	if len(c.Scopes) == 0 {
		bad("scopes: at least one scope is required")
	}
	for _, s := range c.Scopes {
		if !validScope(s) {
			bad("scopes: %q is not a valid resource scope", s)
		}
	}
	for _, s := range c.OptionalScopes {
		if !validScope(s) {
			bad("optional_scopes: %q is not a valid resource scope", s)
		}
	}
	for broad, narrow := range c.ScopeImplies {
		for _, s := range append([]string{broad}, narrow...) {
			if !validScope(s) {
				bad("scope_implies: %q is not a valid resource scope", s)
			}
		}
	}
	if c.AccessTokenTTL <= 0 || c.AccessTokenTTL > 24*time.Hour {
		bad("access_token_ttl: %v must be between 1s and 24h (TOK-5)", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL {
		bad("refresh_token_ttl: %v must be at least access_token_ttl", c.RefreshTokenTTL)
	}
	if c.RefreshGrace < 0 || c.RefreshGrace > 5*time.Minute {
		bad("refresh_grace: %v must be between 0 (off) and 5m (RT-1)", c.RefreshGrace)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level: %q must be debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log_format: %q must be text or json", c.LogFormat)
	}
	if c.CIMDTestCAFile != "" {
		if pem, err := os.ReadFile(c.CIMDTestCAFile); err != nil {
			bad("cimd_test_ca_file: %v", err)
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			bad("cimd_test_ca_file: %s holds no PEM certificate", c.CIMDTestCAFile)
		}
	}
	seen := map[string]bool{}
	for i, cl := range c.Clients {
		if cl.ID == "" {
			bad("clients[%d]: id is required", i)
		} else if seen[cl.ID] {
			bad("clients[%d]: id %q is used twice", i, cl.ID)
		}
		seen[cl.ID] = true
		if len(cl.RedirectURIs) == 0 {
			bad("clients[%d]: redirect_uris is required", i)
		}
	}
	return errors.Join(errs...)
}

// configured reports whether any backend setting is set.
func (b *Backend) configured() bool {
	return b.Upstream != "" || b.UpstreamTransport != "" || b.Stdio != "" || len(b.StdioEnv) > 0 || b.StdioMaxProcesses != 0 || b.StdioIdleTimeout != 0 ||
		b.IdentityToken || b.IdentityHeaders != (IdentityHeaders{}) || b.ToolPolicy != nil
}

// validate reports the problems of b; prefix names its place in the file.
func (b *Backend) validate(prefix string, bad func(string, ...any)) {
	if b.Upstream != "" {
		u, err := url.Parse(b.Upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
			bad("%supstream: %q must be the http(s) URL of an MCP server, like http://127.0.0.1:3000/mcp", prefix, b.Upstream)
		}
		if b.Stdio != "" {
			bad("%supstream, %sstdio: a resource has one backend; set one of them", prefix, prefix)
		}
	}
	if b.Stdio != "" {
		if _, err := bridge.SplitCommand(b.Stdio); err != nil {
			bad("%sstdio: %v", prefix, err)
		}
	} else if len(b.StdioEnv) > 0 || b.StdioMaxProcesses != 0 || b.StdioIdleTimeout != 0 {
		bad("%sstdio_*: set only with stdio", prefix)
	}
	for _, kv := range b.StdioEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.HasPrefix(k, "MCPGATE_") {
			bad("%sstdio_env: %q must be KEY=VALUE, and not an MCPGATE_ variable (those carry the user)", prefix, strings.SplitN(kv, "=", 2)[0])
		}
	}
	switch b.UpstreamTransport {
	case "", "streamable-http":
	case "sse":
		if b.Upstream == "" {
			bad("%supstream_transport: sse needs upstream (the legacy server's SSE URL)", prefix)
		}
	default:
		bad("%supstream_transport: %q must be streamable-http or sse", prefix, b.UpstreamTransport)
	}
	if b.StdioMaxProcesses < 0 || b.StdioIdleTimeout < 0 {
		bad("%sstdio_max_processes, %sstdio_idle_timeout: must not be negative", prefix, prefix)
	}
	if b.Upstream == "" && (b.IdentityToken || b.IdentityHeaders != (IdentityHeaders{})) {
		bad("%sidentity_token, %sidentity_headers: only for an upstream (stdio servers get the user in their environment)", prefix, prefix)
	}
	h := b.IdentityHeaders
	for _, n := range []string{h.User, h.PreferredUsername, h.Email, h.Groups, h.ClientID, h.Token} {
		if n != "" && n != "-" && !validHeaderName(n) {
			bad("%sidentity_headers: %q is not a header name", prefix, n)
		}
	}
	if b.ToolPolicy != nil {
		if err := b.ToolPolicy.Validate(); err != nil {
			bad("%stool_policy: %v", prefix, err)
		}
	}
}

// validScope reports whether s may be a resource's scope: not empty, no
// space, quote or backslash (scopes are space-separated, and quoted in a
// WWW-Authenticate challenge), and not offline_access, which is the
// authorization server's (RT-2).
func validScope(s string) bool {
	return s != "" && !strings.ContainsAny(s, " \"\\") && s != "offline_access"
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

// redactUser hides the password part of a NAME:PASSWORD spec in messages.
func redactUser(spec string) string {
	if name, _, ok := strings.Cut(spec, ":"); ok {
		return name + ":***"
	}
	return spec
}
