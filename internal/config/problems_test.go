package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// problemsOf is what `mcpgate serve` reports for args and vars: what Load
// could not read, then, when it gave a configuration, what Validate finds
// in it.
func problemsOf(t *testing.T, args []string, vars map[string]string) string {
	t.Helper()
	cfg, err := Load(args, env(vars))
	if cfg != nil {
		err = errors.Join(err, cfg.Validate())
	}
	if err == nil {
		t.Fatalf("%v %v: accepted, want every problem reported", args, vars)
	}
	return err.Error()
}

// wantLines checks that every want is in a line of its own of msg.
func wantLines(t *testing.T, msg string, want ...string) {
	t.Helper()
	lines := strings.Split(msg, "\n")
	for _, w := range want {
		found := false
		for _, l := range lines {
			found = found || strings.Contains(l, w)
		}
		if !found {
			t.Errorf("no problem says %q; got:\n%s", w, msg)
		}
	}
}

// Several bad flags at once: every one is reported, each by its flag as
// `serve -h` writes it, and what could be read is validated too.
func TestFlagsReportEveryProblem(t *testing.T) {
	msg := problemsOf(t, []string{"--max-connections", "0", "--request-read-timeout", "0", "--disable-cimd=maybe",
		"--no-such-flag", "--stdio-isolation", "x", "--unused-client-expiry", "1h", "stray", "--log-level", "loud"}, nil)
	wantLines(t, msg,
		`--max-connections: "0" is not a whole number above 0`,
		`--request-read-timeout: "0": leave the setting out`,
		`--disable-cimd: "maybe" is not true or false`,
		`--no-such-flag`,
		`an unexpected argument, not shown`,
		`stdio_isolation: "x" must be auto or none`,
		`unused_client_expiry:`,
		`log_level: "loud"`)
	if a, b, c := strings.Index(msg, "--disable-cimd"), strings.Index(msg, "--no-such-flag"), strings.Index(msg, `unexpected argument`); !(a < b && b < c) {
		t.Errorf("the flags' problems are not in the order of the command line:\n%s", msg)
	}
	for _, one := range []string{" -max-connections", " -request-read-timeout", " -no-such-flag"} {
		if strings.Contains(msg, one) {
			t.Errorf("a flag is named with one dash (%q), want --, as serve -h writes it:\n%s", one, msg)
		}
	}
	// A bad value does not stand in for the setting: the read timeout is
	// not 0 for the check of the header timeout against it.
	if strings.Contains(msg, "request_header_timeout") {
		t.Errorf("a refused value was validated as if set:\n%s", msg)
	}
}

// A misspelt flag's value, and a stray argument, are never quoted back:
// either may be a secret (a client secret given to a misspelt flag, a
// password in a flag's place). Fails before: "unexpected argument
// \"Sup3rS3cretValue\"" on the terminal, and in any log that keeps it.
func TestFlagProblemsQuoteNoArgument(t *testing.T) {
	for _, args := range [][]string{
		{"--github-client", "gh123", "--github-secret", "Sup3rS3cretValue"},
		{"--local-users", "alice:Sup3rS3cretValue"},
		{"--local-user", "alice", "Sup3rS3cretValue"},
		{"--stdio", "cat", "--stdio-env", "GITHUB_TOKEN:Sup3rS3cretValue"},
		{"--oidc-client-id", "x", "--oidc-secret", "-Sup3rS3cretValue"},
		{"--local-user", "alice", "-Sup3rS3cretValue"},
		{"--local-user", "alice", "-=Sup3rS3cretValue"},
		{"--local-user", "alice", "-sup3rs3cretvalue"},
		{"--github-secret=Sup3rS3cretValue", "stray"},
	} {
		msg := problemsOf(t, args, nil)
		if strings.Contains(strings.ToLower(msg), "sup3rs3cretvalue") {
			t.Errorf("%q: the problems quote the secret:\n%s", args, msg)
		}
	}
}

// Several bad variables at once: the values that could not be read, and
// the problems of those that could.
func TestVariablesReportEveryProblem(t *testing.T) {
	msg := problemsOf(t, nil, map[string]string{
		"MCPGATE_MAX_CONNECTIONS": "0", "MCPGATE_REQUEST_READ_TIMEOUT": "0", "MCPGATE_DISABLE_CIMD": "maybe",
		"MCPGATE_STDIO": "server", "MCPGATE_STDIO_ISOLATION": "x", "MCPGATE_UNUSED_CLIENT_EXPIRY": "1h", "MCPGATE_STDIO_UID_RANGE": "5",
	})
	wantLines(t, msg,
		`MCPGATE_MAX_CONNECTIONS: "0" is not a whole number above 0`,
		`MCPGATE_REQUEST_READ_TIMEOUT: "0": leave the setting out`,
		`MCPGATE_DISABLE_CIMD: "maybe" is not true or false`,
		`stdio_isolation: "x" must be auto or none`,
		`unused_client_expiry:`,
		`stdio_uid_range:`)
}

// Several bad keys of a file at once: each is named by its key (its path
// in a list) and line, the type mismatches in words, and the keys that
// could be read are validated.
func TestFileReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(path, []byte(`max_connections: 0
request_read_timeout: 0
max_sessions_per_user: off
disable_cimd: maybe
unused_client_expiry: 1h
listne: 1
resources:
  - path: /a
    stdio: server
    stdio_max_processes: many
    stdio_idle_timeout: 0
    stdio_isolation: x
    scopse: [a]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := problemsOf(t, []string{"--config", path}, nil)
	at := func(key string, line string) string { return key + " (" + path + ", line " + line + "): " }
	wantLines(t, msg,
		at("max_connections", "1")+`"0" is not a whole number above 0`,
		at("request_read_timeout", "2")+`"0": leave the setting out`,
		at("max_sessions_per_user", "3")+`"off" is not a whole number`,
		at("disable_cimd", "4")+`"maybe" is not true or false`,
		at("listne", "6")+"unknown key: did you mean listen?",
		at("resources[0].stdio_max_processes", "10")+`"many" is not a whole number`,
		at("resources[0].stdio_idle_timeout", "11")+`"0": leave the setting out`,
		at("resources[0].scopse", "13")+"unknown key: did you mean scopes?",
		`unused_client_expiry:`,
		`resources[0].stdio_isolation: "x" must be auto or none`)
	if strings.Contains(msg, "cannot unmarshal") || strings.Contains(msg, "request_header_timeout") {
		t.Errorf("a raw YAML message, or a refused value validated as if set:\n%s", msg)
	}
}

// A file that is not YAML at all gives nothing to validate: its syntax
// error, with its line, is the one problem.
func TestFileNotYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(path, []byte("listen: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"--config", path, "--max-connections", "0"}, env(nil))
	if cfg != nil || err == nil {
		t.Fatalf("Load: %v, %v; want no configuration and an error", cfg, err)
	}
	wantLines(t, err.Error(), path+": yaml: line", `--max-connections: "0"`)
}

// A timeout that is off is named alone, not with the other that is not.
func TestTimeoutOffNamesTheOneOff(t *testing.T) {
	for flagName, key := range map[string]string{"--request-read-timeout": "request_read_timeout", "--request-header-timeout": "request_header_timeout"} {
		msg := problemsOf(t, []string{flagName, "off"}, nil)
		wantLines(t, msg, key+": cannot be off")
		if other := map[string]string{"request_read_timeout": "request_header_timeout", "request_header_timeout": "request_read_timeout"}[key]; strings.Contains(msg, other) {
			t.Errorf("%s off: the message names %s too:\n%s", flagName, other, msg)
		}
	}
}

// A duration is echoed in the short form a person writes: 1h, not 1h0m0s.
func TestDurationsEchoedShort(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Hour: "1h", 90 * time.Minute: "1h30m", 10 * time.Minute: "10m",
		90 * time.Second: "1m30s", 2160 * time.Hour: "2160h", 1500 * time.Millisecond: "1.5s", 100 * time.Millisecond: "100ms", -1: "off"} {
		if got := Duration(d).String(); got != want {
			t.Errorf("Duration(%v) prints as %q, want %q", time.Duration(d), got, want)
		}
	}
	wantLines(t, problemsOf(t, []string{"--unused-client-expiry", "1h"}, nil), "unused_client_expiry: 1h must be")
}

// The per-user caps' bounds, which Validate enforces, are in serve -h and
// the README.
func TestPerUserCapBoundsDocumented(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	bound := "1 to " + strconv.Itoa(maxPerUser)
	for _, key := range []string{"max_sessions_per_user", "max_streams_per_user"} {
		i := slices.IndexFunc(settings, func(s setting) bool { return s.key == key })
		if !strings.Contains(settings[i].help, bound) {
			t.Errorf("serve -h for %s does not say %q: %s", key, bound, settings[i].help)
		}
		row := ""
		for l := range strings.Lines(string(raw)) {
			if strings.Contains(l, "| `"+key+"` |") {
				row = l
			}
		}
		if !strings.Contains(row, bound) {
			t.Errorf("README.md's row of %s does not say %q: %s", key, bound, row)
		}
		cfg := Defaults()
		cfg.MaxSessionsPerUser, cfg.MaxStreamsPerUser = maxPerUser, maxPerUser
		if err := cfg.Validate(); err != nil {
			t.Errorf("the bound %d is refused: %v", maxPerUser, err)
		}
		cfg.MaxSessionsPerUser, cfg.MaxStreamsPerUser = maxPerUser+1, maxPerUser+1
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%d accepted for %s: %v", maxPerUser+1, key, err)
		}
	}
}

// With a resources list, the backend settings go on each resource: one at
// the top level is named, with where it goes, and not refused as a stdio
// setting without stdio.
func TestTopLevelBackendSettingWithResources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.yaml")
	if err := os.WriteFile(path, []byte(`stdio_read_paths: [/opt/servers]
stdio_isolation: none
resources:
  - path: /a
    stdio: server
`), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := problemsOf(t, []string{"--config", path}, nil)
	wantLines(t, msg, "stdio_read_paths: with a resources list, give each resource its own: set it on the resource (resources[N].stdio_read_paths)",
		"stdio_isolation: with a resources list, give each resource its own")
	if strings.Contains(msg, "set only with stdio") {
		t.Errorf("a top-level stdio setting next to a resources list is refused as if stdio were missing:\n%s", msg)
	}
}

// A secret file that cannot be read is that problem, not also a secret
// missing.
func TestUnreadableSecretFileNamedOnce(t *testing.T) {
	msg := problemsOf(t, []string{"--github-client-id", "id", "--github-client-secret-file", filepath.Join(t.TempDir(), "missing")}, nil)
	wantLines(t, msg, "github_client_secret_file: open ")
	if strings.Contains(msg, "set both") {
		t.Errorf("an unreadable secret file is also reported as no secret:\n%s", msg)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantLines(t, problemsOf(t, []string{"--github-client-id", "id", "--github-client-secret-file", empty}, nil),
		"github_client_secret_file: "+empty+" is empty")
}

// A list's empty item (a "-" with nothing after it, null, ~) is a
// problem named by its place, once, in every list: it decoded to nothing
// or to an empty value, and went unsaid. A variable whose value is
// "null", or a quoted "null", is a value. Fails before: the file was
// valid.
func TestEmptyListItemsNamed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(`allowed_origins: [https://a.example, null]
local_users:
  -
  - "alice:long-enough-1"
resources:
  - ~
  - path: /mcp
    scopes: [mcp, "null", $WORD]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	msg := problemsOf(t, []string{"--config", path}, map[string]string{"WORD": "null"})
	at := func(key string, line string) string { return key + " (" + path + ", line " + line + "): " }
	wantLines(t, msg,
		at("allowed_origins[1]", "1")+"an empty item: give its value, or remove it",
		at("local_users[0]", "3")+"an empty item",
		at("resources[0]", "6")+"an empty item")
	if strings.Count(msg, "an empty item") != 3 {
		t.Errorf("want three empty items named, once each; got:\n%s", msg)
	}
}
