package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hash is a bcrypt hash of "password" (cost 10), as the file writes it.
const hash = "$$2b$$10$$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "mcpgate.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// The file's local_users take the mapping an operator expects from YAML,
// mixed with NAME[GROUPS]:PASSWORD strings, each kept as the spec it
// stands for.
func TestLocalUsersMappingForm(t *testing.T) {
	file := writeConfig(t, `local_users:
  - "carol:pw:with:colons"
  - {name: alice, password: "p,w[1]", groups: [admins, devs, org/team]}
  - name: bob
    password_hash: "`+hash+`"
  - {name: dan, password: pw, groups: []}
`)
	cfg, err := Load([]string{"--config", file}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	want := []string{"carol:pw:with:colons", "alice[admins,devs,org/team]:p,w[1]",
		"bob:" + strings.ReplaceAll(hash, "$$", "$"), "dan:pw"}
	if !slices.Equal(cfg.LocalUsers, want) {
		t.Errorf("local_users = %q, want %q", cfg.LocalUsers, want)
	}
}

// Every problem of a mapping is named by its place, local_users[N].field,
// all at once, and none shows a password.
func TestLocalUsersMappingProblems(t *testing.T) {
	file := writeConfig(t, `local_users:
  - "ok:pw"
  - {name: "al ice", password: secret1}
  - {name: bob, password: secret2, groups: [admins, "bad group"]}
  - {name: carol, password: secret3, password_hash: "$$2b$$10$$x"}
  - {name: dan, password_hash: secret4}
  - {name: erin, pasword: secret5}
  - {password: secret6}
  - {name: fay, password: "$$2b$$10$$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"}
  - {name: gus, password: secret7, groups: admins}
  - [not, an, account]
  - {name: hal, password: "`+strings.Repeat("x", 73)+`"}
  - "ivy[y z]:secret8"
`)
	msg := problemsOf(t, []string{"--config", file}, nil)
	wantLines(t, msg,
		`local_users[1].name (`+file+`, line 3): "al ice" is not an account name`,
		`local_users[2].groups[1] (`+file+`, line 4): "bad group" is not a group`,
		`local_users[3].password_hash (`+file+`, line 5): give password or password_hash, not both`,
		`local_users[4].password_hash (`+file+`, line 6): is not a bcrypt hash`,
		`local_users[5].pasword (`+file+`, line 7): unknown key: did you mean password?`,
		`local_users[5] (`+file+`, line 7): an account needs a password or a password_hash`,
		`local_users[6] (`+file+`, line 8): an account needs a name`,
		`local_users[7].password (`+file+`, line 9): looks like a bcrypt hash: give it as password_hash`,
		`local_users[8].groups (`+file+`, line 10): must be a list`,
		`local_users[9] (`+file+`, line 11): must be NAME[GROUPS]:PASSWORD or a mapping`,
		`local_users[10].password (`+file+`, line 12): `,
		`local_users[11] (`+file+`, line 13): user spec "ivy[y z]": invalid group "y z"`)
	for i := 1; i <= 8; i++ {
		if s := "secret" + string(rune('0'+i)); strings.Contains(msg, s) {
			t.Errorf("a message shows the password %s:\n%s", s, msg)
		}
	}
	if strings.Contains(msg, "xxxxxxxx") {
		t.Errorf("a message shows the long password:\n%s", msg)
	}
}

// A string of local_users is checked by Validate as the local connector
// will parse it, and named by its place; its password is never shown.
func TestLocalUsersStringProblemsNamed(t *testing.T) {
	cfg := Defaults()
	cfg.LocalUsers = []string{"ok:pw", "alice[bad group]:secret1", "nocolon-secret2"}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	wantLines(t, err.Error(), `local_users[1]: `, `invalid group "bad group"`, `local_users[2]: "***" must be NAME[GROUPS]:PASSWORD`)
	if strings.Contains(err.Error(), "secret") {
		t.Errorf("a message shows a password: %v", err)
	}
}

// SEC-76: a NAME:PASSWORD spec written where a mapping wants a name, a
// group or a key (the string form pasted into the mapping form) is
// refused without its password: what follows the colon never reaches the
// message, which the operator's terminal, a service log or CI output keeps.
func TestSEC76_SpecInAMappingNeverShowsItsPassword(t *testing.T) {
	file := writeConfig(t, `local_users:
  - {name: "alice:secret1", password: x}
  - {name: "bob:secret2"}
  - {carol:secret3}
  - {name: dan, dan:secret4}
  - {name: erin, password: x, groups: [admins, "devs:secret5"]}
`)
	msg := problemsOf(t, []string{"--config", file}, nil)
	wantLines(t, msg,
		`local_users[0].name (`+file+`, line 2): "alice:***" is not an account name`,
		`local_users[1].name (`+file+`, line 3): "bob:***" is not an account name`,
		`local_users[2] (`+file+`, line 4): "carol:***" is not a key of an account`,
		`local_users[3] (`+file+`, line 5): "dan:***" is not a key of an account`,
		`local_users[4].groups[1] (`+file+`, line 6): "devs:***" is not a group`)
	if strings.Contains(msg, "secret") {
		t.Errorf("a message shows a password:\n%s", msg)
	}
}

// A local account that is no account is named by where it was given: the
// flag or the variable, and which of its values, not a file key the
// operator never wrote. Fails before: "local_users[1]" for the second
// --local-user, with no configuration file.
func TestLocalUserProblemNamesItsSource(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		environ map[string]string
		want    string
	}{
		{[]string{"--local-user", "bob:longpassword1", "--local-user", "al ice:password1"}, nil, `--local-user (the 2nd given): user spec: invalid name "al ice"`},
		{nil, map[string]string{"MCPGATE_LOCAL_USERS": "al ice:password1"}, `MCPGATE_LOCAL_USERS (the 1st given): user spec: invalid name "al ice"`},
	} {
		cfg, err := Load(tc.args, env(tc.environ))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v; want %q", tc.args, tc.environ, err, tc.want)
		}
	}
}
