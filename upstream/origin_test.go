package upstream_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/upstream"
)

// SEC-203: one origin spelt two ways is one origin; another scheme, host
// or port is another.
func TestSEC203_Origin(t *testing.T) {
	check := upstream.Client(nil, time.Minute).CheckRedirect
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
		from, _ := http.NewRequest(http.MethodGet, tc.a, nil)
		to, _ := http.NewRequest(http.MethodGet, tc.b, nil)
		if err := check(to, []*http.Request{from}); (err == nil) != tc.same {
			t.Errorf("a redirect from %s to %s: %v, want it followed = %v", tc.a, tc.b, err, tc.same)
		}
	}
}
