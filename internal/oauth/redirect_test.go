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
		"com.httpie.desktop:/oauth/callback", // a reverse-domain scheme is an app's, whatever it spells
		"vscode://vscode.github-authentication/did-authenticate",
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
		// SEC-151: a rest that is no app's path, and schemes that open a
		// browser at the web address that follows.
		"myapp:callback", "microsoft-edge:https://evil.example/", "microsoft-edge://evil.example/",
		"Microsoft-Edge:/x", "googlechromes://evil.example/", "x-safari-https://evil.example/",
		"firefox://open-url?url=https://evil.example/",
		"microsoft-edge-https://evil.example/cb", "microsoft-edge-http://evil.example/cb",
		"microsoft-edge-https-intunemam://evil.example/cb", "touch-https://evil.example/cb",
		"ophttps://evil.example/cb", "mhttps://evil.example/cb", "x-icabmobile://evil.example/cb",
		"googlechrome-x-callback://x-callback-url/open/?url=https%3A%2F%2Fevil.example%2Fcb",
		"firefox-focus://open-url?url=https://evil.example/cb", "firefox-klar://open-url?url=https://evil.example/cb",
		"ddgquicklink://evil.example/cb", "yandexbrowser-open-url://evil.example/cb", "OPHTTPS://evil.example/cb",
		"puffins://evil.example/cb", "puffin://evil.example/cb", "shtps://evil.example/cb", "ucbrowser://evil.example/cb",
		"quark://evil.example/cb", "alook://evil.example/cb", "alohabrowser://evil.example/cb", "dolphin://evil.example/cb",
		// Chrome on Android opens android-app://com.android.chrome/https/HOST/PATH
		// at https://HOST/PATH, as it does intent: (SEC-151). Fails before: taken.
		"android-app://com.android.chrome/https/evil.example/cb", "Android-App://com.android.chrome/https/evil.example/cb",
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
		{[]string{"http://127.0.0.1/callback?app=a"}, "http://127.0.0.1:40123/callback?app=a", true, "REDIR-4 the query as registered"},
		{[]string{"http://127.0.0.1/callback?app=a"}, "http://127.0.0.1:40123/callback?app=b", false, "REDIR-4 query must match"},
		{[]string{"http://127.0.0.1/callback"}, "http://127.0.0.1:40123/callback?x=1", false, "REDIR-4 no added query"},
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

// SEC-120: a redirect URI is ASCII, an IDN host in its punycode form, as
// a client ID metadata URL must be (CIMD-7). The consent and login pages
// name the redirect URI's host as where the code will go: a Cyrillic "а"
// in "аpple.com" reads as apple.com while the browser goes to
// xn--pple-43d.com, and a bidi override or an invisible character makes
// the host read as another. The punycode form is taken: it names the
// same host plainly.
func TestSEC120_RedirectURIIsASCII(t *testing.T) {
	for _, u := range []string{
		"https://\u0430pple.com/cb",         // Cyrillic a
		"https://\u202emoc.elgoog.evil/cb",  // right-to-left override
		"https://evil\u200b.example/cb",     // zero-width space
		"https://ex\u00adample.com/cb",      // soft hyphen
		"http://127.0.0.1:9/\u202ecb",       // in the path too
		"https://a.example/cb?next=\u2066x", // and the query
		"com.example.app:/\u0441b",          // a private-use URI
		"https://\uff45xample.com/cb",       // fullwidth e
		"https://a.example/\u0085",          // a C1 control
	} {
		if err := ValidateRedirectURI(u); err == nil {
			t.Errorf("SEC-120: %q accepted, want refused", u)
		}
	}
	for _, u := range []string{
		"https://xn--pple-43d.com/cb",
		"https://a.example/caf%C3%A9?x=%E2%80%AE",
		"http://localhost:8080/cb",
	} {
		if err := ValidateRedirectURI(u); err != nil {
			t.Errorf("SEC-120: %q refused: %v", u, err)
		}
	}
}

// SEC-120 holds for a host written percent-encoded: url.Parse decodes
// %D0%B0 in a host to the Cyrillic "а" the pages would show, and a
// browser goes to its punycode form; the path and query keep their
// percent-encoding, which names no host.
func TestSEC120_PercentEncodedHostIsASCII(t *testing.T) {
	for _, u := range []string{
		"https://%D0%B0pple.com/cb",           // Cyrillic a
		"https://apple.com%E2%80%AE.evil/cb",  // right-to-left override
		"https://evil%E2%80%8B.example/cb",    // zero-width space
		"https://%EF%BD%85xample.com:8443/cb", // fullwidth e, with a port
	} {
		if err := ValidateRedirectURI(u); err == nil {
			t.Errorf("SEC-120: %q accepted, want refused", u)
		}
	}
	if err := ValidateRedirectURI("https://a.example/caf%C3%A9?x=%E2%80%AE"); err != nil {
		t.Errorf("SEC-120: a percent-encoded path and query refused: %v", err)
	}
}
