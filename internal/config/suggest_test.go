package config

import (
	"strings"
	"testing"
)

// A misspelt key, flag or variable is answered with the one meant, when
// one is near enough; a name near none, or short and near a short one,
// is answered with none.
func TestNearest(t *testing.T) {
	names := []string{"listen", "public_url", "refresh_grace", "refresh_token_ttl", "store", "scopes"}
	for _, c := range []struct{ name, want string }{
		{"listne", "listen"},              // two letters swapped
		{"refesh_grace", "refresh_grace"}, // one dropped
		{"Public_URL", "public_url"},      // keys are read as written
		{"listen", ""},                    // the name itself
		{"publik_urll", "public_url"},
		{"stor", "store"},
		{"sto", ""}, // too short for two letters' difference
		{"stores", "store"},
		{"refresh", ""}, // far from both refresh_ settings
		{"issuer", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := nearest(c.name, names); got != c.want {
				t.Errorf("nearest(%q) = %q, want %q", c.name, got, c.want)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"abc", "abc", 0},
		{"abc", "acb", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// Every struct type of the file has its keys listed, so that a misspelt
// key at any depth can be answered: the top level's, a resource's, an
// OpenID provider's and a local account's.
func TestFileKeyNames(t *testing.T) {
	for typ, key := range map[string]string{"config.Config": "refresh_grace", "config.Config ": "upstream",
		"config.LocalUser": "password_hash"} {
		if !strings.Contains(strings.Join(fileKeyNames[strings.TrimSpace(typ)], " "), key) {
			t.Errorf("the keys of %s = %q, want %s among them", typ, fileKeyNames[strings.TrimSpace(typ)], key)
		}
	}
	if NearestVariable("MCPGATE_LOCAL_USER") != "MCPGATE_LOCAL_USERS" || NearestVariable("MCPGATE_RESOURCES") != "" {
		t.Errorf("NearestVariable: MCPGATE_LOCAL_USER → %q, MCPGATE_RESOURCES → %q; want MCPGATE_LOCAL_USERS, and none for a file-only setting's",
			NearestVariable("MCPGATE_LOCAL_USER"), NearestVariable("MCPGATE_RESOURCES"))
	}
}
