package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgate/mcpgate"
	"github.com/mcpgate/mcpgate/e2e/browser"
	"github.com/mcpgate/mcpgate/store/memory"
)

// cimdHost is a local TLS host (a test certificate for 127.0.0.1) that
// serves Client ID Metadata Documents, standing in for a client's https
// site: the gateway fetches the document named by an https client_id.
type cimdHost struct {
	srv  *httptest.Server
	mu   sync.Mutex
	docs map[string]map[string]any
	hits map[string]int
}

func newCIMDHost(t *testing.T) *cimdHost {
	t.Helper()
	h := &cimdHost{docs: map[string]map[string]any{}, hits: map[string]int{}}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		doc, ok := h.docs[r.URL.Path]
		h.hits[r.URL.Path]++
		h.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// publish serves, at path, the document of a public client named name
// with the given redirect URIs, and returns its URL: the client_id.
func (h *cimdHost) publish(path, name string, redirectURIs ...string) string {
	id := h.srv.URL + path
	h.mu.Lock()
	defer h.mu.Unlock()
	h.docs[path] = map[string]any{
		"client_id":                  id,
		"client_name":                name,
		"redirect_uris":              redirectURIs,
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
	}
	return id
}

// fetches says how often the document at path was requested.
func (h *cimdHost) fetches(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[path]
}

// roots is a pool with the host's test certificate: the gateway's CIMD
// fetcher trusts it instead of the system roots.
func (h *cimdHost) roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(h.srv.Certificate())
	return p
}

// realClientGateway starts an in-process gateway (memory store, the local
// user alice, the demo MCP server with whoami and echo) for the real-client
// tests. With docs, it fetches Client ID Metadata Documents from docs,
// allowing 127.0.0.1 (refused otherwise, CIMD-10) and trusting its test CA.
// The gateway's log goes to the test log when the test fails.
func realClientGateway(t *testing.T, ctx context.Context, docs *cimdHost) *httptest.Server {
	t.Helper()
	logs := &safeBuffer{}
	t.Cleanup(func() {
		if t.Failed() && logs.String() != "" {
			t.Logf("gateway log:\n%s", logs)
		}
	})
	cfg := mcpgate.Config{Store: memory.New(),
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if docs != nil {
		cfg.CIMDAllowHosts = []string{"127.0.0.1"}
		cfg.CIMDRootCAs = docs.roots()
	}
	return startGateway(t, ctx, cfg)
}

// The go-sdk client with a Client ID Metadata Document instead of DCR: its
// client_id is the https URL of a document on a local TLS host, which the
// gateway fetches (trusting the host's test CA), validates and shows on the
// consent page; whoami names that URL as the client, and the client got a
// refresh token.
func TestGoSDKClient_CIMD(t *testing.T) {
	begin := time.Now()
	defer func() { t.Logf("TestGoSDKClient_CIMD took %v", time.Since(begin).Round(time.Millisecond)) }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	docs := newCIMDHost(t)
	const docPath = "/oauth/go-sdk-e2e-client.json"
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback", freePort(t))
	clientID := docs.publish(docPath, "go-sdk e2e (CIMD)", cb)
	srv := realClientGateway(t, ctx, docs)

	b := browser.New(user, password)
	var authURL string
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		RedirectURL: cb,
		AuthorizationCodeFetcher: func(ctx context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			authURL = args.URL
			code, state, iss, err := b.Authorize(ctx, args.URL, cb)
			if err != nil {
				return nil, err
			}
			return &auth.AuthorizationResult{Code: code, State: state, Iss: iss}, nil
		},
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: clientID},
		RequestRefreshToken:            true,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := whoami(t, ctx, &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", OAuthHandler: h})
	u, _ := m["user"].(map[string]any)
	if u["sub"] != "local:alice" || m["client_id"] != clientID || m["resource"] != srv.URL+"/mcp" {
		t.Fatalf("whoami: %v, want local:alice, client %s, resource %s/mcp", m, clientID, srv.URL)
	}
	au, err := url.Parse(authURL)
	if err != nil || au.Query().Get("client_id") != clientID {
		t.Fatalf("the authorization request's client_id is not the document URL: %q", authURL)
	}
	ts, err := h.TokenSource(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := ts.Token()
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("no refresh token: %v, want one with the access token", err)
	}
	if got := clientIDOf(t, tok.AccessToken); got != clientID {
		t.Fatalf("access token client_id %q, want %q", got, clientID)
	}
	if n := docs.fetches(docPath); n < 1 {
		t.Fatal("the gateway never fetched the metadata document, want at least one fetch (CIMD-2)")
	}
	q := au.Query()
	q.Del("code_challenge")
	q.Del("state")
	t.Logf("go-sdk CIMD: client_id %s; authorization request %v; refresh token of %d bytes; document fetched %d time(s)",
		clientID, q, len(tok.RefreshToken), docs.fetches(docPath))
}
