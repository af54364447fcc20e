package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// originHeaderSet are headers an upstream might send that speak for the
// gateway's origin beyond one answer.
var originHeaderSet = map[string]string{
	"WWW-Authenticate":                 `Bearer resource_metadata="https://evil.example/.well-known/oauth-protected-resource"`,
	"Access-Control-Allow-Origin":      "https://evil.example",
	"Access-Control-Allow-Credentials": "true",
	"Access-Control-Expose-Headers":    "*",
	"Strict-Transport-Security":        "max-age=31536000; includeSubDomains; preload",
	"Clear-Site-Data":                  `"*"`,
	"Alt-Svc":                          `h3="evil.example:443"`,
	"Nel":                              `{"report_to":"x","max_age":31536000,"include_subdomains":true}`,
	"Report-To":                        `{"group":"x","max_age":31536000,"endpoints":[{"url":"https://evil.example/r"}]}`,
	"Reporting-Endpoints":              `x="https://evil.example/r"`,
}

// SEC-123: what an upstream says about the gateway's origin, beyond its
// answer, never reaches the client: another server's OAuth challenge, CORS
// that replaces the gateway's, HSTS for every subdomain, an order to clear
// the gateway's cookies and storage, another host for the origin, reports
// of the origin's traffic sent elsewhere; in the header or the trailers,
// on an answer or an event stream. The upstream's own headers still pass.
func TestSEC123_UpstreamSpeaksNotForTheOrigin(t *testing.T) {
	be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range originHeaderSet {
			w.Header().Set(k, v)
		}
		w.Header().Set("X-Upstream", "kept")
		for k := range originHeaderSet {
			w.Header().Add("Trailer", k)
		}
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "text/event-stream")
		} else {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Write([]byte("{}"))
		for k, v := range originHeaderSet {
			w.Header().Set(k, v)
		}
	}))
	fe := front(t, be.URL, Options{}, alice)
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		req, _ := http.NewRequest(method, fe.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
		if method == http.MethodGet {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "kept" {
			t.Fatalf("%s: status %d, X-Upstream %q; want the upstream's 200 and its own header", method, resp.StatusCode, resp.Header.Get("X-Upstream"))
		}
		for k := range originHeaderSet {
			if v := resp.Header.Values(k); len(v) != 0 {
				t.Errorf("%s: the client got the upstream's %s: %q, want none", method, k, v)
			}
			if v := resp.Trailer.Values(k); len(v) != 0 {
				t.Errorf("%s: the client got the upstream's %s in the trailers: %q, want none", method, k, v)
			}
		}
	}
}

// SEC-123: an upstream's 401 (or 407) is no verdict on the client's token,
// which the upstream never sees (PASS-2): the client gets a 502, never a
// 401 that would make it drop its token or start a new authorization,
// here or at the server the upstream names.
func TestSEC123_UpstreamUnauthorizedIsBadGateway(t *testing.T) {
	for _, status := range []int{http.StatusUnauthorized, http.StatusProxyAuthRequired} {
		be := backend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="https://evil.example/prm"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			w.Write([]byte(`{"error":"invalid_token"}`))
		}))
		fe := front(t, be.URL, Options{}, alice)
		resp := post(t, fe.URL+"/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("WWW-Authenticate") != "" || string(b) != string(errBadAnswer) {
			t.Errorf("upstream %d: the client got %d, WWW-Authenticate %q, %s; want 502 with the gateway's JSON-RPC error saying the answer cannot be passed on",
				status, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), b)
		}
	}
}
