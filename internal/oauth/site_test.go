package oauth

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// SEC-11: only a plain host[:port] is a Host.
func TestParseHostHeader(t *testing.T) {
	for h, want := range map[string][2]string{
		"localhost":            {"localhost", ""},
		"localhost:8080":       {"localhost", "8080"},
		"127.0.0.1:1":          {"127.0.0.1", "1"},
		"[::1]:65535":          {"::1", "65535"},
		"[::1]":                {"::1", ""},
		"MCP.Example.com":      {"MCP.Example.com", ""},
		"my_service-1.local":   {"my_service-1.local", ""},
		"mcp.example.com.:443": {"mcp.example.com.", "443"},
	} {
		host, port, ok := ParseHostHeader(h)
		if !ok || host != want[0] || port != want[1] {
			t.Errorf("ParseHostHeader(%q) = %q, %q, %v; want %q, %q, true", h, host, port, ok, want[0], want[1])
		}
	}
	for _, h := range []string{
		"", "127.0.0.1:8080,evil.com", "127.0.0.1:80/evil", "evil@127.0.0.1", "127.0.0.1:", "127.0.0.1:evil",
		"127.0.0.1:8080:1", "127.0.0.1:+80", "127.0.0.1:65536", "127.0.0.1:000080", "[::1]x", "[::1", "[127.0.0.1]:80",
		"[fe80::1%25eth0]:80", "::1", "local..host", ".localhost", ".", "localhost..", "a b", "localhost;x", "localhost\x00",
		"ex\u00e4mple.com", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "aa",
	} {
		if host, port, ok := ParseHostHeader(h); ok {
			t.Errorf("ParseHostHeader(%q) = %q, %q, true; want refused", h, host, port)
		}
	}
}

// SEC-11: a malformed loopback-looking Host never becomes the issuer.
func TestIssuerIgnoresMalformedHost(t *testing.T) {
	s := &Site{Fallback: "http://127.0.0.1:8080"}
	for h, want := range map[string]string{
		"localhost:9000":           "http://localhost:9000",
		"127.0.0.1:9000,evil.com":  "http://127.0.0.1:8080",
		"127.0.0.1:9000/evil.com":  "http://127.0.0.1:8080",
		"evil.com@127.0.0.1:9000":  "http://127.0.0.1:8080",
		"[::1]:9000,[::1]":         "http://127.0.0.1:8080",
		"mcp.example.com":          "http://127.0.0.1:8080",
		"localhost:9000;evil.com":  "http://127.0.0.1:8080",
		"localhost:9000:evil.com":  "http://127.0.0.1:8080",
		"LOCALHOST:9000":           "http://localhost:9000",
		"127.0.0.1:9000?evil=1":    "http://127.0.0.1:8080",
		"127.0.0.1:9000#evil.com":  "http://127.0.0.1:8080",
		"127.0.0.1:9000\\evil.com": "http://127.0.0.1:8080",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = h
		if got := s.Issuer(r); got != want {
			t.Errorf("Host %q: issuer %q, want %q", h, got, want)
		}
	}
}

// FuzzParseHostHeader: whatever is accepted is an authority that a URL
// parser reads back as the same host and port, with nothing else (no
// userinfo, path, query or fragment), and that holds no byte outside a
// host name's or an address's.
func FuzzParseHostHeader(f *testing.F) {
	for _, s := range []string{"localhost:8080", "127.0.0.1:1,evil.com", "[::1]:80", "[::1%25x]:80", "a@b:1", "x:1:2", "h:099999", "xn--bcher-kva.example", "[::ffff:127.0.0.1]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		host, port, ok := ParseHostHeader(h)
		if !ok {
			if host != "" || port != "" {
				t.Fatalf("refused %q but returned %q, %q", h, host, port)
			}
			return
		}
		if i := strings.IndexFunc(h, func(r rune) bool {
			return !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:[]", r)
		}); i >= 0 {
			t.Fatalf("accepted %q with byte %q", h, h[i])
		}
		u, err := url.Parse("http://" + h + "/p")
		if err != nil {
			t.Fatalf("accepted %q, which is no URL authority: %v", h, err)
		}
		if u.Host != h || u.User != nil || u.Path != "/p" || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %q, read back as host %q user %v path %q", h, u.Host, u.User, u.Path)
		}
		if u.Hostname() != host || u.Port() != port {
			t.Fatalf("ParseHostHeader(%q) = %q, %q; net/url reads %q, %q", h, host, port, u.Hostname(), u.Port())
		}
	})
}

// SEC-177: a public URL is the issuer in its normal form: scheme and host
// in lower case, no default port, no trailing slash.
func TestOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://mcp.example.com":       "https://mcp.example.com",
		"HTTPS://MCP.Example.com/":      "https://mcp.example.com",
		"https://mcp.example.com:443":   "https://mcp.example.com",
		"https://mcp.example.com:8443/": "https://mcp.example.com:8443",
		"http://127.0.0.1:80":           "http://127.0.0.1",
		"http://[::1]:80":               "http://[::1]",
		"http://[::1]:8080":             "http://[::1]:8080",
		"https://mcp.example.com:80":    "https://mcp.example.com:80",
		"https://mcp.example.com:":      "https://mcp.example.com",
		"":                              "",
	} {
		if got := Origin(in); got != want {
			t.Errorf("Origin(%q) = %q, want %q", in, got, want)
		}
	}
}
