package mcpgate_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// SEC-154: an approval covers the redirect URI the consent page named. A
// client's metadata document that adds a web address after the person
// approved it for their own computer gets no code there without the
// page, which names it: not with a signed-in browser, not with
// prompt=none (nor an error sent there, REDIR-3).
func TestSEC154_ApprovalCoversTheRedirectURIShown(t *testing.T) {
	var redirects atomic.Value
	redirects.Store([]string{"http://127.0.0.1/callback"})
	d := &docHost{docs: map[string]any{}}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]any{"client_id": "https://" + r.Host + r.URL.Path,
			"client_name": "Local Notes", "redirect_uris": redirects.Load(), "token_endpoint_auth_method": "none"})
	}))
	t.Cleanup(d.srv.Close)
	g := newGateway(t, withDocHost(d))
	id := d.srv.URL + "/client.json"
	a := g.newAuth(id)
	a.Redirect = "http://127.0.0.1:40001/callback"
	_, b := g.login(a)

	// The same URI, on another port (REDIR-4), needs no page again.
	again := g.newAuth(id)
	again.Redirect = "http://127.0.0.1:40002/callback"
	if _, _, _, err := b.Authorize(t.Context(), again.URL()+"&prompt=none", "http://127.0.0.1:40002/"); err != nil {
		t.Fatalf("the approved redirect URI on another port, prompt=none: %v, want a code", err)
	}

	const collector = "https://collector.attacker.example/cb"
	redirects.Store([]string{"http://127.0.0.1/callback", collector})
	c := *b.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, prompt := range []string{"&prompt=none", ""} {
		evil := g.newAuth(id)
		evil.Redirect = collector
		resp, err := c.Get(evil.URL() + prompt)
		if err != nil {
			t.Fatal(err)
		}
		body := new(strings.Builder)
		_, _ = io.Copy(body, resp.Body)
		resp.Body.Close()
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc != nil && loc.Host == "collector.attacker.example" {
			t.Errorf("prompt %q: sent to %s, a redirect URI the person never approved", prompt, resp.Header.Get("Location"))
			continue
		}
		if prompt == "" && (resp.StatusCode != 200 || !strings.Contains(body.String(), "collector.attacker.example")) {
			t.Errorf("without prompt: %d, want the consent page naming collector.attacker.example:\n%s", resp.StatusCode, body)
		}
	}
}
