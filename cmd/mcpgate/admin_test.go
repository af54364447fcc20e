package main

import (
	"slices"
	"testing"

	"github.com/mcpgate/mcpgate/internal/app"
)

// SEC-95: the admin commands take their own flags, in any form and
// place, and leave serve's settings to load; --password is none of
// theirs, so it reaches load, which refuses it.
func TestAdminFlags(t *testing.T) {
	var cmd app.AdminCommand
	rest, stdin, err := takeAdminFlags(&cmd, adminVerbs["users add"].flags,
		[]string{"--data-dir", "/d", "--groups", "a, b", "-json", "--password-stdin=true", "--password", "pw", "--store=x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cmd.Groups, []string{"a", "b"}) || !cmd.JSON || !stdin {
		t.Errorf("users add flags: %+v, password-stdin %v; want groups a and b, JSON, password-stdin", cmd, stdin)
	}
	if want := []string{"--data-dir", "/d", "--password", "pw", "--store=x"}; !slices.Equal(rest, want) {
		t.Errorf("left for load: %q, want %q", rest, want)
	}

	cmd = app.AdminCommand{}
	rest, _, err = takeAdminFlags(&cmd, adminVerbs["grants list"].flags, []string{"--user=local:bob", "--all", "--groups", "x"})
	if err != nil || cmd.User != "local:bob" || !cmd.All || !slices.Equal(rest, []string{"--groups", "x"}) {
		t.Errorf("grants list flags: %+v %q %v; want --groups left to load, which refuses it", cmd, rest, err)
	}
	if _, _, err := takeAdminFlags(&cmd, adminVerbs["grants list"].flags, []string{"--user"}); err == nil {
		t.Error("--user with no value: no error")
	}
	if _, _, err := takeAdminFlags(&cmd, adminVerbs["grants list"].flags, []string{"--json=maybe"}); err == nil {
		t.Error("--json=maybe: no error")
	}
}

// An id may start with "-" (base64url); a flag where the id goes is a
// missing id.
func TestAdminArgIsNotAFlag(t *testing.T) {
	own := adminVerbs["grants revoke"].flags
	for a, want := range map[string]bool{"--data-dir": true, "-store=x": true, "--json": true, "-AbC_dEf": false, "--x1y2": false, "g1": false} {
		if got := isFlag(a, own); got != want {
			t.Errorf("isFlag(%q) = %v, want %v", a, got, want)
		}
	}
}
