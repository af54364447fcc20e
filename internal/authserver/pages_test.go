package authserver

import "testing"

// SEC-107: only a path of the gateway's own pages is a page to go back
// to after a page login; anything else is /account.
func TestSEC107_ReturnPath(t *testing.T) {
	for raw, want := range map[string]string{
		"/account":                   "/account",
		"/admin":                     "/admin",
		"/admin/grants":              "/admin/grants",
		"/admin/flows?client=abc":    "/admin/flows?client=abc",
		"":                           "/account",
		"/":                          "/account",
		"/authorize?client_id=x":     "/account",
		"/administrator":             "/account",
		"/accounts":                  "/account",
		"https://evil.example/admin": "/account",
		"//evil.example/admin":       "/account",
		"/\\evil.example/admin":      "/account",
		"/admin/../authorize":        "/account",
		"/admin/./x":                 "/account",
		"/admin/..":                  "/account",
		"/admin%2f..%2fauthorize":    "/account",
		"/admin/%2e%2e/authorize":    "/account",
		"/admin/x#frag":              "/account",
		"/admin/\nx":                 "/account",
		"/admin/\x7f":                "/account",
		"javascript:alert(1)":        "/account",
		"/admin@evil.example":        "/account",
	} {
		if got := ReturnPath(raw); got != want {
			t.Errorf("ReturnPath(%q) = %q, want %q", raw, got, want)
		}
	}
}
