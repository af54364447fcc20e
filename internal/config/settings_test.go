package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sample is a value for a setting of each type, as a user writes it, and
// what it decodes to.
func sample(t *testing.T, s *setting) (string, any) {
	switch s.typ {
	case reflect.TypeFor[string]():
		return "x-" + s.key, "x-" + s.key
	case reflect.TypeFor[[]string]():
		return "a-" + s.key, []string{"a-" + s.key}
	case reflect.TypeFor[LocalUsers](): // the file checks each as it reads it
		return "a:" + s.key, LocalUsers{"a:" + s.key}
	case reflect.TypeFor[bool]():
		return "true", true
	case reflect.TypeFor[Count]():
		return "7", Count(7)
	case reflect.TypeFor[Duration]():
		return "7m", Duration(7 * time.Minute)
	case reflect.TypeFor[Limit]():
		return "7", Limit(7)
	}
	t.Fatalf("%s: no sample for %v", s.key, s.typ)
	return "", nil
}

// The table drives all three sources: every setting that can be a flag is
// read from its flag, its MCPGATE_ variable and its file key, and lands in
// its field.
func TestEverySettingFromEverySource(t *testing.T) {
	for i := range settings {
		s := &settings[i]
		if s.fileOnly() {
			continue
		}
		t.Run(s.key, func(t *testing.T) {
			text, want := sample(t, s)
			if strings.HasSuffix(s.key, "_secret_file") {
				// Read at once: the secret lands in its setting.
				text = filepath.Join(t.TempDir(), "secret")
				want = text
				if err := os.WriteFile(text, []byte("s3cret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(t.TempDir(), "c.yaml")
			yamlText := text
			if s.typ == reflect.TypeFor[[]string]() || s.typ == reflect.TypeFor[LocalUsers]() {
				yamlText = "[" + text + "]"
			}
			if err := os.WriteFile(file, []byte(s.key+": "+yamlText+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			sources := map[string]func() (*Config, error){
				"flag": func() (*Config, error) { return Load([]string{"--" + s.flag + "=" + text}, env(nil)) },
				"env":  func() (*Config, error) { return Load(nil, env(map[string]string{s.env[0]: text})) },
				"file": func() (*Config, error) { return Load([]string{"--config", file}, env(nil)) },
			}
			for name, load := range sources {
				cfg, err := load()
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if got := s.field(cfg).Interface(); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: %s = %#v, want %#v", name, s.key, got, want)
				}
			}
		})
	}
}

// serve -h names every setting: flag, variable and file key, and the
// file-only ones by key.
func TestUsageListsEverySetting(t *testing.T) {
	u := Usage("mcpgate serve")
	for _, s := range settings {
		want := []string{"  " + s.key + "\n"}
		if !s.fileOnly() {
			want = []string{"--" + s.flag, s.env[0], "file: " + s.key}
		}
		for _, w := range want {
			if !strings.Contains(u, w) {
				t.Errorf("serve -h lacks %q (setting %s)", w, s.key)
			}
		}
	}
}

// The README's configuration table documents every setting.
func TestREADMEListsEverySetting(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	for _, s := range settings {
		want := []string{"`" + s.key + "`"}
		if !s.fileOnly() {
			want = append(want, "`--"+s.flag, "`"+s.env[0])
		}
		for _, w := range want {
			if !strings.Contains(readme, w) {
				t.Errorf("README.md lacks %s (setting %s)", w, s.key)
			}
		}
	}
}

// A later source wins; of two variables for one setting, MCPGATE_'s wins
// over the seed's name; a repeated list flag replaces the file's list.
func TestPrecedenceOfSources(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("scopes: [from-file]\ngithub_client_id: file-id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", file, "--scope", "a", "--scope", "b"}, env(map[string]string{
		"GITHUB_CLIENT": "seed-id", "MCPGATE_GITHUB_CLIENT_ID": "mcpgate-id", "MCPGATE_SCOPES": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.Scopes, ","); got != "a,b" {
		t.Errorf("scopes = %s, want a,b (the flags replace the file and the environment)", got)
	}
	if cfg.GitHubClientID != "mcpgate-id" {
		t.Errorf("github_client_id = %s, want mcpgate-id (MCPGATE_ wins over GITHUB_CLIENT)", cfg.GitHubClientID)
	}
}

// A duration left out takes its default; a 0 written out is refused in
// every source (refresh_grace once read it as off, and must not silently
// read it as the default); off is kept as a negative value, and Validate
// allows it only where something can be turned off.
func TestDurationRule(t *testing.T) {
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(cfg.AccessTokenTTL) != time.Hour || time.Duration(cfg.RefreshTokenTTL) != 720*time.Hour || cfg.StdioIdleTimeout != 0 {
		t.Fatalf("left out: got %v, %v and %v, want the defaults 1h and 720h, and 0 (the library's default) for stdio_idle_timeout",
			cfg.AccessTokenTTL, cfg.RefreshTokenTTL, cfg.StdioIdleTimeout)
	}
	file := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(file, []byte("refresh_grace: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() (*Config, error){
		"flag":     func() (*Config, error) { return Load([]string{"--refresh-grace", "0"}, env(nil)) },
		"flag 0s":  func() (*Config, error) { return Load([]string{"--access-token-ttl", "0s"}, env(nil)) },
		"variable": func() (*Config, error) { return Load(nil, env(map[string]string{"MCPGATE_REFRESH_GRACE": "0"})) },
		"file":     func() (*Config, error) { return Load([]string{"--config", file}, env(nil)) },
	} {
		if _, err := load(); err == nil || !strings.Contains(err.Error(), "leave the setting out") {
			t.Errorf("%s: a 0 written out: %v, want it refused", name, err)
		}
	}
	cfg, err = Load([]string{"--access-token-ttl", "off", "--stdio", "server", "--stdio-idle-timeout", "off"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	for _, want := range []string{"access_token_ttl", "stdio_idle_timeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: off must be refused, got %v", want, err)
		}
	}
	for _, bad := range []string{"-1s", "forever", "1"} {
		if _, err := Load([]string{"--refresh-grace", bad}, env(nil)); err == nil {
			t.Errorf("refresh_grace %q accepted, want an error", bad)
		}
	}
	if got := Duration(-1).String(); got != "off" {
		t.Errorf("off prints as %q, want off", got)
	}
}

// A count that can be turned off takes a whole number above 0 or off; a
// 0 written out is refused, as for durations. The timeouts of SEC-40
// cannot be off, and the header timeout is within the whole request's.
func TestLimitRule(t *testing.T) {
	cfg, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConnections != 0 || cfg.MaxConnectionsPerAddress != 256 ||
		time.Duration(cfg.RequestReadTimeout) != 30*time.Second || time.Duration(cfg.RequestHeaderTimeout) != 10*time.Second {
		t.Fatalf("left out: got %v, %v, %v, %v; want 0 (derived at start), 256, 30s and 10s",
			cfg.MaxConnections, cfg.MaxConnectionsPerAddress, cfg.RequestReadTimeout, cfg.RequestHeaderTimeout)
	}
	cfg, err = Load([]string{"--max-connections-per-address", "off"}, env(map[string]string{"MCPGATE_MAX_CONNECTIONS": "900"}))
	if err != nil || !cfg.MaxConnectionsPerAddress.Off() || cfg.MaxConnections != 900 || cfg.Validate() != nil {
		t.Fatalf("off and 900: got %v and %v (%v); want off and 900, valid", cfg.MaxConnectionsPerAddress, cfg.MaxConnections, err)
	}
	for _, bad := range []string{"0", "-3", "many", "1.5"} {
		if _, err := Load([]string{"--max-connections", bad}, env(nil)); err == nil {
			t.Errorf("max_connections %q accepted, want an error", bad)
		}
	}
	if got := Limit(-1).String(); got != "off" {
		t.Errorf("off prints as %q, want off", got)
	}
	for _, args := range [][]string{
		{"--request-read-timeout", "off"},
		{"--request-header-timeout", "off"},
		{"--request-header-timeout", "1m", "--request-read-timeout", "30s"},
	} {
		cfg, err := Load(args, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "request_") {
			t.Errorf("%v: %v, want it refused", args, err)
		}
	}
}

func TestBoolSettingsRefuseNonsense(t *testing.T) {
	if _, err := Load(nil, env(map[string]string{"MCPGATE_DISABLE_CIMD": "yes please"})); err == nil {
		t.Fatal("MCPGATE_DISABLE_CIMD=\"yes please\" accepted, want an error")
	}
	cfg, err := Load([]string{"--disable-cimd"}, env(nil))
	if err != nil || !cfg.DisableCIMD {
		t.Fatalf("--disable-cimd alone: got %v (%v), want true", cfg.DisableCIMD, err)
	}
}

// Each use of a list flag adds one item, as given: a password may hold a
// comma. Only a variable is a comma-separated list.
func TestListFlagItemsKeepCommas(t *testing.T) {
	cfg, err := Load([]string{"--local-user", "alice:pw1,carol:pw2"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.LocalUsers) != 1 || cfg.LocalUsers[0] != "alice:pw1,carol:pw2" {
		t.Fatalf("local_users %q, want the one user alice with the password pw1,carol:pw2", cfg.LocalUsers)
	}
	cfg, err = Load([]string{"--local-user", "a:x,y", "--local-user", "b:z"}, env(nil))
	if err != nil || len(cfg.LocalUsers) != 2 || cfg.LocalUsers[0] != "a:x,y" || cfg.LocalUsers[1] != "b:z" {
		t.Fatalf("local_users %q (%v), want [a:x,y b:z]", cfg.LocalUsers, err)
	}
}

// A local user spec without a colon may be a password alone: a message
// about it shows none of it.
func TestLocalUserMessageHidesPassword(t *testing.T) {
	cfg := Defaults()
	cfg.LocalUsers = []string{"aliceMySecretPassword"}
	err := cfg.Validate()
	if err == nil || strings.Contains(err.Error(), "MySecret") {
		t.Fatalf("Validate: %v, want an error that does not show the spec", err)
	}
}

// A command that takes serve's settings (check, keys rotate) names itself
// in its help, not serve.
func TestUsageNamesItsCommand(t *testing.T) {
	for _, cmd := range []string{"mcpgate serve", "mcpgate check", "mcpgate keys rotate"} {
		if u := Usage(cmd); !strings.HasPrefix(u, "Usage: "+cmd+" [flags]\n") {
			t.Errorf("Usage(%q) begins %q, want the usage line of %s", cmd, u[:min(len(u), 40)], cmd)
		}
	}
}
