package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/internal/policy"
	"github.com/mcpgate/mcpgate/internal/sandbox"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// validGateway loads args and environ, checks the settings valid and
// returns the library's configuration they make; any error fails t.
func validGateway(t *testing.T, args []string, environ map[string]string) mcpgate.Config {
	t.Helper()
	cfg, err := Load(args, env(environ))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	g, err := cfg.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("`mcpgate serve` with no arguments must work: %v", err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.StoreDSN() != "sqlite:mcpgate-data/mcpgate.db" || time.Duration(cfg.AccessTokenTTL) != time.Hour {
		t.Fatalf("defaults: %+v, want listen 127.0.0.1:8080, store sqlite:mcpgate-data/mcpgate.db, access_token_ttl 1h", cfg)
	}
}

// SEC-220: a secret and its file are one setting, with the order of every
// other: a secret given in the environment or by a flag wins over the
// file's secret file (a secret rotated after a leak), a file given by a
// flag wins over the environment's secret, and both in one place is an
// error. Fails before: the file always won, silently.
func TestSecretAndItsFileOneSetting(t *testing.T) {
	dir := t.TempDir()
	old, rotated := filepath.Join(dir, "old"), filepath.Join(dir, "rotated")
	os.WriteFile(old, []byte("OLDSECRET\n"), 0o600)
	os.WriteFile(rotated, []byte("ROTATEDSECRET\n"), 0o600)
	path := filepath.Join(dir, "mcpgate.yaml")
	os.WriteFile(path, []byte("github_client_id: gh\ngithub_client_secret_file: "+old+"\n"), 0o600)
	for name, tc := range map[string]struct {
		args []string
		vars map[string]string
		want string
	}{
		"the file's file":                 {nil, nil, "OLDSECRET"},
		"the environment's secret":        {nil, map[string]string{"GITHUB_SECRET": "NEWFROMENV"}, "NEWFROMENV"},
		"a flag's secret":                 {[]string{"--github-client-secret", "NEWFROMFLAG"}, nil, "NEWFROMFLAG"},
		"a flag's file over the variable": {[]string{"--github-client-secret-file", rotated}, map[string]string{"GITHUB_SECRET": "NEWFROMENV"}, "ROTATEDSECRET"},
	} {
		cfg, err := Load(append([]string{"--config", path}, tc.args...), env(tc.vars))
		if err != nil || cfg.GitHubClientSecret != tc.want {
			t.Errorf("%s: %v, secret %q; want %q", name, err, cfg.GitHubClientSecret, tc.want)
		}
	}
	// An empty secret is none: its file is read (a template's blank).
	blank := filepath.Join(dir, "blank.yaml")
	os.WriteFile(blank, []byte("github_client_id: gh\ngithub_client_secret: \"\"\ngithub_client_secret_file: "+old+"\n"), 0o600)
	if cfg, err := Load([]string{"--config", blank}, env(nil)); err != nil || cfg.GitHubClientSecret != "OLDSECRET" {
		t.Errorf("an empty secret beside its file: %v, want the file's secret", err)
	}
	both := filepath.Join(dir, "both.yaml")
	os.WriteFile(both, []byte("github_client_id: gh\ngithub_client_secret: INFILE\ngithub_client_secret_file: "+old+"\n"), 0o600)
	if _, err := Load([]string{"--config", both}, env(nil)); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("a secret and its file in one file: %v, want an error saying to give one", err)
	}
}

func TestPrecedenceFileEnvFlags(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgate.yaml")
	secretFile := filepath.Join(dir, "gh-secret")
	os.WriteFile(secretFile, []byte("from-file\n"), 0o600)
	os.WriteFile(path, []byte(`
listen: 127.0.0.1:9000
data_dir: /from/file
log_level: debug
github_client_id: ${GH_ID}
github_client_secret_file: `+secretFile+`
local_users: ["alice:$$2b$$10$$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"]
`), 0o600)
	cfg, err := Load([]string{"--config", path, "--listen", "127.0.0.1:9100"}, env(map[string]string{
		"MCPGATE_DATA_DIR": "/from/env", "GH_ID": "gh-client",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9100" {
		t.Errorf("flag must win over the file: %s", cfg.Listen)
	}
	if cfg.DataDir != "/from/env" {
		t.Errorf("env must win over the file: %s", cfg.DataDir)
	}
	if cfg.LogLevel != "debug" || cfg.GitHubClientID != "gh-client" || cfg.GitHubClientSecret != "from-file" {
		t.Errorf("file values: %+v, want log_level debug, github_client_id gh-client, the secret from its file", cfg)
	}
	if cfg.LocalUsers[0] != "alice:$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy" {
		t.Errorf("$$ must be a literal $: %q", cfg.LocalUsers[0])
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLocalUsersFromEnvAndFlags(t *testing.T) {
	const hash = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	cfg, err := Load(nil, env(map[string]string{"MCPGATE_LOCAL_USERS": "alice:" + hash + ", bob[admins+devs]:" + hash}))
	if err != nil || len(cfg.LocalUsers) != 2 || cfg.LocalUsers[1] != "bob[admins+devs]:"+hash {
		t.Fatalf("%v %q, want alice's and bob's accounts", err, cfg.LocalUsers)
	}
	cfg, err = Load(nil, env(map[string]string{"MCPGATE_LOCAL_USERS": "bob:pw:2"}))
	if err != nil || len(cfg.LocalUsers) != 1 || cfg.LocalUsers[0] != "bob:pw:2" {
		t.Fatalf("%v %q, want [bob:pw:2]", err, cfg.LocalUsers)
	}
	cfg, err = Load([]string{"--local-user", "a:1", "--local-user", "b:2"}, env(nil))
	if err != nil || len(cfg.LocalUsers) != 2 {
		t.Fatalf("%v %q, want [a:1 b:2]", err, cfg.LocalUsers)
	}
}

func TestSeedGitHubVariables(t *testing.T) {
	cfg, err := Load(nil, env(map[string]string{"GITHUB_CLIENT": "id", "GITHUB_SECRET": "sec"}))
	if err != nil || cfg.GitHubClientID != "id" || cfg.GitHubClientSecret != "sec" {
		t.Fatalf("%v %+v, want github_client_id id and github_client_secret sec from the seed's names", err, cfg)
	}
}

func TestUnknownFileKeyRejected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("listne: 1\n"), 0o600)
	if _, err := Load([]string{"--config", path}, env(nil)); err == nil || !strings.Contains(err.Error(), "listne") {
		t.Fatalf("unknown key must be reported: %v", err)
	}
}

func TestBadFlagRejected(t *testing.T) {
	if _, err := Load([]string{"--no-such-flag"}, env(nil)); err == nil {
		t.Fatal("unknown flag accepted")
	}
	if _, err := Load([]string{"stray"}, env(nil)); err == nil {
		t.Fatal("stray argument accepted")
	}
	if _, err := Load(nil, env(map[string]string{"MCPGATE_ACCESS_TOKEN_TTL": "forever"})); err == nil {
		t.Fatal("bad duration accepted")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := Defaults()
	cfg.Listen = "nonsense"
	cfg.PublicURL = "http://example.com/path"
	cfg.Store = "mysql://x"
	cfg.LocalUsers = []string{"nopassword"}
	cfg.GitHubClientID = "only-id"
	cfg.LogLevel = "loud"
	cfg.AccessTokenTTL = Duration(48 * time.Hour)
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"listen", "public_url", "store", "local_users", "github", "log_level", "access_token_ttl"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing problem %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "nopassword:") {
		t.Error("message must not echo a password")
	}
}

func TestPublicURLRules(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://mcp.example.com":  true,
		"https://mcp.example.com/": true,
		"http://127.0.0.1:8080":    true,
		"http://localhost:9000":    true,
		"http://mcp.example.com":   false, // COMM-1
		"https://x.example/tenant": false,
		"mcp.example.com":          false,
	} {
		cfg := Defaults()
		cfg.PublicURL = url
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("public_url %q: err=%v, want ok=%v", url, err, ok)
		}
	}
}

func TestHalfConfiguredOIDCIsRefused(t *testing.T) {
	cfg := Defaults()
	cfg.OIDCIssuer = "https://idp.example"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "oidc") {
		t.Fatalf("a half-configured server must not start: %v", err)
	}
}

func TestOIDCSettings(t *testing.T) {
	for _, tc := range []struct {
		issuer, id, secret, want string
	}{
		{"https://idp.example/realms/corp", "mcpgate", "s3cret", ""},
		{"https://idp.example", "mcpgate", "", ""}, // a public client
		{"http://127.0.0.1:9000", "mcpgate", "s", ""},
		{"http://idp.example", "mcpgate", "s", "must be https"},
		{"idp.example", "mcpgate", "s", "not an absolute URL"},
		{"https://idp.example", "", "s", "needs oidc_client_id"},
		{"", "mcpgate", "s", "need oidc_issuer"},
	} {
		cfg := Defaults()
		cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCClientSecret = tc.issuer, tc.id, tc.secret
		err := cfg.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%q %q %q: %v, want %q", tc.issuer, tc.id, tc.secret, err, tc.want)
		}
	}
}

func TestUpstreamURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"http://127.0.0.1:3000/mcp":    true,
		"https://mcp.internal/mcp":     true,
		"ftp://x/mcp":                  false,
		"http://user:pw@127.0.0.1/mcp": false,
		"not a url":                    false,
	} {
		cfg := Defaults()
		cfg.Upstream = u
		if err := cfg.Validate(); (err == nil) != ok {
			t.Errorf("upstream %q: %v, want ok=%v", u, err, ok)
		}
	}
}

// A resources list: each with a path, an upstream (or the demo server)
// and its scopes; mistakes in it are reported with their place.
func TestResourcesList(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
resources:
  - path: /mcp
  - path: /github/mcp
    name: GitHub tools
    upstream: http://127.0.0.1:3001/mcp
    scopes: [repo:read]
    optional_scopes: [repo:write]
    scope_implies: {repo:write: [repo:read]}
`), 0o600)
	cfg, err := Load([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Resources) != 2 || cfg.Resources[1].Upstream != "http://127.0.0.1:3001/mcp" || cfg.Resources[1].ScopeImplies["repo:write"][0] != "repo:read" {
		t.Fatalf("%+v, want two resources, the second with its upstream and scope_implies", cfg.Resources)
	}
	cfg.Resources = append(cfg.Resources, Resource{Path: "/mcp"}, Resource{Path: "nope", Backend: Backend{Upstream: "ftp://x"}})
	cfg.Upstream = "http://127.0.0.1:1/mcp"
	err = cfg.Validate()
	for _, want := range []string{"resources[2].path", "resources[3].path", "resources[3].upstream", "give each resource its own"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// A backend per resource: an upstream or a stdio command, identity
// settings for an upstream, and a tool policy; every mistake is named with
// its place.
func TestBackendsAndToolPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
audit_log: /var/log/mcpgate/audit.jsonl
resources:
  - path: /everything/mcp
    stdio: npx -y "@modelcontextprotocol/server-everything" stdio
    stdio_env: [DEBUG=1]
    stdio_max_processes: 4
    stdio_idle_timeout: 5m
    tool_policy:
      default: deny
      rules:
        - allow: [echo, "get_*"]
        - allow: ["*"]
          groups: [admins]
        - deny: [trigger-long-running-operation]
          scopes: [mcp:limited]
  - path: /api/mcp
    upstream: http://127.0.0.1:3001/mcp
    identity_token: true
    identity_headers: {user: X-Remote-User, email: "-"}
`), 0o600)
	cfg, err := Load([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ev, api := cfg.Resources[0], cfg.Resources[1]
	if ev.Stdio == "" || ev.StdioMaxProcesses != 4 || time.Duration(ev.StdioIdleTimeout) != 5*time.Minute || ev.StdioEnv[0] != "DEBUG=1" ||
		ev.ToolPolicy == nil || ev.ToolPolicy.Default != "deny" || len(ev.ToolPolicy.Rules) != 3 || ev.ToolPolicy.Rules[1].Groups[0] != "admins" {
		t.Fatalf("stdio resource: %+v, want its stdio settings and a deny-by-default policy of 3 rules", ev)
	}
	if !api.IdentityToken || api.IdentityHeaders.User != "X-Remote-User" || api.IdentityHeaders.Email != "-" || cfg.AuditLog == "" {
		t.Fatalf("upstream resource: %+v, want identity_token, renamed user and dropped email headers, and an audit_log", api)
	}

	bad := []Resource{
		{Path: "/a", Backend: Backend{Upstream: "http://127.0.0.1:1/mcp", Stdio: "server"}},
		{Path: "/b", Backend: Backend{Stdio: `server "unbalanced`}},
		{Path: "/c", Backend: Backend{StdioEnv: []string{"A=1"}}},
		{Path: "/d", Backend: Backend{Stdio: "server", StdioEnv: []string{"MCPGATE_USER=admin"}}},
		{Path: "/e", Backend: Backend{Stdio: "server", IdentityToken: true}},
		{Path: "/f", Backend: Backend{Upstream: "http://127.0.0.1:1/mcp", IdentityHeaders: IdentityHeaders{User: "Authorization"}}},
		{Path: "/g", Backend: Backend{ToolPolicy: &policy.Policy{Default: "maybe"}}},
		{Path: "/h", ScopeImplies: map[string][]string{"admin": {"offline_access"}}},
		{Path: "/i", Backend: Backend{Stdio: "server", StdioIsolation: "partial"}},
		{Path: "/j", Backend: Backend{Stdio: "server", StdioReadPaths: []string{"relative"}}},
		{Path: "/k", Backend: Backend{Stdio: "server", StdioUIDRange: "0-100"}},
		{Path: "/l", Backend: Backend{StdioUIDRange: "off"}},
		{Path: "/m", Backend: Backend{Stdio: "server", StdioIsolation: "none", StdioReadPaths: []string{"/opt"}}},
		{Path: "/n", Backend: Backend{Stdio: "server", StdioIsolation: "none", StdioUIDRange: "2000000-2000010"}},
	}
	cfg.Resources = bad
	err = cfg.Validate()
	for _, want := range []string{"resources[0].upstream, resources[0].stdio", "resources[1].stdio", "resources[2].stdio_env: set only with stdio",
		"resources[3].stdio_env", "resources[4].identity_token", "resources[5].identity_headers", "resources[6].tool_policy",
		"resources[7].scope_implies", "resources[8].stdio_isolation", "resources[9].stdio_read_paths", "resources[10].stdio_uid_range",
		"resources[11].stdio_uid_range: set only with stdio", "resources[12].stdio_isolation: none", "resources[13].stdio_isolation: none"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

func TestTopLevelBackendFlags(t *testing.T) {
	cfg, err := Load([]string{"--stdio", "python3 server.py --flag 'a b'", "--audit-log", "/tmp/a.jsonl"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Stdio != "python3 server.py --flag 'a b'" || cfg.AuditLog != "/tmp/a.jsonl" {
		t.Fatalf("%+v, want the stdio command and audit_log of the flags", cfg)
	}
	cfg, err = Load([]string{"--upstream", "http://127.0.0.1:3000/mcp", "--identity-token"}, env(map[string]string{"MCPGATE_AUDIT_LOG": "/x"}))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IdentityToken || cfg.AuditLog != "/x" || cfg.Validate() != nil {
		t.Fatalf("%+v, want identity_token from its flag, audit_log from the environment, and valid", cfg)
	}
	cfg.Resources = []Resource{{Path: "/other"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "give each resource its own") {
		t.Fatalf("top-level backend with a resources list: %v, want \"give each resource its own\"", err)
	}
}

// upstream_transport: sse bridges a legacy HTTP+SSE upstream; it is set
// in the file, by flag or by environment, and needs an upstream.
func TestUpstreamTransport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
resources:
  - path: /legacy/mcp
    upstream: http://127.0.0.1:3002/sse
    upstream_transport: sse
    identity_token: true
  - path: /modern/mcp
    upstream: http://127.0.0.1:3001/mcp
    upstream_transport: streamable-http
`), 0o600)
	cfg, err := Load([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if r := cfg.Resources[0]; r.UpstreamTransport != "sse" || r.Upstream != "http://127.0.0.1:3002/sse" || !r.IdentityToken {
		t.Fatalf("legacy resource: %+v, want sse, its SSE URL and identity_token", r)
	}
	if r := cfg.Resources[1]; r.UpstreamTransport != "streamable-http" {
		t.Fatalf("modern resource: %+v, want streamable-http", r)
	}

	cfg, err = Load([]string{"--upstream", "http://127.0.0.1:3000/sse", "--upstream-transport", "sse"}, env(nil))
	if err != nil || cfg.UpstreamTransport != "sse" || cfg.Validate() != nil {
		t.Fatalf("flag: %+v %v, want upstream_transport sse, valid", cfg, err)
	}
	cfg, err = Load(nil, env(map[string]string{"MCPGATE_UPSTREAM": "http://127.0.0.1:3000/sse", "MCPGATE_UPSTREAM_TRANSPORT": "sse"}))
	if err != nil || cfg.UpstreamTransport != "sse" || cfg.Validate() != nil {
		t.Fatalf("environment: %+v %v, want upstream_transport sse, valid", cfg, err)
	}
	// A top-level upstream_transport is a backend setting: not with a
	// resources list.
	cfg.Upstream = ""
	cfg.Resources = []Resource{{Path: "/other"}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "give each resource its own") {
		t.Fatalf("top-level upstream_transport with a resources list: %v, want \"give each resource its own\"", err)
	}

	cfg.Backend = Backend{}
	cfg.Resources = []Resource{
		{Path: "/a", Backend: Backend{UpstreamTransport: "sse"}},
		{Path: "/b", Backend: Backend{Upstream: "http://127.0.0.1:1/sse", UpstreamTransport: "websocket"}},
		{Path: "/c", Backend: Backend{Stdio: "server", UpstreamTransport: "sse"}},
	}
	err = cfg.Validate()
	for _, want := range []string{"resources[0].upstream_transport: sse needs upstream", `resources[1].upstream_transport: "websocket"`, "resources[2].upstream_transport"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}

// The stdio isolation settings reach the library: by default auto and
// the default uid range; off gives no range; the data directory, the
// database and the audit log are private (SEC-20, SEC-22).
func TestStdioIsolationSettings(t *testing.T) {
	cfg, err := Load([]string{"--stdio", "server", "--data-dir", "/var/lib/mcpgate", "--audit-log", "/var/log/mcpgate.jsonl",
		"--stdio-read-path", "/opt/a", "--stdio-read-path", "/opt/b"}, env(nil))
	if err != nil || cfg.Validate() != nil {
		t.Fatal(err, cfg.Validate())
	}
	g, err := cfg.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	st := g.Resources[0].Stdio
	if st.Isolation != "" || st.UIDs != sandbox.DefaultRange || strings.Join(st.ReadPaths, ",") != "/opt/a,/opt/b" ||
		strings.Join(st.Private, ",") != "/var/lib/mcpgate,/var/lib/mcpgate/mcpgate.db,/var/log/mcpgate.jsonl" {
		t.Fatalf("stdio options %+v, want auto, the default range, both read paths and the private paths", st)
	}
	cfg, err = Load([]string{"--stdio", "server"}, env(map[string]string{"MCPGATE_STDIO_UID_RANGE": "off", "MCPGATE_STDIO_ISOLATION": "none"}))
	if err != nil || cfg.Validate() != nil {
		t.Fatal(err, cfg.Validate())
	}
	if g, err = cfg.Gateway(); err != nil || !g.Resources[0].Stdio.UIDs.IsZero() || g.Resources[0].Stdio.Isolation != "none" {
		t.Fatalf("%+v %v, want no uid range and isolation none", g.Resources[0].Stdio, err)
	}
}

// SEC-20: the configuration file and the files secrets are read from are
// private too: a stdio server must not read the local users' passwords
// or a client secret from them.
func TestStdioPrivateHoldsConfigAndSecretFiles(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgate.yaml")
	secret := filepath.Join(dir, "github.secret")
	os.WriteFile(secret, []byte("s3cret"), 0o600)
	os.WriteFile(file, []byte("stdio: server\ngithub_client_id: id\ngithub_client_secret_file: "+secret+"\n"), 0o600)
	cfg, err := Load([]string{"--config", file, "--data-dir", "/var/lib/mcpgate"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	g, err := cfg.Gateway()
	if err != nil {
		t.Fatal(err)
	}
	private := strings.Join(g.Resources[0].Stdio.Private, ",")
	for _, want := range []string{file, secret} {
		if !strings.Contains(private, want) {
			t.Errorf("private paths %q, want %s among them", private, want)
		}
	}
}

// SEC-10: introspection_clients names pre-registered clients with a secret.
func TestIntrospectionClients(t *testing.T) {
	for name, tc := range map[string]struct {
		clients []StaticClient
		ok      bool
	}{
		"with a secret":      {[]StaticClient{{ID: "rs", Secret: "s", RedirectURIs: []string{"https://rs.example/cb"}}}, true},
		"with a secret file": {[]StaticClient{{ID: "rs", SecretFile: "/run/rs", RedirectURIs: []string{"https://rs.example/cb"}}}, true},
		"public":             {[]StaticClient{{ID: "rs", RedirectURIs: []string{"https://rs.example/cb"}}}, false},
		"not a client":       {nil, false},
	} {
		cfg := Defaults()
		cfg.Clients = tc.clients
		cfg.IntrospectionClients = []string{"rs"}
		err := cfg.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "introspection_clients")) {
			t.Errorf("%s: %v, want ok=%v", name, err, tc.ok)
		}
	}
}

// SEC-14: unused_client_expiry is off or at least a day.
func TestUnusedClientExpiry(t *testing.T) {
	for text, ok := range map[string]bool{"2160h": true, "24h": true, "off": true, "23h": false, "1m": false} {
		cfg, err := Load([]string{"--unused-client-expiry", text}, env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if (err == nil) != ok {
			t.Errorf("unused_client_expiry %s: %v, want ok=%v", text, err, ok)
		}
	}
	cfg := Defaults()
	g, err := cfg.Gateway()
	if err != nil || g.UnusedClientExpiry != 90*24*time.Hour {
		t.Errorf("default unused_client_expiry: %v, %v; want 90 days", g.UnusedClientExpiry, err)
	}
	cfg.UnusedClientExpiry = off
	if g, _ := cfg.Gateway(); g.UnusedClientExpiry >= 0 {
		t.Errorf("unused_client_expiry off: %v, want negative (mcpgate.Config's off)", g.UnusedClientExpiry)
	}
}

// RT-3: upstream_recheck is off or at most a day; 1h by default.
func TestUpstreamRecheck(t *testing.T) {
	for text, ok := range map[string]bool{"1h": true, "1s": true, "24h": true, "off": true, "25h": false} {
		cfg, err := Load([]string{"--upstream-recheck", text}, env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if (err == nil) != ok {
			t.Errorf("upstream_recheck %s: %v, want ok=%v", text, err, ok)
		}
	}
	cfg := Defaults()
	g, err := cfg.Gateway()
	if err != nil || g.UpstreamRecheck != time.Hour {
		t.Errorf("default upstream_recheck: %v, %v; want 1h", g.UpstreamRecheck, err)
	}
	cfg.UpstreamRecheck = off
	if g, _ := cfg.Gateway(); g.UpstreamRecheck >= 0 {
		t.Errorf("upstream_recheck off: %v, want negative (mcpgate.Config's off)", g.UpstreamRecheck)
	}
}

// github_groups is off unless set, by the flag, the variable or the file.
func TestGitHubGroupsSetting(t *testing.T) {
	if cfg, err := Load(nil, env(nil)); err != nil || cfg.GitHubGroups {
		t.Errorf("default github_groups = %v (%v), want off", cfg.GitHubGroups, err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{args: []string{"--github-groups"}},
		{env: map[string]string{"MCPGATE_GITHUB_GROUPS": "true"}},
	} {
		if cfg, err := Load(tc.args, env(tc.env)); err != nil || !cfg.GitHubGroups {
			t.Errorf("%q %q: github_groups = %v (%v), want on", tc.args, tc.env, cfg.GitHubGroups, err)
		}
	}
}

// A PostgreSQL store is a postgres:// URL naming a host, from the flag or
// MCPGATE_STORE; a bad one is refused without echoing it (it may hold a
// password).
func TestPostgresStore(t *testing.T) {
	const pw = "pg-s3cret"
	for _, dsn := range []string{
		"postgres://mcpgate:" + pw + "@db.internal/mcpgate",
		"postgresql://mcpgate:" + pw + "@10.0.0.5:5433/mcpgate?sslmode=verify-full&pool_max_conns=20",
	} {
		cfg, err := Load([]string{"--store", dsn}, env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Errorf("--store %s: %v, want it accepted", strings.ReplaceAll(dsn, pw, "PW"), err)
			continue
		}
		if cfg.StoreDSN() != dsn {
			t.Errorf("StoreDSN = %q, want the DSN as given", cfg.StoreDSN())
		}
		cfg, err = Load(nil, env(map[string]string{"MCPGATE_STORE": dsn}))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil || cfg.StoreDSN() != dsn {
			t.Errorf("MCPGATE_STORE: %v, %q; want the DSN as given", err, cfg.StoreDSN())
		}
	}
	for _, dsn := range []string{
		"postgres://mcpgate:" + pw + "@/mcpgate", // no host
		"postgres://mcpgate:" + pw + "@db:port/mcpgate",
		"postgres://mcpgate:" + pw + "@db.internal/mcpgate#frag",
		"postgres://mcpgate:" + pw + "@db.internal/mcpgate?sslmode=verify-full\n", // a secret written with echo
		"Postgres://mcpgate:" + pw + "@db.internal/mcpgate",                       // a scheme in capitals
		"host=db.internal user=mcpgate password=" + pw + " dbname=mcpgate",        // libpq's keyword form
	} {
		cfg := Defaults()
		cfg.Store = dsn
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "store:") {
			t.Errorf("store %s: %v, want a store problem", strings.ReplaceAll(dsn, pw, "PW"), err)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("the problem echoes the password: %v", err)
		}
		if strings.HasSuffix(dsn, "\n") && !strings.Contains(err.Error(), "line break") {
			t.Errorf("a store address ending with a newline: %v, want the problem named", err)
		}
	}
}

// key_rotation is off or at least an hour, 30 days by default; the secret
// key file is one of the files no stdio server may read.
func TestKeyRotationAndSecretKeyFile(t *testing.T) {
	for text, ok := range map[string]bool{"1h": true, "720h": true, "off": true, "59m": false} {
		cfg, err := Load([]string{"--key-rotation", text}, env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if (err == nil) != ok {
			t.Errorf("key_rotation %s: %v, want ok=%v", text, err, ok)
		}
	}
	cfg := Defaults()
	g, err := cfg.Gateway()
	if err != nil || g.KeyRotation != 30*24*time.Hour {
		t.Errorf("default key_rotation: %v, %v; want 720h", g.KeyRotation, err)
	}
	cfg.KeyRotation = off
	if g, _ := cfg.Gateway(); g.KeyRotation >= 0 {
		t.Errorf("key_rotation off: %v, want negative (mcpgate.Config's off)", g.KeyRotation)
	}
	loaded, err := Load(nil, env(map[string]string{"MCPGATE_SECRET_KEY_FILE": "/run/secrets/mcpgate.key"}))
	if err != nil || loaded.SecretKeyFile != "/run/secrets/mcpgate.key" {
		t.Fatalf("MCPGATE_SECRET_KEY_FILE: %v", err)
	}
	if !slices.Contains(loaded.private(), "/run/secrets/mcpgate.key") {
		t.Errorf("private paths %v lack the secret key file", loaded.private())
	}
}

// An upstream, public or provider URL with credentials in it is refused
// without echoing the password, and one refused for another reason
// echoes no user, password or query either: the message goes to stderr
// and logs (SEC-79). Fails before for the issuers (accepted with a user,
// echoed whole) and for the query of an upstream or public URL.
func TestSEC79_URLWithPasswordRefusedWithoutEcho(t *testing.T) {
	const pw = "up-s3cret"
	for _, args := range [][]string{
		{"--upstream", "http://svc:" + pw + "@127.0.0.1:3000/mcp"},
		{"--public-url", "https://gw:" + pw + "@mcp.example.com"},
		{"--oidc-issuer", "https://alice:" + pw + "@idp.example.com", "--oidc-client-id", "x"},
		{"--oidc-issuer", "http://alice:" + pw + "@idp.example.com", "--oidc-client-id", "x"},
	} {
		cfg, err := Load(args, env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil {
			t.Errorf("%s with a password: accepted, want refused", args[0])
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: the error echoes the password: %v", args[0], err)
		}
		if !strings.Contains(err.Error(), "user or password") {
			t.Errorf("%s: %v, want it to say a user or password is not allowed", args[0], err)
		}
	}
	for _, args := range [][]string{
		{"--upstream", "ws://mcp.internal/mcp?api_key=" + pw},
		{"--public-url", "https://mcp.example.com/?token=" + pw},
		{"--oidc-issuer", "https://idp.example.com/?key=" + pw, "--oidc-client-id", "x"},
		{"--oidc-issuer", "ftp://svc:" + pw + "@idp.example.com", "--oidc-client-id", "x"},
	} {
		cfg, err := Load(args, env(nil))
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || strings.Contains(err.Error(), pw) {
			t.Errorf("%s %s: %v, want it refused without the secret", args[0], args[1], err)
		}
	}
}

// SEC-22: each stdio resource keeps its people's homes in a directory of
// its own under data_dir/stdio: a path that names none ("/_"), which would
// put them where the resources' directories are, or two paths that name
// one ("/a/b", "/a_b") are refused; an upstream resource needs none.
func TestStdioDirectoryNamedAndOwn(t *testing.T) {
	cfg := Defaults()
	cfg.Resources = []Resource{
		{Path: "/_", Backend: Backend{Stdio: "server"}},
		{Path: "/a/b", Backend: Backend{Stdio: "server"}},
		{Path: "/a_b", Backend: Backend{Stdio: "server"}},
		{Path: "//", Backend: Backend{Upstream: "http://127.0.0.1:1/mcp"}},
		{Path: "/c", Backend: Backend{Stdio: "server"}},
	}
	err := cfg.Validate()
	for _, want := range []string{`resources[0].path: "/_" names no directory`, `resources[2].path: "/a_b" and "/a/b" would keep their stdio servers' homes in one directory`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	for _, ok := range []string{"resources[3]", "resources[4]", "resources[1]"} {
		if err != nil && strings.Contains(err.Error(), ok+".path") {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
}

// A listen address on every interface (":8080", 0.0.0.0, [::]) without
// public_url is refused as any non-loopback one is: clients elsewhere
// would reach the sign-in pages over plain HTTP. Fails before this change
// for ":8080", which was taken for loopback.
func TestListenOnEveryInterfaceNeedsPublicURL(t *testing.T) {
	for _, listen := range []string{":8080", "0.0.0.0:8080", "[::]:8080", "192.0.2.1:8080"} {
		cfg, err := Load([]string{"--listen", listen, "--store", "memory"}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "not a loopback address; set public_url") {
			t.Errorf("listen %s without public_url: %v, want it refused", listen, err)
		}
	}
	for _, listen := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "127.0.0.1:0"} {
		cfg, err := Load([]string{"--listen", listen, "--store", "memory"}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil && strings.Contains(err.Error(), "listen") {
			t.Errorf("listen %s: %v, want it accepted", listen, err)
		}
	}
	// A port that is no number is the problem said, not a port in use or
	// an address off loopback.
	for _, listen := range []string{"127.0.0.1:9000x", ":9000x", "127.0.0.1:65536", "127.0.0.1:"} {
		cfg, err := Load([]string{"--listen", listen, "--store", "memory"}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "the port a number up to 65535") || strings.Contains(err.Error(), "loopback") {
			t.Errorf("listen %s: %v, want its port refused", listen, err)
		}
	}
}

// SEC-138: trusted_proxies takes networks and single addresses, and
// refuses anything else by its value.
func TestTrustedProxies(t *testing.T) {
	g := validGateway(t, []string{"--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.1.2.3/8", "--trusted-proxy", "::1"}, nil)
	var got []string
	for _, p := range g.TrustedProxies {
		got = append(got, p.String())
	}
	if want := []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128"}; !slices.Equal(got, want) {
		t.Errorf("TrustedProxies %v, want %v", got, want)
	}
	cfg := Defaults()
	cfg.TrustedProxies = []string{"nginx", "10.0.0.0/33", "fe80::1%eth0"}
	err := cfg.Validate()
	for _, bad := range cfg.TrustedProxies {
		if err == nil || !strings.Contains(err.Error(), `trusted_proxies: "`+bad+`" is not an address or a network`) {
			t.Errorf("trusted_proxies %q: %v, want it refused", bad, err)
		}
	}
}

// SEC-140: a configuration file's $VAR and ${VAR} must be set: one unset or empty,
// or a $ that names none (a password's "$1"), stops the load with its
// line, rather than leave a password shorter than written or a setting
// empty. $$ is a literal $. Fails before this change: "k9$1q$2w-Long"
// loaded as "k9qw-Long", and an unset ${GH_SECRET} as "".
func TestSEC140_FileVariablesMustBeSet(t *testing.T) {
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(body), 0o600)
		return path
	}
	vars := env(map[string]string{"GH_ID": "Iv1.abc", "EMPTY": ""})
	for body, want := range map[string]string{
		"github_client_id: ${GH_ID}\ngithub_client_secret: ${GH_SECRET}\n": "line 2: $GH_SECRET is not set",
		"log_level: info\nlocal_users: [\"alice:k9$1q$2w-Long\"]\n":        "line 2: a $ that names no variable",
		"github_client_id: $EMPTY\n":                                       "line 1: $EMPTY is not set (or empty)",
		"github_client_id: ${GH_ID\n":                                      "line 1: a $ that names no variable",
	} {
		_, err := Load([]string{"--config", write(body)}, vars)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("file %q: %v, want an error with %q", body, err, want)
		}
	}
	cfg, err := Load([]string{"--config", write("github_client_id: ${GH_ID}-$$1\n")}, vars)
	if err != nil || cfg.GitHubClientID != "Iv1.abc-$1" {
		t.Fatalf("set variable and $$: %v %q, want Iv1.abc-$1", err, cfg.GitHubClientID)
	}
}

// SEC-141: the flags that hold a secret in clear are named, for serve to
// warn of them (every user of the machine can read a command line): a
// client secret, a local account's password but not its bcrypt hash, a
// store DSN's password; the same secrets from the environment are not.
func TestSEC141_SecretsOnCommandLine(t *testing.T) {
	cfg, err := Load([]string{"--local-user", "alice:hunter2-long", "--github-client-secret", "s", "--store", "postgres://u:pw@db/x",
		"--scope", "mcp", "--stdio-env", "GITHUB_TOKEN=ghp_x"}, env(map[string]string{"MCPGATE_OIDC_CLIENT_SECRET": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.SecretsOnCommandLine(), []string{"--github-client-secret", "--local-user", "--stdio-env", "--store"}; !slices.Equal(got, want) {
		t.Errorf("SecretsOnCommandLine() = %v, want %v", got, want)
	}
	cfg, err = Load([]string{"--local-user", "alice:$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "--store", "postgres://u@db/x"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.SecretsOnCommandLine(); len(got) != 0 {
		t.Errorf("a bcrypt hash and a DSN without password: %v, want none", got)
	}
	// Fails before: each of these was taken for no secret.
	for _, args := range [][]string{
		{"--store", "postgres://u@db/x?password=pw"},
		{"--store", "postgres://u@db/x?sslkey=/k&sslpassword=pw"},
		{"--local-user", "alice:$2secretpassword"},
		{"--upstream", "https://mcp.example.com/mcp?access_token=pw"},
	} {
		cfg, err := Load(args, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.SecretsOnCommandLine(); !slices.Equal(got, args[:1]) {
			t.Errorf("%q: %v, want %s named", args, got, args[0])
		}
	}
}

// SEC-170: a trusted_proxies network wider than /8 (IPv4) or /32 (IPv6)
// is refused, unless it lies within private, loopback, link-local or
// CGNAT space: a client whose own address it holds is taken for a proxy
// and named by the X-Forwarded-For it writes. Fails before this change:
// 0.0.0.0/0 and ::/0 were taken.
func TestSEC170_TrustedProxiesNotTooWide(t *testing.T) {
	for _, wide := range []string{"0.0.0.0/0", "::/0", "0.0.0.0/1", "8.0.0.0/7", "2000::/3", "2001:db8::/31", "fc00::/6", "::ffff:0.0.0.0/0", "::ffff:0.0.0.0/96", "::ffff:8.0.0.0/103"} {
		cfg := Defaults()
		cfg.TrustedProxies = []string{wide}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `trusted_proxies: "`+wide+`" is too wide`) {
			t.Errorf("trusted_proxies %s: %v, want it refused as too wide", wide, err)
		}
	}
	for _, ok := range []string{"10.0.0.0/8", "11.0.0.0/8", "100.64.0.0/10", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
		"127.0.0.0/8", "203.0.113.7", "2001:db8::/32", "fc00::/7", "fd00::/8", "fe80::/10", "::1", "::ffff:10.0.0.0/104", "::ffff:203.0.113.7"} {
		cfg := Defaults()
		cfg.TrustedProxies = []string{ok}
		if err := cfg.Validate(); err != nil {
			t.Errorf("trusted_proxies %s: %v, want it accepted", ok, err)
		}
	}
}

// SEC-172: a variable's value is taken as it is, once YAML has read the
// file: a line break in it adds no key, " #" does not cut it, quotes and
// backslashes are part of it, and a plain ${N} is still typed by its
// value; comments are not expanded. Unknown keys are still refused, by
// their line. Fails before this change: the variable's text was put into
// the file's before YAML read it, so GH_SECRET set admin_groups, the
// password lost " #word", and the comment's $5 stopped the load.
func TestSEC172_VariablesAreValuesNotYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`github_client_id: Iv1.abc
github_client_secret: ${GH_SECRET}
oidc_client_secret: "${QUOTED}"
local_users:
  - name: alice
    password: ${ALICE}
max_groups: ${N}
google_client_secret: ${NULLISH}
`), 0o600)
	vars := env(map[string]string{
		"NULLISH":   "null",
		"GH_SECRET": "s3cret\nadmin_groups: [everyone]",
		"QUOTED":    `a"b\c' #d`,
		"ALICE":     "correct #horse",
		"N":         "50",
	})
	cfg, err := Load([]string{"--config", path}, vars)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GitHubClientSecret != "s3cret\nadmin_groups: [everyone]" || len(cfg.AdminGroups) != 0 {
		t.Errorf("github_client_secret %q, admin_groups %q: want the variable's value whole, and no admin group", cfg.GitHubClientSecret, cfg.AdminGroups)
	}
	if cfg.OIDCClientSecret != `a"b\c' #d` {
		t.Errorf("oidc_client_secret %q, want the variable's value as it is", cfg.OIDCClientSecret)
	}
	if want := (LocalUsers{"alice:correct #horse"}); !slices.Equal(cfg.LocalUsers, want) {
		t.Errorf("local_users %q, want %q", cfg.LocalUsers, want)
	}
	if cfg.MaxGroups != 50 {
		t.Errorf("max_groups %d, want 50 from ${N}", cfg.MaxGroups)
	}
	if cfg.GoogleClientSecret != "null" {
		t.Errorf("google_client_secret %q from a variable that reads null, want it as it is, not nothing", cfg.GoogleClientSecret)
	}
	os.WriteFile(path, []byte("github_client_secret: |\n  ${GH_SECRET}\n  more\nlistne: ${N}\n"), 0o600)
	if _, err := Load([]string{"--config", path}, vars); err == nil || !strings.Contains(err.Error(), "listne ("+path+", line 4): unknown key") {
		t.Errorf("an unknown key after a variable: %v, want it named by its line", err)
	}
	os.WriteFile(path, []byte("# costs $5, and $$ or ${NOT_SET}\nlog_level: debug\n"), 0o600)
	if cfg, err := Load([]string{"--config", path}, vars); err != nil || cfg.LogLevel != "debug" {
		t.Errorf("a $ in a comment: %v, want the file read", err)
	}
}

// SEC-173: MCPGATE_LOCAL_USERS with a comma in it gives every password as
// a bcrypt hash: a comma separates its accounts, and a clear password may
// hold one, so "alice:correct,horse:battery staple" is refused, naming
// what to use instead and no password, rather than read as the accounts
// alice and horse. A flag's comma stays in the password. Fails before
// this change: alice and horse were made.
func TestSEC173_LocalUsersVariableWithCommaNeedsHashes(t *testing.T) {
	const hash = "$2b$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	for _, v := range []string{"alice:correct,horse:battery staple", "alice:s3cr,3t", "alice:pw,", "alice:" + hash + ",bob:pw", "alice[admins,devs]:pw"} {
		cfg, err := Load(nil, env(map[string]string{"MCPGATE_LOCAL_USERS": v}))
		if err == nil || !strings.Contains(err.Error(), "MCPGATE_LOCAL_USERS: its commas separate accounts") || !strings.Contains(err.Error(), "--local-user") {
			t.Errorf("MCPGATE_LOCAL_USERS=%q: %v, want it refused", v, err)
			continue
		}
		if len(cfg.LocalUsers) != 0 {
			t.Errorf("MCPGATE_LOCAL_USERS=%q: local_users %q, want none", v, cfg.LocalUsers)
		}
		for _, secret := range []string{"correct", "battery", "s3cr"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("the error shows a password (%q): %v", secret, err)
			}
		}
	}
	cfg, err := Load([]string{"--local-user", "alice:correct,horse:battery staple"}, env(nil))
	if err != nil || !slices.Equal(cfg.LocalUsers, []string{"alice:correct,horse:battery staple"}) {
		t.Errorf("--local-user with a comma: %v %q, want one account with the comma in its password", err, cfg.LocalUsers)
	}
}

// SEC-174: next to a resources list, a top-level scopes, optional_scopes
// or scope_implies is refused, as the backend settings are, whether the
// file, a variable or a flag gives it: the top level's are not used, and
// an operator who wrote them there would take each resource for guarded
// by them. scopes' own default is not refused. Fails before this change:
// each was silently ignored.
func TestSEC174_TopLevelScopesRefusedWithResources(t *testing.T) {
	write := func(body string) string {
		path := filepath.Join(t.TempDir(), "c.yaml")
		os.WriteFile(path, []byte(body), 0o600)
		return path
	}
	const list = "resources:\n  - path: /a/mcp\n    scopes: [a]\n"
	for _, tc := range []struct {
		args []string
		vars map[string]string
		key  string
	}{
		{args: []string{"--config", write("scopes: [mcp]\n" + list)}, key: "scopes"},
		{args: []string{"--config", write("optional_scopes: [mcp:write]\n" + list)}, key: "optional_scopes"},
		{args: []string{"--config", write("scope_implies: {mcp:admin: [mcp]}\n" + list)}, key: "scope_implies"},
		{args: []string{"--config", write(list), "--scope", "mcp"}, key: "scopes"},
		{args: []string{"--config", write(list), "--optional-scope", "mcp:write"}, key: "optional_scopes"},
		{args: []string{"--config", write(list)}, vars: map[string]string{"MCPGATE_SCOPES": "mcp"}, key: "scopes"},
	} {
		cfg, err := Load(tc.args, env(tc.vars))
		if err != nil {
			t.Fatal(err)
		}
		want := tc.key + ": with a resources list, give each resource its own: set it on the resource (resources[N]." + tc.key + ")"
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q %v: %v, want %q", tc.args, tc.vars, err, want)
		}
	}
	cfg, err := Load([]string{"--config", write(list)}, env(nil))
	if err != nil || cfg.Validate() != nil {
		t.Errorf("a resources list with the default scopes: %v %v, want it valid", err, cfg.Validate())
	}
}

// SEC-175: the file's whole-number settings are read in decimal, as the
// flags and variables read them: 010 is 10, never YAML's octal 8, and
// 0x10, 0o10 and 1_000 are refused by their key. Fails before this
// change: max_groups: 010 was 8, and 0x10 was 16.
func TestSEC175_FileCountsAreDecimal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`max_groups: 010
max_sessions_per_user: 010
max_streams_per_user: 012
rate_limits:
  - {tools: ["*"], per: user, rate: 5/s, burst: 010}
resources:
  - path: /a/mcp
    stdio: server
    stdio_max_processes: 010
`), 0o600)
	cfg, err := Load([]string{"--config", path}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxGroups != 10 || cfg.MaxSessionsPerUser != 10 || cfg.MaxStreamsPerUser != 12 || cfg.RateLimits[0].Burst != 10 || cfg.Resources[0].StdioMaxProcesses != 10 {
		t.Errorf("max_groups %d, max_sessions_per_user %d, max_streams_per_user %d, burst %d, stdio_max_processes %d: want 10, 10, 12, 10, 10",
			cfg.MaxGroups, cfg.MaxSessionsPerUser, cfg.MaxStreamsPerUser, cfg.RateLimits[0].Burst, cfg.Resources[0].StdioMaxProcesses)
	}
	if flagged, err := Load([]string{"--max-groups", "010"}, env(nil)); err != nil || flagged.MaxGroups != cfg.MaxGroups {
		t.Errorf("--max-groups 010: %v %v, want what the file reads, 10", flagged.MaxGroups, err)
	}
	os.WriteFile(path, []byte("max_groups: 0x10\nmax_sessions_per_user: 0o10\nmax_streams_per_user: 1_000\nmax_connections: 0x10\n"), 0o600)
	_, err = Load([]string{"--config", path}, env(nil))
	for _, want := range []string{
		"max_groups (" + path + `, line 1): "0x10" is not a whole number`,
		"max_sessions_per_user (" + path + `, line 2): "0o10" is not a whole number`,
		"max_streams_per_user (" + path + `, line 3): "1_000" is not a whole number`,
		"max_connections (" + path + `, line 4): "0x10" is not a whole number above 0 (or off)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v, want %q", err, want)
		}
	}
}

// An MCPGATE_ variable that mcpgate does not read is reported, so that
// serve can warn of it: a misspelt name, or a file-only setting's; the
// settings' variables, their other names, and the variables that mean
// something else (the file's path, a stdio server's caller) are not.
func TestUnknownVariables(t *testing.T) {
	got := UnknownVariables([]string{"MCPGATE_LOCAL_USER=x:yyyyyyyy", "MCPGATE_LOCAL_USERS=a:b", "MCPGATE_LISTN=:1", "MCPGATE_RESOURCES=x",
		"MCPGATE_CONFIG=c.yaml", "MCPGATE_USER_GROUPS=a", "MCPGATE_STORE=memory", "HOME=/root", "MCPGATE_TOOLS=/t"})
	if want := []string{"MCPGATE_LOCAL_USER", "MCPGATE_LISTN", "MCPGATE_RESOURCES"}; !slices.Equal(got, want) {
		t.Errorf("UnknownVariables = %q, want %q", got, want)
	}
}

// SEC-200: a cimd_deny_hosts entry that matches no host as written is
// refused with the form to write, and so is a cimd_allow_hosts one; host
// names, and suffixes that begin with a dot, are taken. Fails before:
// every entry was taken, and the ones below blocked nothing.
func TestSEC200_CIMDHostsAreHostNames(t *testing.T) {
	cfg := Defaults()
	cfg.CIMDDenyHosts = []string{"evil.example", ".evil.example", "XN--80AK6AA92E.example", "*.evil.example", "evil.example:443",
		"https://evil.example", "evil.example.", "évil.example", ""}
	cfg.CIMDAllowHosts = []string{"docs.test", ".docs.test", "docs.test:8443", "::1", "127.0.0.1"}
	err := cfg.Validate()
	for _, bad := range []string{`"*.evil.example"`, `"evil.example:443"`, `"https://evil.example"`, `"evil.example."`, `"évil.example"`, `""`} {
		if err == nil || !strings.Contains(err.Error(), "cimd_deny_hosts: "+bad+" is no host name") {
			t.Errorf("cimd_deny_hosts %s: %v, want it refused", bad, err)
		}
	}
	for _, bad := range []string{`".docs.test"`, `"docs.test:8443"`} {
		if err == nil || !strings.Contains(err.Error(), "cimd_allow_hosts: "+bad+" is no host name") {
			t.Errorf("cimd_allow_hosts %s: %v, want it refused", bad, err)
		}
	}
	for _, good := range []string{`"evil.example"`, `".evil.example"`, `"XN--80AK6AA92E.example"`, `"docs.test"`, `"::1"`, `"127.0.0.1"`} {
		if err != nil && strings.Contains(err.Error(), good+" is no host name") {
			t.Errorf("%s refused: %v", good, err)
		}
	}
}
