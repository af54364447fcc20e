package main

import (
	"io"
	"os"
	"strings"
	"testing"
)

// SEC-21: what the configuration read leaves the environment after it is
// read; PATH, which the stdio servers get, stays.
func TestSEC21_ReadVariablesDropped(t *testing.T) {
	t.Setenv("MCPGATE_TEST_SECRET_SETTING", "secret")
	t.Setenv("PATH", os.Getenv("PATH"))
	var env readEnv
	if env.get("MCPGATE_TEST_SECRET_SETTING") != "secret" || env.get("PATH") == "" {
		t.Fatal("readEnv.get does not read the environment")
	}
	env.drop()
	if _, ok := os.LookupEnv("MCPGATE_TEST_SECRET_SETTING"); ok {
		t.Error("a variable the configuration read is still in the environment")
	}
	if os.Getenv("PATH") == "" {
		t.Error("PATH was dropped, want it kept for the stdio servers")
	}
}

// "Each command's own -h lists its flags", as mcpgate help says: keys -h
// was an unknown command.
func TestCommandsHelp(t *testing.T) {
	for _, cmd := range []string{"keys", "users", "clients", "grants"} {
		if code := run([]string{cmd, "-h"}); code != 0 {
			t.Errorf("mcpgate %s -h: exit %d, want 0 and its usage", cmd, code)
		}
	}
}

// A flag no setting has names the command whose -h lists the flags there
// are: `grants list --usr` pointed to mcpgate serve -h.
func TestUnknownFlagPointsToTheCommandsHelp(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	code := run([]string{"grants", "list", "--usr", "bob"})
	os.Stderr = stderr
	w.Close()
	out, _ := io.ReadAll(r)
	if code != 2 || !strings.Contains(string(out), "--usr: no such flag: did you mean --user?") || !strings.Contains(string(out), "mcpgate grants list -h lists the flags") {
		t.Errorf("mcpgate grants list --usr bob: exit %d\n%s\nwant 2, naming the flag, the one meant, and mcpgate grants list -h", code, out)
	}
}
