package oauth

import (
	"net/url"
	"testing"
)

func TestValidateRedirectURI(t *testing.T) {
	good := []string{
		"https://claude.ai/api/mcp/auth_callback",
		"http://127.0.0.1:33418/",
		"http://localhost/callback",
		"http://[::1]:8080/cb",
		"cursor://anysphere.cursor-mcp/oauth/callback", // Cursor, with application_type web (DCR-2)
		"com.example.app:/oauth2redirect",
		"https://app.example.com/cb?x=1",
	}
	for _, u := range good {
		if err := ValidateRedirectURI(u); err != nil {
			t.Errorf("DCR-3/COMM-2: %q refused: %v", u, err)
		}
	}
	bad := []string{
		"", "/relative", "http://example.com/cb", // COMM-2: http only on loopback
		"http://10.0.0.1/cb", "https://example.com/cb#frag", "javascript:alert(1)",
		"data:text/html,hi", "file:///etc/passwd", "https://user:pw@example.com/cb",
		"https:///nohost", "http://127.0.0.1.evil.com/cb", "vbscript:msgbox",
		"https://example.com/a b",
	}
	for _, u := range bad {
		if err := ValidateRedirectURI(u); err == nil {
			t.Errorf("DCR-3/COMM-2: %q accepted, want refused", u)
		}
	}
}

func TestMatchRedirectURI(t *testing.T) {
	cases := []struct {
		registered []string
		requested  string
		want       bool
		rule       string
	}{
		{[]string{"https://a.example/cb"}, "https://a.example/cb", true, "REDIR-1 exact"},
		{[]string{"https://a.example/cb"}, "https://a.example/cb/", false, "REDIR-1 no trailing-slash drift"},
		{[]string{"https://a.example/cb"}, "https://A.example/cb", false, "REDIR-1 exact string"},
		{[]string{"https://a.example/cb"}, "https://a.example/cb?x=1", false, "REDIR-1 no added query"},
		{[]string{"https://a.example:443/cb"}, "https://a.example:8443/cb", false, "REDIR-4 any port is for loopback only"},
		{[]string{"http://127.0.0.1:33418/"}, "http://127.0.0.1:51234/", true, "REDIR-4 VS Code port fallback"},
		{[]string{"http://127.0.0.1/callback"}, "http://127.0.0.1:40123/callback", true, "REDIR-4 port-less registration"},
		{[]string{"http://localhost/callback"}, "http://localhost:40123/callback", true, "REDIR-4 localhost name"},
		{[]string{"http://[::1]/cb"}, "http://[::1]:9999/cb", true, "REDIR-4 IPv6 loopback"},
		{[]string{"http://localhost/callback"}, "http://127.0.0.1:40123/callback", false, "REDIR-4 host must still match"},
		{[]string{"http://127.0.0.1/callback"}, "http://127.0.0.1:40123/other", false, "REDIR-4 path must match"},
		{[]string{"http://127.0.0.1/callback"}, "http://127.0.0.1:0/callback", false, "port 0"},
		{[]string{"http://127.0.0.1/callback"}, "http://127.0.0.1:99999/callback", false, "port out of range"},
		{[]string{"http://127.0.0.1/callback"}, "http://user@127.0.0.1:80/callback", false, "userinfo"},
		{[]string{"http://127.0.0.1/callback"}, "http://127.0.0.1:80/callback#x", false, "fragment"},
		{[]string{"http://127.0.0.1/callback"}, "https://127.0.0.1:80/callback", false, "scheme must match"},
		{[]string{"cursor://anysphere.cursor-mcp/oauth/callback"}, "cursor://anysphere.cursor-mcp/oauth/callback", true, "private-use exact"},
		{[]string{"cursor://anysphere.cursor-mcp/oauth/callback"}, "cursor://evil/oauth/callback", false, "private-use exact only"},
		{nil, "http://127.0.0.1/cb", false, "nothing registered"},
	}
	for _, c := range cases {
		if got := MatchRedirectURI(c.registered, c.requested); got != c.want {
			t.Errorf("%s: MatchRedirectURI(%q, %q) = %v, want %v", c.rule, c.registered, c.requested, got, c.want)
		}
	}
}

// FuzzMatchRedirectURI checks the matcher's safety properties on any
// input: a match is either the exact string or a loopback http URI whose
// host, path and query equal a registered loopback URI's.
func FuzzMatchRedirectURI(f *testing.F) {
	f.Add("http://127.0.0.1/callback", "http://127.0.0.1:5555/callback")
	f.Add("http://localhost:33418/", "http://localhost:1/")
	f.Add("https://a.example/cb", "https://a.example/cb")
	f.Add("cursor://x/y", "cursor://x/y")
	f.Add("http://127.0.0.1/cb", "http://127.0.0.1.evil.com/cb")
	f.Add("http://[::1]/cb", "http://[::1]:80/cb?")
	f.Fuzz(func(t *testing.T, registered, requested string) {
		if !MatchRedirectURI([]string{registered}, requested) || registered == requested {
			return
		}
		req, err := url.Parse(requested)
		if err != nil {
			t.Fatalf("matched unparsable %q", requested)
		}
		reg, err := url.Parse(registered)
		if err != nil {
			t.Fatalf("matched against unparsable %q", registered)
		}
		if req.Scheme != "http" || reg.Scheme != "http" || !IsLoopbackHost(req.Hostname()) {
			t.Fatalf("non-loopback inexact match: %q vs %q", registered, requested)
		}
		if req.Hostname() != reg.Hostname() || req.EscapedPath() != reg.EscapedPath() || req.RawQuery != reg.RawQuery {
			t.Fatalf("loopback match differs beyond the port: %q vs %q", registered, requested)
		}
		if req.User != nil || req.Fragment != "" {
			t.Fatalf("matched with userinfo or fragment: %q", requested)
		}
	})
}
