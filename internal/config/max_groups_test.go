package config

import (
	"strings"
	"testing"
)

// max_groups (SEC-70) is read from every source, defaults to 100, is
// bounded 1 to 1000 with the bound in serve -h, and reaches the library.
func TestMaxGroupsSetting(t *testing.T) {
	cfg := Defaults()
	if g, err := cfg.Gateway(); err != nil || cfg.MaxGroups != 100 || g.MaxGroups != 100 {
		t.Fatalf("default max_groups %d, library %d (%v); want 100", cfg.MaxGroups, g.MaxGroups, err)
	}
	for n, ok := range map[Count]bool{1: true, 1000: true, 0: false, -1: false, 1001: false} {
		cfg := Defaults()
		cfg.MaxGroups = n
		err := cfg.Validate()
		if ok != (err == nil) || !ok && !strings.Contains(err.Error(), "max_groups: ") {
			t.Errorf("max_groups %d: %v", n, err)
		}
	}
	cfg2, err := Load([]string{"--max-groups", "250"}, env(nil))
	if err != nil || cfg2.MaxGroups != 250 {
		t.Fatalf("--max-groups 250: %v %v", cfg2, err)
	}
	if g, _ := cfg2.Gateway(); g.MaxGroups != 250 {
		t.Errorf("the library gets %d, want 250", g.MaxGroups)
	}
	if !strings.Contains(Usage("mcpgate serve"), "1 to 1000 (SEC-70)") {
		t.Error("serve -h does not give max_groups' bounds")
	}
}

// A local account in more groups than max_groups could never log in: the
// configuration says so, by its place.
func TestLocalUsersOverMaxGroups(t *testing.T) {
	cfg := Defaults()
	cfg.MaxGroups = 2
	cfg.LocalUsers = []string{"alice[a,b]:pw", "bob[a,b,c]:pw"}
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "local_users[1]: 3 groups, more than max_groups (2): bob could never log in") || strings.Contains(err.Error(), "local_users[0]") {
		t.Fatalf("Validate: %v; want local_users[1] named, alone", err)
	}
}
