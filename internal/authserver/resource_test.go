package authserver

import (
	"strings"
	"testing"
)

// RES-2: a resource is compared in its canonical form: scheme and host in
// lower case, no default port, no trailing slash; no fragment.
func TestCanonicalResource(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com/mcp":      "https://mcp.example.com/mcp",
		"HTTPS://MCP.Example.com/mcp/":     "https://mcp.example.com/mcp",
		"https://mcp.example.com:443/mcp":  "https://mcp.example.com/mcp",
		"https://mcp.example.com:4443/mcp": "https://mcp.example.com:4443/mcp",
		"http://127.0.0.1:80/mcp":          "http://127.0.0.1/mcp",
		"http://[::1]:8080/mcp":            "http://[::1]:8080/mcp",
		"https://mcp.example.com/Team/MCP": "https://mcp.example.com/Team/MCP",
		"https://mcp.example.com":          "https://mcp.example.com",
		"https://user@mcp.example.com/mcp": "https://user@mcp.example.com/mcp", // never the gateway's resource
		"https://mcp.example.com/mcp#x":    "",
		"ftp://mcp.example.com/mcp":        "",
		"https:///mcp":                     "",
		"mcp.example.com/mcp":              "",
		"https://mcp.example.com:80/mcp":   "https://mcp.example.com:80/mcp",
		"https://mcp.example.com:/mcp":     "https://mcp.example.com/mcp",
		"https://a:443:443":                "",
		"https://a:x/mcp":                  "",
		"http://[::1]/mcp":                 "http://[::1]/mcp",
		"http://[::1]:80/mcp":              "http://[::1]/mcp",
		"http://::1/mcp":                   "",
	} {
		got, ok := canonicalResource(in)
		if !ok {
			got = ""
		}
		if got != want {
			t.Errorf("canonicalResource(%q) = %q, want %q", in, got, want)
		}
	}
}

// The canonical form of a resource is in lower case where it must be, and
// a slash added to it means nothing.
func FuzzCanonicalResource(f *testing.F) {
	for _, s := range []string{"https://mcp.example.com/mcp", "HTTPS://A:443/x/", "http://[::1]:80", "https://a/b?c=d", "https://a#b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		canon, ok := canonicalResource(raw)
		if !ok {
			return
		}
		if again, ok := canonicalResource(canon + "/"); !ok || again != canon {
			t.Fatalf("canonicalResource(%q) = %q, and with a slash added %q (%v)", raw, canon, again, ok)
		}
		scheme, rest, _ := strings.Cut(canon, "://")
		host := rest
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			host = rest[:i]
		}
		if scheme != strings.ToLower(scheme) || host != strings.ToLower(host) || strings.Contains(canon, "#") {
			t.Fatalf("canonicalResource(%q) = %q: scheme or host not in lower case, or a fragment", raw, canon)
		}
	})
}
