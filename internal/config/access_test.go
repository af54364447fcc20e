package config

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// access at the top level and per resource reaches the library's Config.
func TestAccessFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
access:
  users: ["github:583231", "local:alice"]
  email_domains: [example.com]
  groups: [staff]
resources:
  - path: /mcp
  - path: /admin/mcp
    access:
      groups: [admins]
`), 0o600)
	g := validGateway(t, []string{"--config", path}, nil)
	if !slices.Equal(g.Access.Users, []string{"github:583231", "local:alice"}) || !slices.Equal(g.Access.EmailDomains, []string{"example.com"}) ||
		!slices.Equal(g.Access.Groups, []string{"staff"}) {
		t.Errorf("top-level access %+v, want the file's", g.Access)
	}
	if len(g.Resources) != 2 || !g.Resources[0].Access.Open() || !slices.Equal(g.Resources[1].Access.Groups, []string{"admins"}) {
		t.Errorf("resources' access %+v, want none on /mcp and groups [admins] on /admin/mcp", g.Resources)
	}
}

// Every malformed rule is reported with its place: a username where an
// ID belongs, a domain with @ or capitals, an empty group.
func TestAccessValidated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte(`
access:
  users: [alice]
  email_domains: ["@example.com", Example.com]
  groups: [""]
resources:
  - path: /mcp
    access:
      users: [":x"]
`), 0o600)
	msg := problemsOf(t, []string{"--config", path}, nil)
	wantLines(t, msg,
		`access.users: "alice" is not a user ID`,
		`access.email_domains: "@example.com" is not a lowercase domain name`,
		`access.email_domains: "Example.com" is not a lowercase domain name`,
		`access.groups: a group name is empty`,
		`resources[0].access.users: ":x" is not a user ID`)
}
