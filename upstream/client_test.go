package upstream_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpgate/mcpgate/upstream"
)

// SEC-203: a provider's client follows redirects within the origin of
// its first request only, and runs the caller's CheckRedirect after.
func TestSEC203_RedirectsStayWithinTheOrigin(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("another origin was asked for %s", r.URL)
	}))
	defer other.Close()
	tlsOther := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("another https origin was asked for %s", r.URL)
	}))
	defer tlsOther.Close()
	provider := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/here", http.StatusFound)
		case "/here":
			w.Write([]byte("ok"))
		case "/plain": // the same host and port over http
			http.Redirect(w, r, "http://"+r.Host+"/here", http.StatusTemporaryRedirect)
		case "/other":
			http.Redirect(w, r, other.URL+"/here", http.StatusTemporaryRedirect)
		case "/other-https":
			http.Redirect(w, r, tlsOther.URL+"/here", http.StatusTemporaryRedirect)
		}
	}))
	defer provider.Close()
	c := upstream.Client(provider.Client(), time.Minute)

	resp, err := c.Get(provider.URL + "/moved")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a redirect within the origin: %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	for _, path := range []string{"/plain", "/other", "/other-https"} {
		resp, err := c.Post(provider.URL+path, "application/x-www-form-urlencoded", nil)
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s: followed to %s; want an error", path, resp.Request.URL)
		}
	}

	// The caller's own rule still applies, after this one.
	stop := errors.New("the caller's rule")
	caller := provider.Client()
	caller.CheckRedirect = func(*http.Request, []*http.Request) error { return stop }
	if _, err := upstream.Client(caller, time.Minute).Get(provider.URL + "/moved"); !errors.Is(err, stop) {
		t.Errorf("with the caller's CheckRedirect: %v; want its error", err)
	}
	if err := caller.CheckRedirect(nil, nil); err != stop {
		t.Errorf("the caller's client was changed: its CheckRedirect gives %v", err)
	}
}
