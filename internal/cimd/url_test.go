package cimd

import (
	"strings"
	"testing"
)

// CIMD-7: the form of a client_id URL (draft §3).
func TestValidateClientIDURL(t *testing.T) {
	valid := []string{
		"https://claude.ai/oauth/mcp-oauth-client-metadata",
		"https://claude.ai/oauth/claude-code-client-metadata",
		"https://vscode.dev/oauth/client-metadata.json",
		"https://example.com:8443/client.json", // MAY have a port
		"https://example.com/a/b/",
		"https://93.184.215.14/client.json", // literals are checked at fetch time
		"https://[2606:4700::1111]/c",
		"https://example.com/a//b",
		"https://example.com/.well-known/client",
		"https://example.com/a%2Fb",
		"https://xn--bcher-kva.example/c",
	}
	invalid := map[string]string{
		"":                                                 "https://",
		"http://example.com/client.json":                   "https://",
		"HTTPS://example.com/client.json":                  "https://",
		"https:example.com/client.json":                    "https://",
		"https:///client.json":                             "host",
		"https://example.com":                              "path",
		"https://example.com/":                             "path",
		"https://example.com:8443":                         "path",
		"https://example.com/a/./b":                        `"." or ".."`,
		"https://example.com/a/../b":                       `"." or ".."`,
		"https://example.com/..":                           `"." or ".."`,
		"https://example.com/a/%2e%2E/b":                   `"." or ".."`,
		"https://example.com/a/%2e":                        `"." or ".."`,
		"https://example.com/client.json#x":                "fragment",
		"https://example.com/client.json#":                 "fragment",
		"https://user@example.com/client.json":             "user name",
		"https://user:pw@example.com/client.json":          "user name",
		"https://example.com/client.json?v=1":              "query",
		"https://example.com/client.json?":                 "query",
		"https://example.com:0/c":                          "port",
		"https://example.com:65536/c":                      "port",
		"https://example.com:/c":                           "port",
		"https://example.com:x/c":                          "parsed",
		"https://example.com/a b":                          "ASCII",
		"https://example.com/a\tb":                         "ASCII",
		"https://example.com\\@evil.example/c":             "ASCII",
		"https://bücher.example/c":                         "ASCII",
		"https://[fe80::1%25eth0]/c":                       "zone",
		"https://example.com/%zz":                          "parsed",
		"https://example.com/" + strings.Repeat("a", 2048): "2048",
	}
	for _, raw := range valid {
		if err := ValidateClientIDURL(raw); err != nil {
			t.Errorf("ValidateClientIDURL(%q) = %v, want nil", raw, err)
		}
	}
	for raw, want := range invalid {
		err := ValidateClientIDURL(raw)
		if err == nil {
			t.Errorf("ValidateClientIDURL(%q) = nil, want an error about %s", raw, want)
			continue
		}
		if r := asError(t, err).Reason; !strings.Contains(r, want) {
			t.Errorf("ValidateClientIDURL(%q) = %q, want it to mention %s", raw, r, want)
		}
	}
}

// CIMD-2: only https:// client_ids are fetched.
func TestIsClientIDURL(t *testing.T) {
	for id, want := range map[string]bool{
		"https://claude.ai/oauth/mcp-oauth-client-metadata": true,
		"https://":                        true, // then refused by ValidateClientIDURL
		"http://example.com/client.json":  false,
		"HTTPS://example.com/client.json": false,
		"3f2a9c1e-registered-id":          false,
		"":                                false,
	} {
		if got := IsClientIDURL(id); got != want {
			t.Errorf("IsClientIDURL(%q) = %v, want %v", id, got, want)
		}
	}
}

// CIMD-7, SEC-120: the consent page names a client metadata URL's host as
// who publishes the document; one written percent-encoded is decoded by
// url.Parse to the look-alike letters it spells, and is refused as the
// raw form is.
func TestValidateClientIDURLPercentEncodedHost(t *testing.T) {
	for _, u := range []string{
		"https://%D0%B0pple.com/client.json",
		"https://apple.com%E2%80%AE.evil/client.json",
		"https://%EF%BD%85xample.com:8443/client.json",
	} {
		if err := ValidateClientIDURL(u); err == nil {
			t.Errorf("%q accepted, want refused", u)
		}
	}
}
