package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// admin_groups (SEC-111) is read from the file, MCPGATE_ADMIN_GROUPS and
// repeated --admin-group, reaches the library, and a name no login can
// carry is refused with its index.
func TestAdminGroupsSetting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgate.yaml")
	if err := os.WriteFile(path, []byte("admin_groups: [ops, platform]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{[]string{"--config", path}, nil, []string{"ops", "platform"}},
		{nil, map[string]string{"MCPGATE_ADMIN_GROUPS": "ops,sre"}, []string{"ops", "sre"}},
		{[]string{"--admin-group", "ops", "--admin-group", "sre"}, nil, []string{"ops", "sre"}},
	} {
		cfg, err := Load(tc.args, env(tc.env))
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		g, err := cfg.Gateway()
		if err != nil || !slices.Equal(cfg.AdminGroups, tc.want) || !slices.Equal(g.AdminGroups, tc.want) {
			t.Errorf("%v %v: admin_groups %q, library %q (%v); want %q", tc.args, tc.env, cfg.AdminGroups, g.AdminGroups, err, tc.want)
		}
	}
	cfg := Defaults()
	cfg.AdminGroups = []string{"ops", " ", "a\nb", strings.Repeat("g", 257)}
	err := cfg.Validate()
	for _, i := range []string{"admin_groups[1]", "admin_groups[2]", "admin_groups[3]"} {
		if err == nil || !strings.Contains(err.Error(), i) || strings.Contains(err.Error(), "admin_groups[0]") {
			t.Errorf("Validate: %v; want %s named, and not admin_groups[0]", err, i)
		}
	}
}
