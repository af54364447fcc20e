package upstream

import (
	"net/url"
	"testing"
)

// SEC-203: one origin spelt two ways is one origin; another scheme, host
// or port is another.
func TestSEC203_Origin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://idp.example/a", "https://idp.example:443/b", true},
		{"https://IDP.example/a", "https://idp.example/b", true},
		{"http://127.0.0.1/a", "http://127.0.0.1:80/b", true},
		{"https://idp.example/a", "http://idp.example/a", false},
		{"https://idp.example/a", "https://idp.example:8443/a", false},
		{"https://idp.example/a", "https://cdn.idp.example/a", false},
		{"http://[::1]:8080/a", "http://[::1]:8080/b", true},
	} {
		a, _ := url.Parse(tc.a)
		b, _ := url.Parse(tc.b)
		if got := origin(a) == origin(b); got != tc.same {
			t.Errorf("%s and %s: the same origin = %v (%s, %s), want %v", tc.a, tc.b, got, origin(a), origin(b), tc.same)
		}
	}
}
