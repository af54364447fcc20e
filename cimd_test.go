package mcpgate_test

import (
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// docHost serves Client ID Metadata Documents over TLS with a test
// certificate.
type docHost struct {
	srv  *httptest.Server
	mu   sync.Mutex
	docs map[string]any
	hits int
}

func newDocHost(t *testing.T) *docHost {
	d := &docHost{docs: map[string]any{}}
	d.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		doc, ok := d.docs[r.URL.Path]
		d.hits++
		d.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

// put publishes a document at path with its own URL as client_id.
func (d *docHost) put(path string, doc map[string]any) string {
	id := d.srv.URL + path
	if _, ok := doc["client_id"]; !ok {
		doc["client_id"] = id
	}
	d.mu.Lock()
	d.docs[path] = doc
	d.mu.Unlock()
	return id
}

func (d *docHost) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(d.srv.Certificate())
	return p
}

func withDocHost(d *docHost) gwOption {
	return func(c *mcpgateConfig) {
		c.CIMDAllowHosts = []string{"127.0.0.1"}
		c.CIMDRootCAs = d.roots()
	}
}

// Claude Code: a CIMD client_id whose document lists port-less loopback
// redirect URIs (both names), used with an ephemeral port; no resource, no
// scope (CIMD-2..5, REDIR-4, ASM-5). The consent page names the document's
// host (CIMD-12) and warns that only localhost redirects exist (CIMD-11).
func TestClaudeCode_CIMDPortlessLoopback(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	_, body := g.get(g.url + "/.well-known/oauth-authorization-server")
	if m := decode[map[string]any](t, body); m["client_id_metadata_document_supported"] != true {
		t.Fatalf("ASM-5: client_id_metadata_document_supported is %v, want true", m["client_id_metadata_document_supported"])
	}
	id := docs.put("/oauth/claude-code-client-metadata", map[string]any{
		"client_name": "Claude Code", "redirect_uris": []string{"http://localhost/callback", "http://127.0.0.1/callback"},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"}, "token_endpoint_auth_method": "none",
	})
	for _, redirect := range []string{"http://localhost:51734/callback", "http://127.0.0.1:40001/callback"} {
		t.Run(redirect, func(t *testing.T) {
			g := g.on(t)
			a := g.newAuth(id)
			a.Redirect, a.Resource, a.Scope = redirect, "", ""
			resp, page := g.get(a.URL())
			host := strings.TrimPrefix(docs.srv.URL, "https://")
			if resp.StatusCode != 200 || !strings.Contains(string(page), host) || !strings.Contains(string(page), "only sends you back to your own") {
				t.Fatalf("CIMD-11/12 consent page: %d\n%s\nwant 200, naming %s and warning that only localhost redirects exist", resp.StatusCode, page, host)
			}
			code, _ := g.login(a)
			a.Resource = g.url + "/mcp"
			resp, tok := g.exchange(a, code)
			if resp.StatusCode != 200 || tok.AccessToken == "" {
				t.Fatalf("token: %d %+v, want 200 with an access token", resp.StatusCode, tok)
			}
			if r, _ := g.mcpInitialize(g.url, tok.AccessToken); r.StatusCode != 200 {
				t.Fatalf("MCP initialize with the token: %d, want 200", r.StatusCode)
			}
		})
	}
	if docs.hits != 1 {
		t.Errorf("CIMD-6: the document was fetched %d times, want 1 (cached)", docs.hits)
	}
}

// CIMD-3, CIMD-5, CIMD-8, CIMD-9: a document that fails validation, or a
// redirect URI it does not list, gets a page, never a redirect; at the
// token endpoint the client is invalid_client.
func TestCIMD9_InvalidDocumentIsAPage(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs))
	cases := map[string]map[string]any{
		"/mismatch":   {"client_id": "https://elsewhere.example/doc", "client_name": "x", "redirect_uris": []string{redirectURI}},
		"/secret":     {"client_name": "x", "redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "client_secret_post"},
		"/no-name":    {"redirect_uris": []string{redirectURI}},
		"/bad-scheme": {"client_name": "x", "redirect_uris": []string{"http://evil.example/cb"}},
	}
	for path, doc := range cases {
		id := docs.put(path, doc)
		a := g.newAuth(id)
		resp, page := g.get(a.URL())
		if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(string(page), "could not be verified") {
			t.Errorf("%s: got %d, Location %q; want 400, no Location, a page saying the application could not be verified", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		r, b := g.postForm(g.url+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "client_id": {id}, "code_verifier": {strings.Repeat("a", 43)}})
		if r.StatusCode != 401 || !strings.Contains(string(b), "invalid_client") {
			t.Errorf("%s at /token: %d %s, want 401 invalid_client", path, r.StatusCode, b)
		}
	}
	// CIMD-5: a valid document, but the request's redirect URI is not in it.
	id := docs.put("/ok", map[string]any{"client_name": "ok", "redirect_uris": []string{"https://app.example/cb"}})
	a := g.newAuth(id)
	resp, _ := g.get(a.URL())
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("CIMD-5: redirect URI not in the document: %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
	// A missing document (404) is refused the same way.
	a = g.newAuth(docs.srv.URL + "/missing")
	if resp, _ := g.get(a.URL()); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Fatalf("404 document: %d, Location %q; want 400 and no redirect", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// CIMD-10: without the testing allow-list, a document on a loopback
// address is never fetched.
func TestCIMD10_LoopbackDocumentRefused(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, func(c *mcpgateConfig) { c.CIMDRootCAs = docs.roots() })
	id := docs.put("/doc", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}})
	resp, _ := g.get(g.newAuth(id).URL())
	if resp.StatusCode != 400 || docs.hits != 0 {
		t.Fatalf("CIMD-10: got %d after %d fetches, want 400 and no fetch", resp.StatusCode, docs.hits)
	}
}

// With CIMD turned off, a URL client_id is an unknown client.
func TestCIMDDisabled(t *testing.T) {
	docs := newDocHost(t)
	g := newGateway(t, withDocHost(docs), func(c *mcpgateConfig) { c.DisableCIMD = true })
	_, body := g.get(g.url + "/.well-known/oauth-authorization-server")
	if strings.Contains(string(body), "client_id_metadata_document_supported") {
		t.Fatalf("client_id_metadata_document_supported advertised with CIMD off:\n%s", body)
	}
	id := docs.put("/doc", map[string]any{"client_name": "x", "redirect_uris": []string{redirectURI}})
	resp, page := g.get(g.newAuth(id).URL())
	if resp.StatusCode != 400 || !strings.Contains(string(page), "register again") || docs.hits != 0 {
		t.Fatalf("got %d after %d fetches, want 400, a page telling the client to register again, and no fetch", resp.StatusCode, docs.hits)
	}
}
