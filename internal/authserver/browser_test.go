package authserver

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// SEC-5: a form post counts as the gateway's own only when every header a
// browser sends about its source says so.
func TestSEC5_FromOwnPage(t *testing.T) {
	for _, tc := range []struct {
		issuer string
		origin []string
		site   []string
		want   bool
	}{
		{"http://127.0.0.1:8080", nil, nil, true}, // no browser
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8080"}, []string{"same-origin"}, true},
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8080"}, nil, true},
		{"http://127.0.0.1:8080", nil, []string{"same-origin"}, true},
		{"http://localhost:8080", []string{"HTTP://LOCALHOST:8080"}, nil, true},
		{"https://mcp.example.com", []string{"https://mcp.example.com:443"}, nil, true},
		{"http://[::1]:8080", []string{"http://[::1]:8080"}, []string{"same-origin"}, true},
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8081"}, nil, false}, // another port
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1"}, nil, false},
		{"http://127.0.0.1:8080", []string{"https://127.0.0.1:8080"}, nil, false},
		{"http://127.0.0.1:8080", []string{"http://localhost:8080"}, nil, false},
		{"http://127.0.0.1:8080", []string{"null"}, nil, false},
		{"http://127.0.0.1:8080", []string{""}, nil, false},
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8080", "http://127.0.0.1:8081"}, nil, false},
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8080"}, []string{"same-site"}, false},
		{"http://127.0.0.1:8080", nil, []string{"cross-site"}, false},
		{"http://127.0.0.1:8080", nil, []string{"none"}, false},
		{"http://127.0.0.1:8080", nil, []string{"same-origin", "same-origin"}, false},
	} {
		r := httptest.NewRequest("POST", "/consent", nil)
		r.Header["Origin"] = tc.origin
		r.Header["Sec-Fetch-Site"] = tc.site
		if got := fromOwnPage(r, tc.issuer); got != tc.want {
			t.Errorf("issuer %s, Origin %q, Sec-Fetch-Site %q: %v, want %v", tc.issuer, tc.origin, tc.site, got, tc.want)
		}
	}
}

// SEC-5: the refusal of two cookies drops them at every path the browser
// could have stored them under for this request.
func TestSEC5_ExpireCookiesAtEveryMatchingPath(t *testing.T) {
	r := httptest.NewRequest("GET", "/login/local?state=x", nil)
	w := httptest.NewRecorder()
	expireCookies(w, r, "http://127.0.0.1:8080", []string{csrfCookie})
	var paths []string
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		if c.Name != csrfCookie || c.MaxAge >= 0 {
			t.Errorf("Set-Cookie %q, want %s expired", c.Raw, csrfCookie)
		}
		paths = append(paths, c.Path)
	}
	slices.Sort(paths)
	if want := []string{"/", "/login", "/login/", "/login/local"}; !slices.Equal(paths, want) {
		t.Errorf("expired at %q, want %q", paths, want)
	}
}

// SEC-193: the paths expired for a planted cookie are bounded. A login
// path of 2,000 %2F, one segment to the router, made one Set-Cookie per
// decoded prefix, 4.3 MB of headers for a request of 6 KB (and 466 MB
// for 64 KB). The escaped path is the one a browser matches, and a
// browser ignores a Path attribute of more than 1,024 bytes.
func TestSEC193_ExpiredCookiePathsBounded(t *testing.T) {
	for _, target := range []string{
		"/login/a" + strings.Repeat("%2F", 2000),
		"/admin/flows/" + strings.Repeat("a/", 2000),
		"/callback/" + strings.Repeat("x", 5000),
	} {
		r := httptest.NewRequest("GET", target, nil)
		w := httptest.NewRecorder()
		expireCookies(w, r, "http://127.0.0.1:8080", []string{csrfCookie, sessionCookie})
		size := 0
		for _, v := range w.Header()["Set-Cookie"] {
			size += len(v)
		}
		if n := len(w.Header()["Set-Cookie"]); n > 2*(2*maxCookieDepth+1) || size > 64<<10 {
			t.Errorf("GET %.40s…: %d Set-Cookie headers of %d bytes in all, want at most %d of 64 KiB", target, n, size, 2*(2*maxCookieDepth+1))
		}
		paths := map[string]bool{}
		for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
			paths[c.Path] = true
		}
		if !paths["/"] || !paths[target[:strings.Index(target[1:], "/")+1]] {
			t.Errorf("GET %.40s…: expired at %d paths, want / and the first segment's among them", target, len(paths))
		}
	}
	// Escaped as the browser sends it: %2F is no boundary of a cookie path.
	r := httptest.NewRequest("GET", "/login/a%2Fb", nil)
	w := httptest.NewRecorder()
	expireCookies(w, r, "http://127.0.0.1:8080", []string{csrfCookie})
	var paths []string
	for _, c := range (&http.Response{Header: w.Header()}).Cookies() {
		paths = append(paths, c.Path)
	}
	slices.Sort(paths)
	if want := []string{"/", "/login", "/login/", "/login/a%2Fb"}; !slices.Equal(paths, want) {
		t.Errorf("expired at %q, want %q", paths, want)
	}
}
