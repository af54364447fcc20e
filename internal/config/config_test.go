package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaultsAreValid(t *testing.T) {
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("`mcpgate serve` with no arguments must work: %v", err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.StoreDSN() != "sqlite:mcpgate-data/mcpgate.db" || cfg.AccessTokenTTL != time.Hour {
		t.Fatalf("defaults: %+v", cfg)
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
local_users: ["alice:$$2b$$10$$abcdefghijklmnopqrstuu"]
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
		t.Errorf("file values: %+v", cfg)
	}
	if cfg.LocalUsers[0] != "alice:$2b$10$abcdefghijklmnopqrstuu" {
		t.Errorf("$$ must be a literal $: %q", cfg.LocalUsers[0])
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLocalUsersFromEnvAndFlags(t *testing.T) {
	cfg, err := Load(nil, env(map[string]string{"MCPGATE_LOCAL_USERS": "alice:pw1, bob:pw:2"}))
	if err != nil || len(cfg.LocalUsers) != 2 || cfg.LocalUsers[1] != "bob:pw:2" {
		t.Fatalf("%v %q", err, cfg.LocalUsers)
	}
	cfg, err = Load([]string{"--local-user", "a:1", "--local-user", "b:2"}, env(nil))
	if err != nil || len(cfg.LocalUsers) != 2 {
		t.Fatalf("%v %q", err, cfg.LocalUsers)
	}
}

func TestSeedGitHubVariables(t *testing.T) {
	cfg, err := Load(nil, env(map[string]string{"GITHUB_CLIENT": "id", "GITHUB_SECRET": "sec"}))
	if err != nil || cfg.GitHubClientID != "id" || cfg.GitHubClientSecret != "sec" {
		t.Fatalf("%v %+v", err, cfg)
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
	cfg.AccessTokenTTL = 48 * time.Hour
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

func TestNotYetAvailableBackendsAreRefused(t *testing.T) {
	cfg := Defaults()
	cfg.Stdio = "npx some-server"
	cfg.OIDCIssuer = "https://idp.example"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "stdio") || !strings.Contains(err.Error(), "oidc") {
		t.Fatalf("a half-configured server must not start: %v", err)
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
			t.Errorf("upstream %q: %v", u, err)
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
		t.Fatalf("%+v", cfg.Resources)
	}
	cfg.Resources = append(cfg.Resources, Resource{Path: "/mcp"}, Resource{Path: "nope", Upstream: "ftp://x"})
	cfg.Upstream = "http://127.0.0.1:1/mcp"
	err = cfg.Validate()
	for _, want := range []string{"resources[2].path", "resources[3].path", "resources[3].upstream", "own upstream"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
}
